"""The gradebook on a real PostgreSQL server: parallel graders write to it directly.

The test starts its own server on loopback (initdb + pg_ctl from Debian's
`postgresql` package, which .ci/run installs) and stops it afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_grader import ASSIGNMENT, build_corpus, make_course

from tools.grader.runner import Settings, grade_all

PG_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
pytestmark = [pytest.mark.grader, pytest.mark.postgres,
              pytest.mark.skipif(PG_BIN is None, reason="PostgreSQL server binaries are not installed")]


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: use the package's `postgres` account when we are root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres():
    # Not under pytest's tmp folders: those are private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="course-pg-"))
    base.chmod(0o755)
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*cmd):
        return subprocess.run(_as_server_user(list(cmd)), check=True, capture_output=True, text=True)

    run(f"{PG_BIN}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(f"{PG_BIN}/pg_ctl", "-D", str(data), "-w", "-l", str(base / "server.log"),
        "-o", f"-h 127.0.0.1 -p {port} -k {sockets}", "start")
    try:
        run(f"{PG_BIN}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "gradebook")
        yield f"postgresql://postgres@127.0.0.1:{port}/gradebook"
    finally:
        run(f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_parallel_grading_into_postgresql(postgres, tmp_path):
    from nbgrader.api import Gradebook

    (tmp_path / "course").mkdir()
    course = make_course(tmp_path / "course", postgres)
    cases = build_corpus(course, port=9, only={"correct", "blank", "os_exit", "renamed", "missing"})
    settings = Settings(course=course, assignment=ASSIGNMENT, db_url=postgres, jobs=2, cell_timeout=15)
    results = grade_all(settings)
    by_student = {r.student: r for r in results}
    with Gradebook(postgres) as gb:
        recorded = {s.student.id: s.score for s in gb.assignment_submissions(ASSIGNMENT)}
    for student, want in cases.items():
        assert by_student[student].status == want["status"], by_student[student]
        assert by_student[student].score == want["score"], by_student[student]
        assert recorded[student] == (want["score"] or 0.0), (student, recorded)
    assert not (course / "gradebook.db").exists()  # nothing went to SQLite by mistake
