"""A class of hostile submissions graded in one batch: each gets its expected score and reason.

The corpus is built here from a small two-exercise assignment (`mini`) so that
the whole batch grades in about a minute; what it exercises is the grader, not
a chapter. Every case is one student; the table below gives what must happen.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from html import unescape
from pathlib import Path

import nbformat
import pytest
from course import ROOT
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools.course import run_nbgrader
from tools.grader import sandbox
from tools.grader.report import write_report
from tools.grader.runner import Settings, grade_all
from tools.grader.submissions import fill_solutions

ASSIGNMENT = "mini"
SANDBOX = sandbox.level()
pytestmark = pytest.mark.grader


def _cell(kind, source, **nbgrader):
    cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {
            "schema_version": 3,
            "task": False,
            "grade": False,
            "solution": False,
            "locked": False,
            **nbgrader,
        }
    return cell


def source_notebook():
    """Instructor version: two exercises, each with a locked test cell (one hidden test each)."""
    cells = [
        _cell("markdown", "# Мини-задание\nНапишите `square` и `greet`."),
        _cell(
            "code",
            "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
            grade_id="square",
            solution=True,
        ),
        _cell(
            "code",
            "assert square(3) == 9\n### BEGIN HIDDEN TESTS\nassert square(-2) == 4\n### END HIDDEN TESTS",
            grade_id="square_tests",
            grade=True,
            locked=True,
            points=2,
        ),
        _cell(
            "code",
            "def greet(name):\n    ### BEGIN SOLUTION\n    return f'Привет, {name}!'\n    ### END SOLUTION",
            grade_id="greet",
            solution=True,
        ),
        _cell(
            "code",
            "assert greet('Оля') == 'Привет, Оля!'\n### BEGIN HIDDEN TESTS\n"
            "assert greet('мир') == 'Привет, мир!'\n### END HIDDEN TESTS",
            grade_id="greet_tests",
            grade=True,
            locked=True,
            points=1,
        ),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    return nb


def _with(nb, grade_id, prefix="", suffix=""):
    """A copy of ``nb`` whose cell ``grade_id`` gets extra code before / after its source."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = prefix + cell.source + suffix
    return nb


PROBE = """
import os, socket, pathlib
def _probe(action):
    try:
        action()
        return "OPEN"
    except Exception:
        return "BLOCKED"
print("NETWORK", _probe(lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3)))
print("SOLUTIONS", _probe(lambda: pathlib.Path({solutions!r}).read_text()))
print("GRADEBOOK", _probe(lambda: pathlib.Path({gradebook!r}).read_bytes()))
print("OTHERS", _probe(lambda: pathlib.Path({other!r}).read_bytes()))
print("WRITE", _probe(lambda: pathlib.Path({outside!r}).write_text("x")))
"""


