"""No visible test gives an exercise's answer away (issue 38 §6).

A visible test cell may define helpers (stand-in models, small tables); none of them may be a complete answer.
For every function or class a visible test defines, and every name of the same kind the exercise asks for
(defined in the solution cell just before the test), the check binds the exercise's name to the helper and runs
the whole test cell, hidden tests included, on top of the chapter's reference code: if it passes, a student could
have copied the helper and earned every point.
"""

from __future__ import annotations

import ast
import os
import warnings

import pytest
from course import grading, solution_notebook

from tools.course import chapters

HIDDEN = "### BEGIN HIDDEN TESTS"
SKIPPED: dict = {}


def _defined(source: str) -> dict[str, str]:
    """Top-level functions and classes of ``source``: name -> 'function' or 'class'."""
    kinds = {ast.FunctionDef: "function", ast.AsyncFunctionDef: "function", ast.ClassDef: "class"}
    return {node.name: kinds[type(node)] for node in ast.parse(source).body if type(node) in kinds}


def exercise_pairs(slug: str) -> list[tuple[str, str, str]]:
    """(test grade_id, exercise name, visible helper name) for every same-kind pair of a chapter."""
    pairs, answer = [], None
    for cell in solution_notebook(slug).cells:
        if cell.cell_type != "code":
            continue
        meta = grading(cell)
        if meta.get("solution") and not meta.get("grade"):
            answer = _defined(cell.source)
        elif meta.get("grade") and answer:
            visible = _defined(cell.source.split(HIDDEN)[0])
            pairs += [(meta["grade_id"], name, helper) for name, kind in answer.items()
                      for helper, helper_kind in visible.items() if helper_kind == kind]
    return pairs


def _cases():
    for spec in chapters():
        if spec.slug in SKIPPED:
            continue
        for test_id, name, helper in exercise_pairs(spec.slug):
            yield pytest.param(spec.slug, test_id, name, helper, id=f"{spec.slug}:{test_id}:{name}<-{helper}")


def passes_as_answer(ns: dict, cell: str, name: str, helper: str) -> bool:
    """Whether the visible part of ``cell`` defines ``helper`` that, bound to ``name`` in ``ns`` (the reference
    code), passes the whole cell."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exec(cell.split(HIDDEN)[0], ns)  # the visible part defines the helper
        except Exception:
            return False  # the helper cannot even be defined beside the reference: nothing to copy
        ns[name] = ns[helper]
        try:
            exec(cell, ns)
        except Exception:
            return False  # the helper used as the answer fails the tests
    return True


@pytest.mark.parametrize("slug, test_id, name, helper", list(_cases()))
def test_no_visible_helper_passes_as_the_answer(slug, test_id, name, helper):
    import torch

    from tools.artifacts.chapter_code import definitions

    cell = next(c.source for c in solution_notebook(slug).cells if grading(c).get("grade_id") == test_id)
    previous = os.environ.get("COURSE_FAST")
    os.environ["COURSE_FAST"] = "1"
    ns: dict = {"__name__": f"leak_{slug}", "device": torch.device("cpu"), "FAST": True}
    try:
        for code, required in definitions(slug, constants=True):
            try:
                exec(code, ns)
            except Exception:
                if required:
                    raise
        leaked = passes_as_answer(ns, cell, name, helper)
    finally:
        if previous is None:
            os.environ.pop("COURSE_FAST", None)
        else:
            os.environ["COURSE_FAST"] = previous
    assert not leaked, f"{slug}: the visible test {test_id} defines {helper}, which passes every test as {name}"


def test_the_check_finds_a_leak_and_passes_a_stand_in():
    """The check itself, on a made-up exercise: a visible helper that is the answer under another name is caught;
    a stand-in that is not is let through."""
    reference = "def square(x):\n    return x * x\n"
    hidden = f"{HIDDEN}\nassert square(3) == 9 and square(-2) == 4\n"
    leaking = "def _t_reference(x):\n    return x * x\n" + hidden
    stand_in = "def _t_stand_in(x):\n    return 9\nassert _t_stand_in(1) == 9\n" + hidden
    for cell, helper, leaks in ((leaking, "_t_reference", True), (stand_in, "_t_stand_in", False)):
        ns: dict = {}
        exec(reference, ns)
        assert _defined(cell.split(HIDDEN)[0]) == {helper: "function"}
        assert passes_as_answer(ns, cell, "square", helper) is leaks
