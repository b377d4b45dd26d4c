"""What every tool needs to know about the course: where it is, its chapters, how to start subprocesses.

The chapter registry, `chapters.toml`, is the one list of chapters: the build,
the README table, the tests and the grader read it through `chapters()`.
Adding a chapter means its source, its exercise-check table and one entry there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = "chapters.toml"
SLUG_RE = re.compile(r"^\d\d_[a-z0-9_]+$")
DATASETS = ("mnist", "fashion_mnist", "cifar10", "omniglot", "ru_proverbs")
# JupyterLab's autosave folder beside every notebook it opens (git-ignored): never a chapter's file.
JUPYTER_AUTOSAVE = ".ipynb_checkpoints"

# `sys.executable` is relative when PATH holds a relative entry (`PATH=.venv/bin:$PATH`), and the
# subprocesses below often run from another folder, so both are made absolute here.
PYTHON = os.path.abspath(sys.executable)


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for nbgrader and Jupyter subprocesses: this interpreter's bin first on PATH
    (nbgrader shells out to `alembic`), the environment's kernelspecs preferred."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(PYTHON) + os.pathsep + env.get("PATH", "")
    env["JUPYTER_PREFER_ENV_PATH"] = "1"
    env.update(extra)
    return env


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message holds its output."""


def run_nbgrader(root: Path, *args: str) -> None:
    """Run `nbgrader ARGS` in ``root`` (its nbgrader_config.py applies), failing loudly."""
    result = subprocess.run([PYTHON, "-m", "nbgrader", *args], cwd=root, capture_output=True, text=True,
                            env=tool_env())
    if result.returncode != 0:
        raise NbgraderError(f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def replace_between(path: Path, begin: str, end: str, content: str) -> None:
    """Rewrite the generated block between the ``begin`` and ``end`` marker lines of a hand-written file."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{content}\n{end}{tail}", encoding="utf-8")


@dataclass(frozen=True)
class Chapter:
    """One registry entry."""

    slug: str
    title: str
    datasets: tuple[str, ...] = ()
    checkpoints: tuple[str, ...] = ()
    fast_budget_s: float = 90.0
    reveals: tuple[str, ...] = ()

    @property
    def number(self) -> str:
        return self.slug[:2]

    def source(self, root: Path = ROOT) -> Path:
        """The jupytext source, the only file of the chapter that authors edit."""
        return root / "solutions" / self.slug / f"{self.slug}.py"

    def instructor_notebook(self, root: Path = ROOT) -> Path:
        return root / "solutions" / self.slug / f"{self.slug}.ipynb"

    def release_notebook(self, root: Path = ROOT) -> Path:
        return root / "modules" / self.slug / f"{self.slug}.ipynb"


@dataclass(frozen=True)
class Benchmark:
    """How fast-mode budgets are made machine-independent (see tools.measure.calibration)."""

    reference_calibration_s: float
    reference_machine: str
    overrun_factor: float

    def reference_seconds(self, seconds: float, calibration_s: float) -> float:
        """What a run of ``seconds``, measured beside a calibration of ``calibration_s``, would take on the
        reference machine."""
        return seconds / calibration_s * self.reference_calibration_s


def _registry(root: Path) -> dict:
    return tomllib.loads((root / REGISTRY).read_text(encoding="utf-8"))


def chapters(root: Path = ROOT) -> list[Chapter]:
    """The registered chapters in course order, checked for consistency."""
    entries = _registry(root).get("chapter", [])
    found: list[Chapter] = []
    for entry in entries:
        unknown = set(entry) - set(Chapter.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{REGISTRY}: unknown field(s) {sorted(unknown)} in {entry.get('slug')}")
        ch = Chapter(**{k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()})
        if not SLUG_RE.match(ch.slug):
            raise ValueError(f"{REGISTRY}: {ch.slug!r} is not an NN_slug name")
        if found and ch.slug <= found[-1].slug:
            raise ValueError(f"{REGISTRY}: chapters must be listed once each, in order ({ch.slug})")
        if set(ch.datasets) - set(DATASETS):
            raise ValueError(f"{REGISTRY}: {ch.slug} names unknown datasets {sorted(set(ch.datasets) - set(DATASETS))}")
        earlier = {c.slug for c in found}
        if set(ch.reveals) - earlier:
            raise ValueError(f"{REGISTRY}: {ch.slug} can only reveal earlier chapters, not "
                             f"{sorted(set(ch.reveals) - earlier)}")
        found.append(ch)
    return found


def chapter(slug: str, root: Path = ROOT) -> Chapter:
    for ch in chapters(root):
        if ch.slug == slug:
            return ch
    raise KeyError(f"{slug} is not in {REGISTRY}")


def benchmark(root: Path = ROOT) -> Benchmark:
    return Benchmark(**_registry(root)["benchmark"])


def course_settings(root: Path = ROOT) -> dict:
    """`[tool.course]` of pyproject.toml: the repository address, the one place a fork edits."""
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return data["tool"]["course"]


if __name__ == "__main__":  # `python -m tools.course`: the registered slugs, for the Makefile
    print(" ".join(ch.slug for ch in chapters()))