def build_corpus(course: Path, port: int, only: set[str] | None = None) -> dict[str, dict]:
    """Write every case (or those in ``only``) under course/submitted; return student -> expectations."""
    source = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    release = nbformat.read(course / "modules" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    good = fill_solutions(release, source)
    full, square_pts = 3.0, 2.0
    probe = PROBE.format(
        port=port,
        solutions=str(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"),
        gradebook=str(course / "gradebook.db"),
        other=str(course / "submitted" / "correct" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"),
        outside=str(course / "written_by_student.txt"),
    )
    cases: dict[str, dict] = {}

    def add(student, nb=None, *, status, score, reason=None, raw=None, name=ASSIGNMENT, extra=None):
        if only is not None and student not in only:
            return
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        if raw is not None:
            (folder / f"{name}.ipynb").write_bytes(raw)
        elif nb is not None:
            nbformat.write(nb, folder / f"{name}.ipynb")
        for extra_name, extra_nb in (extra or {}).items():
            nbformat.write(extra_nb, folder / extra_name)
        cases[student] = {"status": status, "score": score, "reason": reason}

    add("correct", good, status="graded", score=full)
    add("blank", release, status="graded", score=0.0)
    add(
        "infinite_loop",
        _with(good, "square", prefix="while True:\n    pass\n"),
        status="partly graded",
        score=full - square_pts,
        reason="time limit hit in square",
    )
    add(
        "memory_bomb",
        _with(good, "square", prefix="_hog = bytearray(64 * 2**30)\n"),
        status="partly graded",
        score=full - square_pts,
        reason="out of memory in square",
    )
    add(
        "os_exit",
        _with(good, "square", prefix="import os\nos._exit(3)\n"),
        status="partly graded",
        score=full - square_pts,
        reason="square was disabled: the kernel died",
    )
    add(
        "fork",
        _with(
            good,
            "greet",
            prefix="import os, time\nif os.fork() == 0:\n    time.sleep(300)\n    os._exit(0)\n",
        ),
        status="graded",
        score=full,
    )
    add("probe", _with(good, "greet", suffix="\n" + probe), status="graded", score=full)
    add(
        "huge_output",
        _with(good, "greet", suffix="\nfor _i in range(200000):\n    print('спам', _i)\n"),
        status="graded",
        score=full,
    )
    add(
        "stderr",
        _with(
            good,
            "square",
            suffix="\nimport sys, warnings\nprint('отладка', file=sys.stderr)\nwarnings.warn('осторожно')\n",
        ),
        status="graded",
        score=full,
    )
    add(
        "corrupt_json",
        raw=nbformat.writes(good).encode()[:-40],
        status="not graded",
        score=None,
        reason="not valid JSON",
    )
    add("empty_file", raw=b"", status="not graded", score=None, reason="the file is empty")
    add("missing", status="not graded", score=None, reason="notebook missing")
    add(
        "renamed",
        good,
        name="my_homework",
        status="graded",
        score=full,
        reason="submitted as 'my_homework.ipynb'",
    )
    add(
        "extra_notebook",
        good,
        extra={"scratch.ipynb": new_notebook(cells=[new_code_cell("1 + 1")])},
        status="graded",
        score=full,
        reason="extra notebook 'scratch.ipynb' ignored",
    )
    dup = copy.deepcopy(good)
    dup.cells.insert(2, copy.deepcopy(dup.cells[2]))  # the square test cell twice
    dup.cells[2].id = "dupcell1"
    add("duplicated_cell", dup, status="graded", score=full, reason="'square_tests' appears more than once")
    deleted = copy.deepcopy(good)
    del deleted.cells[4]  # greet_tests
    add("deleted_cell", deleted, status="graded", score=full, reason="'greet_tests' was missing")
    split = copy.deepcopy(good)
    first = split.cells[3]
    second = copy.deepcopy(first)
    first.source, second.source = "import math", first.source
    second.id = "split002"
    split.cells.insert(4, second)
    add("split_cell", split, status="graded", score=full, reason="'greet' appears more than once")
    edited = copy.deepcopy(good)
    edited.cells[2].source = "pass  # тесты мне не нужны"
    edited.cells[2].metadata["nbgrader"]["points"] = 100
    add(
        "edited_tests",
        _with(edited, "square", suffix="\nsquare = lambda x: 0"),
        status="graded",
        score=full - square_pts,
        reason="locked cell 'square_tests' was edited",
    )
    kernel = copy.deepcopy(good)
    kernel.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    add("kernelspec", kernel, status="graded", score=full, reason="kernel 'ir' replaced")
    old = json.loads(nbformat.writes(good))
    old["nbformat_minor"] = 2
    for cell in old["cells"]:
        cell.pop("id", None)
    add("old_format", raw=json.dumps(old).encode(), status="graded", score=full, reason="old notebook format")
    experiment = copy.deepcopy(good)  # a slow cell of the student's own, after every test: costs no points
    experiment.cells.append(new_code_cell("import time\ntime.sleep(1000)"))
    add("slow_experiment", experiment, status="graded", score=full,
        reason="time limit hit in code cell 5 of section «Мини-задание»")
    russian = copy.deepcopy(good)
    russian.cells.append(new_code_cell("переменная = 'привет, мир'\nprint(переменная.upper())"))
    add("russian", russian, status="graded", score=full)
    return cases


def make_course(course: Path, db_url: str) -> Path:
    """A course folder with the mini assignment generated into the gradebook at ``db_url``."""
    shutil.copy(ROOT / "nbgrader_config.py", course)
    (course / "solutions" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    run_nbgrader(course, "generate_assignment", ASSIGNMENT, "--force",
                 f"--CourseDirectory.db_url={db_url.format(course=course)}")
    return course


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("course"), "sqlite:///{course}/gradebook.db")
    server = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=lambda: [server.accept() for _ in range(100)], daemon=True).start()
    cases = build_corpus(course, server.getsockname()[1])
    settings = Settings(
        course=course,
        assignment=ASSIGNMENT,
        db_url=f"sqlite:///{course / 'gradebook.db'}",
        jobs=2,
        cell_timeout=15,
        limits=sandbox.Limits(memory_mb=3072),
    )
    results = grade_all(settings)
    write_report(results, course / "grading_report.csv", sandbox.describe(settings.sandbox_level))
    server.close()
    return {"course": course, "cases": cases, "results": {r.student: r for r in results}}


CASES = [
    "correct",
    "blank",
    "infinite_loop",
    "memory_bomb",
    "os_exit",
    "fork",
    "probe",
    "huge_output",
    "stderr",
    "corrupt_json",
    "empty_file",
    "missing",
    "renamed",
    "extra_notebook",
    "duplicated_cell",
    "deleted_cell",
    "split_cell",
    "edited_tests",
    "kernelspec",
    "old_format",
    "russian",
    "slow_experiment",
]


@pytest.mark.parametrize("student", CASES)
def test_each_submission_gets_its_expected_status_score_and_reason(graded, student):
    want, got = graded["cases"][student], graded["results"][student]
    assert got.status == want["status"], got
    assert got.score == want["score"], got
    if want["reason"]:
        assert any(want["reason"] in r for r in got.reasons), got.reasons


def test_the_corpus_is_the_whole_class(graded):
    assert sorted(graded["cases"]) == sorted(CASES) == sorted(graded["results"])


def test_gradebook_holds_every_result(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}") as gb:
        recorded = {s.student.id: s.score for s in gb.assignment_submissions(ASSIGNMENT)}
    for student, want in graded["cases"].items():
        # A submission with nothing gradable is recorded too, with 0 points.
        assert recorded.get(student) == (want["score"] or 0.0), (student, recorded.get(student))


def test_report_has_a_row_per_student_with_the_sandbox_level(graded):
    with (graded["course"] / "grading_report.csv").open(encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(CASES)
    assert all(r["sandbox"] == sandbox.describe(SANDBOX) for r in rows.values())
    assert rows["missing"]["status"] == "not graded" and "notebook missing" in rows["missing"]["reasons"]


def _outputs(graded, student) -> str:
    path = graded["course"] / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.skipif(SANDBOX != "bwrap", reason="needs bubblewrap (installed by .ci/run)")
def test_sandbox_blocks_network_private_files_and_writes(graded):
    out = _outputs(graded, "probe")
    for what in ("NETWORK", "SOLUTIONS", "GRADEBOOK", "OTHERS", "WRITE"):
        assert f"{what} BLOCKED" in out, out
    assert not (graded["course"] / "written_by_student.txt").exists()


def test_huge_output_is_trimmed(graded):
    path = graded["course"] / "autograded" / "huge_output" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert path.stat().st_size < 200_000


def test_no_process_outlives_grading(graded):
    left = subprocess.run(
        ["pgrep", "-f", "ipykernel_launcher"], capture_output=True, text=True
    ).stdout.split()
    assert not left, left


def test_feedback_shows_messages_but_not_hidden_tests(graded):
    course = graded["course"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_feedback", ASSIGNMENT, "--force",
                           "--student", "edited_tests"], cwd=course, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    page = (course / "feedback" / "edited_tests" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text("utf-8")
    html = unescape(re.sub(r"<[^>]+>", "", page))  # the text a student reads
    assert "square(3)" in html and "AssertionError" in html  # visible test and the failure are shown
    assert "square(-2)" not in html and "BEGIN HIDDEN TESTS" not in html  # the hidden test is not
    assert "скрытые тесты" in html


def test_regrading_one_student_keeps_everyone_else(graded):
    course = graded["course"]
    settings = Settings(course=course, assignment=ASSIGNMENT, db_url=f"sqlite:///{course / 'gradebook.db'}",
                        cell_timeout=15)
    again = grade_all(settings, ["stderr"])
    assert [(r.student, r.status, r.score) for r in again] == [("stderr", "graded", 3.0)]
    write_report(again, course / "grading_report.csv", sandbox.describe(settings.sandbox_level))
    with (course / "grading_report.csv").open(encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(CASES) and rows["os_exit"]["status"] == "partly graded"
