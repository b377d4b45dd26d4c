"""Run a chapter's graded test cells in-process against a given implementation.

Used by the per-chapter `test_NN_exercise_checks.py` files to show that the
tests reject plausible mistakes and accept other correct implementations.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import textwrap
import warnings

from course import cell_by_grade_id, grading, solution_notebook

RUSSIAN = re.compile("[а-яё]", re.IGNORECASE)
PREAMBLE = """
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import utils
"""


def run_test_cell(chapter: str, implementation: str, test_id: str) -> None:
    """Define ``implementation``, then run the graded test cell ``test_id`` of ``chapter``."""
    ns: dict = {}
    exec(PREAMBLE, ns)
    exec(textwrap.dedent(implementation), ns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(cell_by_grade_id(solution_notebook(chapter), test_id), ns)


def graded_test_ids(chapter: str) -> list[str]:
    """grade_ids of the autograded (code) test cells of a chapter."""
    return [grading(c)["grade_id"] for c in solution_notebook(chapter).cells
            if grading(c).get("grade") and c.cell_type == "code"]


@functools.cache
def _reference_code(chapter: str) -> list:
    from tools.artifacts.chapter_code import definitions

    return definitions(chapter, constants=True)


@contextlib.contextmanager
def reference_namespace(chapter: str, name: str):
    """A namespace as a fast-mode notebook would have it after running the chapter's reference definitions
    (``COURSE_FAST=1`` while the block runs, restored after). Definitions that need data only an experiment cell
    makes are skipped."""
    import torch

    previous = os.environ.get("COURSE_FAST")
    os.environ["COURSE_FAST"] = "1"
    try:
        ns: dict = {"__name__": name, "device": torch.device("cpu"), "FAST": True}
        for code, required in _reference_code(chapter):
            try:
                exec(code, ns)
            except Exception:
                if required:
                    raise
        yield ns
    finally:
        if previous is None:
            os.environ.pop("COURSE_FAST", None)
        else:
            os.environ["COURSE_FAST"] = previous


def run_later_test_cells(chapter: str, implementation: str, test_id: str) -> None:
    """Run, in one namespace as a notebook would, the chapter's reference definitions, then ``implementation``
    (a student's answer to the exercise graded by ``test_id``), then every graded test cell in order: those up
    to ``test_id``'s may fail, every later one must pass (a mistake costs its own exercise's points only)."""
    with reference_namespace(chapter, f"isolation_{chapter}") as ns:
        exec(textwrap.dedent(implementation), ns)
        ids = graded_test_ids(chapter)
        own = ids.index(test_id)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for position, cell_id in enumerate(ids):
                try:
                    exec(cell_by_grade_id(solution_notebook(chapter), cell_id), ns)
                except Exception as exc:
                    if position > own:
                        raise AssertionError(f"a mistake graded by {test_id} also fails {cell_id}: {exc!r}") from exc


def variants(template: str, good: dict):
    """Fill ``template``'s holes: with no arguments, the reference implementation; with keyword arguments, the
    same code with those holes filled otherwise (a plausible mistake, or another correct way to write it)."""
    def fill(**changes) -> str:
        return template.format(**{**good, **changes})

    return fill


def exercise_tests(chapter: str, exercises: dict, known_to_spill: dict | None = None):
    """The four tests every chapter's check file runs over its table of implementations.

    ``exercises`` maps a test cell's grade_id to {"correct": {name: source},
    "wrong": {name: source}}. Assign the returned functions to module-level
    ``test_*`` names so that pytest collects them.
    """
    import pytest

    ok = [(t, n, src) for t, e in exercises.items() for n, src in e["correct"].items()]
    bad = [(t, n, src) for t, e in exercises.items() for n, src in e["wrong"].items()]

    @pytest.mark.parametrize("test_id, name, source", ok, ids=[f"{t}:{n}" for t, n, _ in ok])
    def test_correct_implementations_pass(test_id, name, source):
        run_test_cell(chapter, source, test_id)

    @pytest.mark.parametrize("test_id, name, source", bad, ids=[f"{t}:{n}" for t, n, _ in bad])
    def test_plausible_mistakes_are_rejected(test_id, name, source):
        # Any exception counts: nbgrader scores a test cell 0 for a crash as for a failed assert. What the student
        # reads must be Russian and say what was checked (utils.checking wraps calls that may crash).
        with pytest.raises(Exception) as info:  # noqa: B017
            run_test_cell(chapter, source, test_id)
        assert RUSSIAN.search(str(info.value)), f"the student sees no Russian message: {info.value!r}"

    def test_every_exercise_lists_at_least_three_mistakes():
        assert sorted(graded_test_ids(chapter)) == sorted(exercises)
        assert all(len(e["wrong"]) >= 3 for e in exercises.values())

    spill = known_to_spill or {}
    unknown = set(spill) - {(t, n) for t, n, _ in bad}
    assert not unknown, f"known_to_spill names mistakes that are not in the table: {sorted(unknown)}"
    isolated = [pytest.param(t, n, src, id=f"{t}:{n}",
                             marks=[pytest.mark.xfail(strict=True, reason=spill[t, n])] if (t, n) in spill else [])
                for t, n, src in bad]

    @pytest.mark.parametrize("test_id, name, source", isolated)
    def test_mistakes_cost_only_their_own_exercise(test_id, name, source):
        run_later_test_cells(chapter, source, test_id)

    return (test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
            test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise)
