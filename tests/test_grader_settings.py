"""tools.grader settings that need no grading run: threads per kernel, the tools found on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tools.course import PYTHON, tool_env
from tools.grader.runner import Settings, usable_cores


def test_kernel_threads_share_the_cores_between_jobs(tmp_path):
    one = Settings(course=tmp_path, assignment="a", db_url="sqlite:///x.db", jobs=1)
    two = Settings(course=tmp_path, assignment="a", db_url="sqlite:///x.db", jobs=2)
    pinned = Settings(course=tmp_path, assignment="a", db_url="sqlite:///x.db", jobs=1, kernel_threads=1)
    assert one.threads is None  # one job: the libraries use every core
    assert two.threads == max(1, usable_cores() // 2)
    assert pinned.threads == 1


def test_kernel_threads_follow_the_affinity_mask(tmp_path, monkeypatch):
    """Under `taskset -c 0-3` (or a container CPU set) on a 16-core machine, JOBS=2 gets 2 threads each."""
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert usable_cores() == 4
    assert Settings(course=tmp_path, assignment="a", db_url="sqlite:///x.db", jobs=2).threads == 2


def test_tools_are_found_when_path_holds_a_relative_venv(tmp_path, monkeypatch):
    """`PATH=.venv/bin:$PATH make autograde` must still find alembic and python from another folder."""
    monkeypatch.setenv("PATH", ".venv/bin" + os.pathsep + os.environ["PATH"])
    env = tool_env()
    first = env["PATH"].split(os.pathsep)[0]
    assert os.path.isabs(first) and os.path.isabs(PYTHON)
    assert (Path(first) / "alembic").exists()
    done = subprocess.run(
        [PYTHON, "-c", "import shutil; print(shutil.which('alembic'))"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert done.stdout.strip() == str(Path(first) / "alembic")


def test_cluster_kernels_share_each_hosts_cores():
    from tools.grader.cluster import threads_by_host

    nthreads = {"tcp://10.0.0.1:4001": 1, "tcp://10.0.0.1:4002": 1, "tcp://10.0.0.2:4001": 2,
                "tcp://10.0.0.3:4001": 1, "tcp://10.0.0.3:4002": 1, "tcp://10.0.0.3:4003": 1}
    cores = {"tcp://10.0.0.1:4001": 8, "tcp://10.0.0.1:4002": 8, "tcp://10.0.0.2:4001": 2,
             "tcp://10.0.0.3:4001": 2, "tcp://10.0.0.3:4002": 2, "tcp://10.0.0.3:4003": 2}
    # 8 cores / 2 gradings; 2 cores / 2 threads; 2 cores / 3 gradings still gets one thread
    assert threads_by_host(nthreads, cores) == {"tcp://10.0.0.1": 4, "tcp://10.0.0.2": 1, "tcp://10.0.0.3": 1}


def test_lateness_is_written_in_hours_minutes_seconds():
    from tools.grader.report import late

    assert late(None) == late(0) == ""
    assert late(4.4) == "late by 0:00:04"
    assert late(26 * 3600 + 125) == "late by 1 day, 2:02:05"


def test_a_report_of_an_older_version_gets_the_new_columns(tmp_path):
    import csv

    from tools.grader.report import COLUMNS, write_report
    from tools.grader.runner import NotebookResult

    path = tmp_path / "grading_report.csv"
    path.write_text("student,notebook,status,score,max_score,reasons,sandbox\nold,nb,graded,1,3,,bwrap\n")
    write_report([NotebookResult("new", "nb", status="not submitted", score=0.0, reasons=["no submission"])],
                 path, "bwrap")
    with path.open() as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert list(rows["old"]) == COLUMNS
    assert (rows["old"]["score"], rows["old"]["late"]) == ("1", "")
    assert (rows["new"]["status"], rows["new"]["score"]) == ("not submitted", "0")


def test_a_grading_process_dies_with_its_parent(tmp_path):
    """What keeps a killed Dask worker's nbgrader from writing grades after the regrade."""
    import shutil
    import signal
    import sys
    import time

    import pytest

    from tools.grader.runner import die_with_parent

    if shutil.which("setpriv") is None:
        pytest.skip("util-linux setpriv is not installed")
    marker = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys; p = subprocess.Popen(sys.argv[1:]); "
        f"open({str(marker)!r}, 'w').write(str(p.pid)); p.wait()"),
        *die_with_parent(["sleep", "60"])])
    deadline = time.time() + 10
    while not marker.exists() or not marker.read_text():
        assert time.time() < deadline
        time.sleep(0.05)
    child = int(marker.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 5
    while Path(f"/proc/{child}").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] != "Z":
        assert time.time() < deadline, "the child outlived its parent"
        time.sleep(0.05)


def test_cells_are_named_as_a_student_finds_them():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from tools.grader.runner import cell_label

    graded = new_code_cell("x = 1")
    graded.metadata["nbgrader"] = {"grade_id": "square_tests"}
    nb = new_notebook(cells=[new_code_cell("import torch"), new_markdown_cell("# Глава\n\n## 5. Обучение\nтекст"),
                             new_code_cell("a"), graded, new_code_cell("b"), new_markdown_cell("без заголовка"),
                             new_code_cell("c")])
    assert cell_label(nb, 0) == "code cell 1 (before the first heading)"
    assert cell_label(nb, 2) == "code cell 1 of section «5. Обучение»"
    assert cell_label(nb, 3) == "square_tests"
    assert cell_label(nb, 6) == "code cell 4 of section «5. Обучение»"  # markdown without a heading ends nothing
