"""Chapter notebooks from their sources.

solutions/NN_slug/NN_slug.py (jupytext percent source, the only file authors
edit) -> solutions/NN_slug/NN_slug.ipynb (instructor notebook with nbgrader
metadata) -> modules/NN_slug/NN_slug.ipynb (student notebook, by
`nbgrader generate_assignment`).

Cell headers in the sources carry short nbgrader markers that are expanded here:
  `grade_id="x" solution=true`            a cell the student fills in
  `grade_id="x" points=N`                 an autograded test cell
  `grade_id="x" points=N solution=true`   a manually graded answer (markdown)
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import jupytext
import nbformat

from tools.course import Chapter, course_settings, run_nbgrader

from .tokens import chapter_tokens, stamp

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def nbgrader_metadata(meta: dict) -> dict | None:
    """Expand the short markers of a source cell into nbgrader's cell metadata."""
    grade_id = meta.pop("grade_id", None)
    points = meta.pop("points", None)
    solution = bool(meta.pop("solution", False))
    if grade_id is None:
        if points is not None or solution:
            raise ValueError("a cell with points or solution needs a grade_id")
        return None
    graded = points is not None
    out = {"grade": graded, "grade_id": grade_id, "locked": graded and not solution,
           "schema_version": 3, "solution": solution, "task": False}
    if graded:
        out["points"] = points
    return out


def source_to_notebook(ch: Chapter, root: Path) -> nbformat.NotebookNode:
    """Read a chapter's jupytext source under ``root`` and return the instructor notebook."""
    tokens = chapter_tokens(course_settings(root), ch.slug)
    nb = jupytext.read(ch.source(root))
    seen: dict[str, int] = {}
    for cell in nb.cells:
        meta = dict(cell.metadata)
        meta.pop("lines_to_next_cell", None)
        grading = nbgrader_metadata(meta)
        if grading:
            meta["nbgrader"] = grading
        cell.metadata = nbformat.from_dict(meta)
        cell.source = stamp(cell.source, tokens, root, decimal_comma=cell.cell_type == "markdown")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        # Stable ids keep rebuilds byte-identical (jupytext would draw random ones).
        base = grading["grade_id"] if grading else "c-" + hashlib.sha1(
            (cell.cell_type + cell.source).encode()).hexdigest()[:10]
        seen[base] = seen.get(base, 0) + 1
        cell["id"] = base if seen[base] == 1 else f"{base}-{seen[base]}"
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


def write_notebook(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def build_chapter(ch: Chapter, root: Path) -> None:
    """Write the instructor notebook and the student release of one chapter under ``root``."""
    if not ch.source(root).exists():
        raise FileNotFoundError(f"{ch.slug} is registered but {ch.source(root).relative_to(root)} is missing")
    write_notebook(source_to_notebook(ch, root), ch.instructor_notebook(root))
    release = root / "modules" / ch.slug
    if release.exists():
        shutil.rmtree(release)
    run_nbgrader(root, "generate_assignment", ch.slug, "--force", "--log-level=WARN")


def remove_unregistered_releases(root: Path, registered: list[Chapter]) -> None:
    """Released chapters that are not in the registry are stale."""
    known = {ch.slug for ch in registered}
    for folder in (root / "modules").glob("*"):
        if folder.is_dir() and folder.name not in known:
            shutil.rmtree(folder)
