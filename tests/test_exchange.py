"""The nbgrader exchange round trip with real Unix users: an instructor and two students.

release -> fetch -> submit (a re-submission, a late one) -> collect -> autograde
-> feedback -> return -> fetch feedback, each step run by its own user through the
course's `make` targets (students use nbgrader's commands, as the Assignments tab
does). A third student of the roster never submits. The instructor's course is a
copy of this repository's course files with the small `mini` assignment of
tests/test_grader.py; the exchange is a folder every user may write, as nbgrader's
documentation sets it up (`chmod ugo+rw`).
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest
from course import ROOT
from test_grader import ASSIGNMENT, source_notebook
from unix_accounts import CAN_CREATE_USERS, SKIP_REASON, Accounts, interpreter_reachable

from tools.grader.submissions import fill_solutions

pytestmark = [pytest.mark.grader, pytest.mark.accounts,
              pytest.mark.skipif(not CAN_CREATE_USERS, reason=SKIP_REASON)]

COURSE_ID = "dl-course-ru"
TEACHER, ANNA, BORIS, VERA = "dlc_teacher", "dlc_anna", "dlc_boris", "dlc_vera"
COURSE_FILES = ["Makefile", "pyproject.toml", "nbgrader_config.py", "chapters.toml", "tools", "utils"]


def copy_course(dest: Path) -> None:
    """What an instructor's clone holds for grading, file dates kept (so `make` sees the environment as current)."""
    dest.mkdir()
    for name in COURSE_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    (dest / "solutions" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), dest / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")


def _edit(path: Path, nb: nbformat.NotebookNode, owner: str) -> None:
    """The student's work saved over the fetched notebook (as Jupyter would, the file stays the student's)."""
    nbformat.write(nb, path)
    shutil.chown(path, owner)


