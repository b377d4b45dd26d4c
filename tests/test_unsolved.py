"""utils.explain_unsolved: a blank exercise gives a Russian message naming it, and the cell still fails (an error
output, which is what nbgrader grades as zero)."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from utils.unsolved import unsolved_message, unsolved_name


def _run(cells: list[str], allow_errors: bool = True) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=allow_errors).execute()
    return nb


SETUP = "import utils\nassert utils.explain_unsolved()"
BLANK = "class Block:\n    def __init__(self):\n        # ВАШ КОД ЗДЕСЬ\n        raise NotImplementedError()\n"


def test_a_blank_exercise_gives_a_russian_error_output_that_names_it():
    nb = _run([SETUP, BLANK, "Block()", "raise NotImplementedError()", "raise ValueError('другая ошибка')"])
    for cell, expected in ((nb.cells[2], "`Block.__init__` ещё не написана"),
                           (nb.cells[3], "в ячейке решения ещё стоит")):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert len(errors) == 1, cell.outputs
        text = "\n".join(errors[0].traceback)
        assert "Упражнение ещё не решено" in text and expected in text
        assert "Traceback" not in text and "File " not in text
        assert errors[0].ename == "NotImplementedError"
    other = [o for o in nb.cells[4].outputs if o.output_type == "error"]
    assert other and other[0].ename == "ValueError" and len(other[0].traceback) > 1  # other errors: as before


def test_the_cell_still_fails_when_errors_are_not_allowed():
    with pytest.raises(CellExecutionError):
        _run([SETUP, BLANK, "Block()"], allow_errors=False)


def test_helpers_outside_ipython():
    assert unsolved_name(None) is None
    assert "ещё не решено" in unsolved_message("f")[0]
    from utils.unsolved import explain_unsolved

    assert explain_unsolved() is False  # plain Python (pytest): nothing to install
