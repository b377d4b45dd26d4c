"""Grading on a real local Dask cluster into PostgreSQL; a worker killed mid-grading loses nothing.

A scheduler and two worker processes are started on loopback (tools.grader.cluster.local_cluster);
seven submissions of the `mini` assignment of tests/test_grader.py are graded through
`grade_on_cluster`, and one worker is killed with SIGKILL while its nbgrader process runs.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import nbformat
import pytest
from test_grader import ASSIGNMENT, make_course, source_notebook
from test_grader_postgres import PG_BIN, postgres  # noqa: F401 -- the server fixture

from tools.grader.cluster import grade_on_cluster, local_cluster
from tools.grader.runner import Settings
from tools.grader.submissions import fill_solutions

pytestmark = [pytest.mark.grader, pytest.mark.postgres, pytest.mark.cluster,
              pytest.mark.skipif(PG_BIN is None, reason="PostgreSQL server binaries are not installed")]

GOOD = [f"student{i}" for i in range(6)]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def cluster_run(postgres, tmp_path_factory):  # noqa: F811 -- the imported fixture
    course = make_course(tmp_path_factory.mktemp("course"), postgres)
    release = nbformat.read(course / "modules" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for student, nb in [*((s, fill_solutions(release, source_notebook())) for s in GOOD), ("blank", release)]:
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    settings = Settings(course=course, assignment=ASSIGNMENT, db_url=postgres, cell_timeout=15)
    log = course / ".grading" / "cluster.log"
    outcome: dict = {}
    with local_cluster(2, folder=tmp_path_factory.mktemp("cluster")) as (address, workers):
        grading = threading.Thread(target=lambda: outcome.update(results=grade_on_cluster(settings, address)))
        grading.start()
        victim = stale = None
        deadline = time.time() + 120
        while victim is None and time.time() < deadline:  # the first worker with a grading process under it
            time.sleep(0.2)
            started = [line.split("\t") for line in log.read_text().splitlines()] if log.exists() else []
            for _, worker, event, student in started:
                if event == "start" and _children(workers[worker].pid):
                    victim, victim_student = worker, student
                    break
        assert victim is not None, "no grading started within 120 s"
        time.sleep(1.5)  # nbgrader is running the notebook
        stale = _children(workers[victim].pid)
        os.kill(workers[victim].pid, signal.SIGKILL)
        time.sleep(2)
        outcome["stale_alive"] = [pid for pid in stale if _alive(pid)]
        grading.join(timeout=600)
    outcome.update(victim=victim, victim_student=victim_student, stale=stale,
                   log=[line.split("\t") for line in log.read_text().splitlines()])
    import psycopg

    with psycopg.connect(postgres) as conn:
        outcome["grade_rows"] = conn.execute(
            "select count(*), count(distinct (notebook_id, cell_id)) from grade").fetchone()
        outcome["submissions"] = conn.execute("select count(*) from submitted_assignment").fetchone()[0]
    return outcome


def test_every_submission_is_graded_despite_the_killed_worker(cluster_run):
    results = {r.student: r for r in cluster_run["results"]}
    assert sorted(results) == sorted([*GOOD, "blank"])
    for student in GOOD:
        assert (results[student].status, results[student].score) == ("graded", 3.0), results[student]
    assert (results["blank"].status, results["blank"].score) == ("graded", 0.0), results["blank"]


def test_the_killed_workers_submission_was_regraded_elsewhere(cluster_run):
    victim, student = cluster_run["victim"], cluster_run["victim_student"]
    events = [(worker, event) for _, worker, event, who in cluster_run["log"] if who == student]
    assert (victim, "start") in events and (victim, "done") not in events, events
    assert [e for w, e in events if w != victim] == ["start", "done"], events


def test_the_killed_workers_grading_process_died_with_it(cluster_run):
    assert cluster_run["stale"], "the worker had no grading process when it was killed"
    assert cluster_run["stale_alive"] == []


def test_no_grade_is_written_twice(cluster_run):
    rows, distinct = cluster_run["grade_rows"]
    assert rows == distinct == 7 * 2  # seven submissions, two graded cells each
    assert cluster_run["submissions"] == 7