def _timestamp(folder: Path) -> datetime:
    text = (folder / "timestamp.txt").read_text().strip()
    return datetime.strptime(text.rsplit(" ", 1)[0], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def round_trip():
    base = Path(tempfile.mkdtemp(prefix="course-exchange-"))
    base.chmod(0o755)
    exchange = base / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # nbgrader's documented setup: every user reads and writes the exchange root
    venv_bin = Path(sys.prefix) / "bin"
    accounts = Accounts(base / "home", str(venv_bin))
    (base / "home").mkdir()
    (base / "home").chmod(0o755)
    flags = f"--course {COURSE_ID} --Exchange.root={exchange}"
    make = f"make VENV={sys.prefix} EXCHANGE={exchange}"
    try:
        with interpreter_reachable([ROOT]):
            for name in (TEACHER, ANNA, BORIS):
                accounts.add(name)
            course = accounts.home(TEACHER) / "course"
            copy_course(course)
            shutil.chown(course, TEACHER)
            for path in course.rglob("*"):
                shutil.chown(path, TEACHER)
            (course / "roster.csv").write_text(f"id,first_name\n{ANNA},Анна\n{BORIS},Борис\n{VERA},Вера\n")
            teacher = lambda cmd: accounts.run(TEACHER, cmd, cwd=course)  # noqa: E731
            teacher("nbgrader db student import roster.csv")
            teacher(f"{make} release-assignment ASSIGNMENT={ASSIGNMENT} DUEDATE='2099-01-01 00:00:00 UTC'")
            listing = accounts.run(ANNA, f"nbgrader list {flags}")
            listed = listing.stdout + listing.stderr  # nbgrader logs the list on stderr

            def fetch_and_fill(student):
                accounts.run(student, f"nbgrader fetch_assignment {ASSIGNMENT} {flags}")
                path = accounts.home(student) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
                blank = nbformat.read(path, as_version=4)
                return path, fill_solutions(blank, source_notebook())

            # Anna hands in the blank notebook, then her finished one: the newer submission counts.
            anna_nb, anna_done = fetch_and_fill(ANNA)
            accounts.run(ANNA, f"nbgrader submit {ASSIGNMENT} {flags}")
            time.sleep(1.1)
            _edit(anna_nb, anna_done, ANNA)
            accounts.run(ANNA, f"nbgrader submit {ASSIGNMENT} {flags}")
            # The instructor moves the deadline to now; Boris submits after it.
            time.sleep(1.1)
            due = datetime.now(timezone.utc).replace(microsecond=0)
            teacher(f"nbgrader db assignment add {ASSIGNMENT} --duedate='{due:%Y-%m-%d %H:%M:%S} UTC'")
            time.sleep(2.1)
            boris_nb, boris_done = fetch_and_fill(BORIS)
            _edit(boris_nb, boris_done, BORIS)
            accounts.run(BORIS, f"nbgrader submit {ASSIGNMENT} {flags}")
            # Boris tries to read Anna's submission in the exchange.
            peek = accounts.run(BORIS, f"ls {exchange}/{COURSE_ID}/inbound/ && cat {exchange}/{COURSE_ID}/inbound/"
                                       f"{ANNA}+{ASSIGNMENT}+*/{ASSIGNMENT}.ipynb", check=False)
            teacher(f"{make} collect ASSIGNMENT={ASSIGNMENT}")
            graded = teacher(f"{make} autograde ASSIGNMENT={ASSIGNMENT}")
            teacher(f"{make} feedback ASSIGNMENT={ASSIGNMENT}")
            teacher(f"{make} return-feedback ASSIGNMENT={ASSIGNMENT}")
            for student in (ANNA, BORIS):
                accounts.run(student, f"nbgrader fetch_feedback {ASSIGNMENT} {flags}")
            with (course / "grading_report.csv").open(encoding="utf-8") as f:
                report = {row["student"]: row for row in csv.DictReader(f)}
            feedback = {
                student: sorted((accounts.home(student) / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
                for student in (ANNA, BORIS)
            }
            yield {
                "course": course, "exchange": exchange, "listed": listed, "peek": peek, "due": due,
                "graded": graded.stdout, "report": report,
                "feedback": {k: [p.read_text(encoding="utf-8") for p in v] for k, v in feedback.items()},
                "submitted": {s: _timestamp(course / "submitted" / s / ASSIGNMENT) for s in (ANNA, BORIS)},
                "owners": {p.name: p.owner() for p in (exchange / COURSE_ID).iterdir()},
                "inbound_mode": (exchange / COURSE_ID / "inbound").stat().st_mode & 0o777,
            }
    finally:
        accounts.remove_all()
        shutil.rmtree(base, ignore_errors=True)


def test_students_see_the_released_assignment(round_trip):
    assert ASSIGNMENT in round_trip["listed"], round_trip["listed"]
    assert round_trip["owners"] == {"inbound": TEACHER, "outbound": TEACHER, "feedback": TEACHER}


def test_a_student_cannot_read_another_students_submission(round_trip):
    assert round_trip["inbound_mode"] == 0o733, oct(round_trip["inbound_mode"])  # write-only for students
    assert round_trip["peek"].returncode != 0
    assert "square" not in round_trip["peek"].stdout


def test_the_newest_submission_is_graded_and_the_late_one_is_marked(round_trip):
    anna, boris = round_trip["report"][ANNA], round_trip["report"][BORIS]
    assert (anna["status"], anna["score"], anna["max_score"], anna["late"]) == ("graded", "3", "3", "")
    assert anna["submitted_at"] == f"{round_trip['submitted'][ANNA]:%Y-%m-%d %H:%M:%S} UTC"
    assert round_trip["submitted"][ANNA] < round_trip["due"] < round_trip["submitted"][BORIS]
    assert (boris["status"], boris["score"]) == ("graded", "3")
    seconds_late = (round_trip["submitted"][BORIS] - round_trip["due"]).total_seconds()
    h, m, s = (int(x) for x in boris["late"].removeprefix("late by ").split(":"))
    assert abs(h * 3600 + m * 60 + s - seconds_late) <= 1, (boris["late"], seconds_late)


def test_a_student_who_never_submitted_is_in_the_report_with_zero(round_trip):
    vera = round_trip["report"][VERA]
    assert (vera["status"], vera["score"], vera["reasons"]) == ("not submitted", "0", "no submission")


def test_each_student_fetches_feedback_without_the_hidden_tests(round_trip):
    for student in (ANNA, BORIS):
        pages = round_trip["feedback"][student]
        assert len(pages) == 1, (student, pages)
        assert "3 / 3" in pages[0] or "3.0 / 3.0" in pages[0], pages[0][:2000]
        assert "square(-2)" not in pages[0]  # the hidden test's code stays with the instructor


def test_grading_ran_sandboxed_as_the_instructor(round_trip):
    assert "UNSANDBOXED" not in round_trip["graded"] or shutil.which("bwrap") is None, round_trip["graded"]
    assert os.stat(round_trip["course"] / "gradebook.db").st_uid != 0
