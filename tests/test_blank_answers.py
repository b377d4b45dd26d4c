"""What a student sees when an exercise is still blank or crashes (issue 39 §4).

For every graded test cell of every chapter, run the released (student) test cell after the released solution
cells of its exercise, still blank, on top of the chapter's reference definitions: the cell must stop with the
exercise's own ``NotImplementedError``, which ``utils.explain_unsolved`` turns into «Упражнение ещё не решено:
`name` ещё не написана» (tests/test_unsolved.py). A test cell that catches it, or that crashes on something else
first, would show a traceback instead. Every rejected mistake of the exercise tables must fail with a Russian
message (tests/exercise_checks.py).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import pytest
from course import SLUGS, grading, release_notebook
from exercise_checks import reference_namespace

from utils.unsolved import unsolved_name


def _exercises(slug: str) -> list[tuple[str, list[str], str, list[str]]]:
    """(grade_id of a test cell, the released solution cells since the previous test cell, the released test cell,
    the earlier released test cells: a later one may use what an earlier one defined, as in the notebook)."""
    found, solutions, tests = [], [], []
    for cell in release_notebook(slug).cells:
        meta = grading(cell)
        if cell.cell_type != "code":
            continue
        if meta.get("solution"):
            solutions.append(cell.source)
        elif meta.get("grade"):
            found.append((meta["grade_id"], solutions, cell.source, list(tests)))
            solutions = []
            tests.append(cell.source)
    return found


CASES = [pytest.param(slug, test_id, blanks, test, earlier, id=f"{slug}:{test_id}")
         for slug in SLUGS for test_id, blanks, test, earlier in _exercises(slug)]


@pytest.mark.parametrize("slug, test_id, blanks, test, earlier", CASES)
def test_a_blank_exercise_stops_its_test_cell_with_the_unsolved_message(slug, test_id, blanks, test, earlier):
    assert blanks, f"{test_id}: no solution cell before it"
    assert any("raise NotImplementedError()" in b for b in blanks), f"{test_id}: the released answer is not blank"
    with reference_namespace(slug, f"blank_{slug}") as ns:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            for cell in earlier:  # the earlier exercises, solved (the reference), and their test cells
                with contextlib.suppress(Exception):
                    exec(cell, ns)
        for blank in blanks:
            exec(blank, ns)  # defining the blank functions and classes does not raise
        with warnings.catch_warnings(), pytest.raises(NotImplementedError) as info:
            warnings.simplefilter("ignore")
            exec(compile(test, f"<{test_id}>", "exec"), ns)
    name = unsolved_name(info.value.__traceback__)
    assert name is not None, f"{test_id}: NotImplementedError raised at a cell's top level, not in the exercise"
