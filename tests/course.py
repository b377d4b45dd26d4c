"""Helpers for the course-invariant tests: chapters, notebooks and their cells."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.name for p in (ROOT / "solutions").iterdir()
                  if p.is_dir() and re.match(r"^\d\d_[a-z0-9_]+$", p.name))


@functools.cache
def solution_notebook(chapter: str) -> nbformat.NotebookNode:
    """The built solution notebook, read once per test session (callers do not mutate it)."""
    return nbformat.read(ROOT / "solutions" / chapter / f"{chapter}.ipynb", as_version=4)


def release_notebook(chapter: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "modules" / chapter / f"{chapter}.ipynb", as_version=4)


def grading(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def cell_by_grade_id(nb, grade_id: str) -> str:
    for cell in nb.cells:
        if grading(cell).get("grade_id") == grade_id:
            return cell.source
    raise KeyError(grade_id)


def split_regions(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """(lines strictly between ``begin`` and ``end`` markers, lines outside them and the markers)."""
    inside_lines, outside_lines, inside = [], [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            inside_lines.append(line)
        else:
            outside_lines.append(line)
    return inside_lines, outside_lines
