"""tools.run_notebook: the executed copy survives a failing cell, with the outputs before it."""

from __future__ import annotations

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tools.run_notebook import execute


def test_executed_copy_is_kept_when_a_cell_fails(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import os\nprint('режим', os.environ.get('COURSE_FAST'))"),
        nbformat.v4.new_code_cell("raise ValueError('stop here')"),
        nbformat.v4.new_code_cell("print('never')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "tiny.ipynb"
    nbformat.write(nb, source)
    with pytest.raises(CellExecutionError, match="stop here"):
        execute(source, fast=True, out=tmp_path / "out")
    done = nbformat.read(tmp_path / "out" / "tiny.executed.ipynb", as_version=4)
    assert done.cells[0].outputs[0]["text"] == "режим 1\n"  # fast mode reached the kernel
    assert done.cells[1].outputs[0]["ename"] == "ValueError"
    assert done.cells[2].outputs == []
