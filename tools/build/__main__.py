"""Build the course: `make release`.

    python -m tools.build [NN_slug ...]   rebuild every (or each named) chapter and the generated docs
    python -m tools.build --check         build into a scratch copy; fail if anything committed differs

For each registered chapter (chapters.toml): the instructor notebook
solutions/NN_slug/NN_slug.ipynb and the student notebook modules/NN_slug/,
then the README's chapter table and docs/results.md. Afterwards it prints
the release orders the registry declares (a chapter that shows an earlier
chapter's graded answers) and fails on an undeclared leak.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tools.course import JUPYTER_AUTOSAVE, REGISTRY, ROOT, chapters

from . import docs, leaks
from .notebooks import build_chapter, remove_unregistered_releases

# What the build reads besides the chapter sources: settings, the registry, the hand-written parts of
# the generated pages, and the records the tokens and the results page quote.
INPUTS = ("pyproject.toml", "nbgrader_config.py", "README.md", REGISTRY, str(docs.GRADING_GUIDE))


def build(root: Path, only: list[str] | None = None) -> list[str]:
    """Build every (or each named) chapter under ``root`` and the generated docs; returns the chapters built."""
    registered = chapters(root)
    unknown = set(only or ()) - {ch.slug for ch in registered}
    if unknown:
        raise SystemExit(f"not in {REGISTRY}: {', '.join(sorted(unknown))}")
    built = []
    for ch in registered:
        if not only or ch.slug in only:
            build_chapter(ch, root)
            built.append(ch.slug)
    if not only:
        remove_unregistered_releases(root, registered)
    docs.update_readme(root)
    docs.write_results_page(root)
    docs.update_grading_guide(root)
    return built


def generated_files(root: Path) -> dict[str, bytes]:
    """Every file the build owns, relative path -> bytes."""
    files = {}
    for ch in chapters(root):
        path = ch.instructor_notebook(root)
        if path.exists():
            files[str(path.relative_to(root))] = path.read_bytes()
    for path in sorted((root / "modules").rglob("*")):
        # Jupyter's autosave copies (a maintainer opened a notebook in place) are not the build's files.
        if path.is_file() and JUPYTER_AUTOSAVE not in path.parts:
            files[str(path.relative_to(root))] = path.read_bytes()
    for rel in ("README.md", str(docs.RESULTS_PAGE), str(docs.GRADING_GUIDE)):
        if (root / rel).exists():
            files[rel] = (root / rel).read_bytes()
    return files


def copy_sources(root: Path, scratch: Path) -> None:
    """Copy what the build reads from ``root`` into ``scratch``; the checkpoints' records are linked."""
    for name in INPUTS:
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / name, scratch / name)
    if (root / "results").is_dir():
        shutil.copytree(root / "results", scratch / "results")
    (scratch / "data").mkdir()
    os.symlink(root / "data" / "checkpoints", scratch / "data" / "checkpoints")
    for ch in chapters(root):
        ch.source(scratch).parent.mkdir(parents=True)
        shutil.copy(ch.source(root), ch.source(scratch))
    (scratch / "modules").mkdir()


def _differences(expected: dict[str, bytes], current: dict[str, bytes], what: str) -> list[str]:
    problems = []
    for rel in sorted(set(expected) | set(current)):
        if rel not in current:
            problems.append(f"missing: {rel}")
        elif rel not in expected:
            problems.append(f"stale (no source builds it): {rel}")
        elif expected[rel] != current[rel]:
            diff = difflib.unified_diff(current[rel].decode(errors="replace").splitlines(),
                                        expected[rel].decode(errors="replace").splitlines(),
                                        what, "built", lineterm="", n=1)
            problems.append(f"out of date: {rel}\n" + "\n".join(list(diff)[:20]))
    return problems


def check(root: Path = ROOT, rebuild: bool = False) -> list[str]:
    """Build a scratch copy and list the generated files that differ from ``root``; with ``rebuild``,
    build the scratch copy a second time and list what a second build changes (it must change nothing)."""
    with tempfile.TemporaryDirectory(prefix="course-build-") as tmp:
        scratch = Path(tmp)
        copy_sources(root, scratch)
        build(scratch)
        fresh = generated_files(scratch)
        problems = _differences(fresh, generated_files(root), "committed")
        if rebuild:
            build(scratch)
            problems += [f"not reproducible: {p}" for p in _differences(generated_files(scratch), fresh, "first")]
    return problems


def report_leaks(root: Path) -> int:
    """Print the declared release orders; print and count the undeclared leaks."""
    registered = chapters(root)
    found = leaks.check(root, registered)
    for line in leaks.release_orders(found, registered):
        print(f"release order: {line}")
    undeclared = [leak for leak in found if not leak.declared]
    for leak in undeclared:
        print(f"LEAK: the answer of {leak.secret_of} cell '{leak.grade_id}' ({leak.statement}) is shown in "
              f"modules/{leak.released_in}: {leak.shown}")
    return len(undeclared)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter slugs (default: all)")
    parser.add_argument("--check", action="store_true", help="do not write; fail if generated files are stale")
    args = parser.parse_args()
    if args.check:
        problems = check()
        for p in problems:
            print(p)
        print("generated files are up to date" if not problems else
              f"{len(problems)} generated file(s) out of date: run `make release`")
        return 1 if problems else 0
    print("built: " + ", ".join(build(ROOT, args.chapters or None)))
    return 1 if report_leaks(ROOT) else 0


if __name__ == "__main__":
    sys.exit(main())
