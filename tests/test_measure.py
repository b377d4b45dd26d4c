"""tools.measure: a run keeps its executed copy and collects what the notebook recorded; the calibration."""

from __future__ import annotations

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tools.measure.calibration import calibrate
from tools.measure.run_notebook import execute

SETUP = "import sys\nsys.path.insert(0, {root!r})\nimport os, utils"


def _notebook(tmp_path, *sources):
    from course import ROOT

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP.format(root=str(ROOT)))]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_a_complete_run_returns_what_the_notebook_recorded(tmp_path):
    source = _notebook(tmp_path, "print('режим', os.environ.get('COURSE_FAST'))",
                       "utils.summary([('fid', 'FID-оценка', 12.345678, '.1f'), ('steps', 'шагов', 30)])")
    target, seconds, recorded = execute(source, fast=True, out=tmp_path / "out")
    assert recorded == {"fid": 12.3457, "steps": 30} and seconds > 0
    done = nbformat.read(target, as_version=4)
    assert len(done.cells) == 3, "the collecting cell is not kept in the executed copy"
    assert done.cells[1].outputs[0]["text"] == "режим 1\n"  # fast mode reached the kernel
    assert "FID-оценка  12.3" in done.cells[2].outputs[0]["text"]


@pytest.mark.notebook
def test_executed_copy_is_kept_when_a_cell_fails(tmp_path):
    source = _notebook(tmp_path, "utils.record('x', 1)", "raise ValueError('stop here')", "print('never')")
    with pytest.raises(CellExecutionError, match="stop here"):
        execute(source, fast=True, out=tmp_path / "out")
    done = nbformat.read(tmp_path / "out" / "tiny.executed.ipynb", as_version=4)
    assert done.cells[2].outputs[0]["ename"] == "ValueError"
    assert done.cells[3].outputs == [] and len(done.cells) == 4


def test_calibration_times_a_real_workload():
    seconds = calibrate(repeats=1)
    assert 0.05 < seconds < 600
