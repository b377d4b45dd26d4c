"""Submissions made from the course's own notebooks, for tests and benchmarks of the grader."""

from __future__ import annotations

import copy

import nbformat

from tools.course import chapter


def fill_solutions(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What a good student hands in: ``release`` with each solution cell holding the instructor's code."""
    nb = copy.deepcopy(release)
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def completed_submission(slug: str) -> nbformat.NotebookNode:
    """The released notebook of chapter ``slug`` with every answer filled in."""
    ch = chapter(slug)
    release = nbformat.read(ch.release_notebook(), as_version=4)
    source = nbformat.read(ch.instructor_notebook(), as_version=4)
    return fill_solutions(release, source)
