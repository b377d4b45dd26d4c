"""Helpers for the course tests: the registered chapters, their notebooks and cells."""

from __future__ import annotations

import functools

import nbformat

from tools.build.leaks import region_lines
from tools.course import ROOT, chapter, chapters

__all__ = ["ROOT", "SLUGS", "cell_by_grade_id", "grading", "release_notebook", "solution_notebook",
           "split_regions"]

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
