"""Helpers for the course tests: the registered chapters, their notebooks and cells."""

from __future__ import annotations

import functools

import nbformat

from tools.build.leaks import region_lines
from tools.course import ROOT, chapter, chapters

__all__ = ["ROOT", "SLUGS", "cell_by_grade_id", "first_exercise", "grading", "release_notebook",
           "solution_notebook", "split_regions"]

SLUGS = [ch.slug for ch in chapters()]


@functools.cache
def solution_notebook(slug: str) -> nbformat.NotebookNode:
    """The built instructor notebook, read once per test session (callers do not mutate it)."""
    return nbformat.read(chapter(slug).instructor_notebook(), as_version=4)


def release_notebook(slug: str) -> nbformat.NotebookNode:
    return nbformat.read(chapter(slug).release_notebook(), as_version=4)


def grading(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def cell_by_grade_id(nb, grade_id: str) -> str:
    for cell in nb.cells:
        if grading(cell).get("grade_id") == grade_id:
            return cell.source
    raise KeyError(grade_id)


def split_regions(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """(lines strictly between ``begin`` and ``end`` markers, lines outside them and the markers)."""
    inside = region_lines(source, (begin, end))
    lines = list(enumerate(source.splitlines(), 1))
    return [line for n, line in lines if n in inside], [line for n, line in lines if n not in inside]


def first_exercise(slug: str) -> dict:
    """What a student meets first in ``slug``'s released notebook, as cell indices: the setup cell, the other code
    cells before the first code exercise, that exercise's cell and its test cell; with its grade_id and the
    reference answer (the same grade_id's cell in the instructor's notebook)."""
    cells = release_notebook(slug).cells
    setup = next(i for i, c in enumerate(cells) if c.cell_type == "code")
    impl = next(i for i, c in enumerate(cells) if c.cell_type == "code" and grading(c).get("solution"))
    test = next(i for i, c in enumerate(cells) if i > impl and grading(c).get("grade"))
    grade_id = grading(cells[impl])["grade_id"]
    return {"setup": setup, "impl": impl, "test": test, "grade_id": grade_id,
            "answer": cell_by_grade_id(solution_notebook(slug), grade_id),
            "code_before": [i for i, c in enumerate(cells[:impl]) if c.cell_type == "code" and i != setup]}

