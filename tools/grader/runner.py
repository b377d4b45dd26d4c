"""Grade every submission of an assignment, each on its own, and say what happened to each.

One student's submission is graded by its own `nbgrader autograde --student`
process, after `preflight` has repaired the notebook file, with the kernel in
the sandbox of `sandbox`, and (with the default SQLite gradebook) into a
private copy of the gradebook whose results are then copied into the main one
by this process alone: SQLite is not safe for several writers, and a crash in
one grading run cannot corrupt the class's gradebook. With a server gradebook
(PostgreSQL `db_url`) the runs write to it directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tools.course import PYTHON, ROOT, tool_env

from . import sandbox
from .preflight import Prepared, prepare_submission

KERNEL_DIED = re.compile(r"DeadKernelError|Kernel died|kernel died|UnresponsiveKernelError")


def die_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` run so that it gets SIGKILL when the grading process dies (util-linux setpriv, where installed).

    A grader killed mid-run (a lost Dask worker) must not leave an nbgrader process that
    writes grades after the submission has been regraded elsewhere.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *cmd] if setpriv else cmd


def usable_cores() -> int:
    """Cores this process may use: its affinity mask (taskset, container CPU sets), not cpu_count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class NotebookResult:
    student: str
    notebook: str
    status: str = "not graded"  # graded | partly graded | not graded
    score: float | None = None
    max_score: float | None = None
    reasons: list[str] = field(default_factory=list)
    failed: bool = False  # nothing of this notebook could be graded
    troubled: bool = False  # graded, but some cells hit a limit or were disabled
    seconds: float | None = None  # wall time of grading this student's whole submission
    manual_pending: float | None = None  # points of written answers the instructor has not graded yet
    submitted_at: str | None = None  # the submission's timestamp (nbgrader's timestamp.txt), UTC
    late_seconds: float | None = None  # past the due date (with any extension); 0 when on time

    def fail(self, reason: str) -> None:
        self.reasons.append(reason)
        self.failed = True


@dataclass
class Settings:
    course: Path
    assignment: str
    db_url: str
    jobs: int = 1
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    submission_timeout: int = 1200  # seconds for one student's whole assignment
    sandbox_level: str = field(default_factory=sandbox.level)
    submitted: Path | None = None  # default: <course>/submitted
    cell_timeout: int | None = None  # seconds per cell; default: Execute.timeout of nbgrader_config.py
    kernel_threads: int | None = None  # BLAS/OpenMP threads per kernel; default: cores / jobs

    @property
    def threads(self) -> int | None:
        """Threads each kernel may use: None (the libraries' default, every core) for one job."""
        if self.kernel_threads:
            return self.kernel_threads
        return max(1, usable_cores() // self.jobs) if self.jobs > 1 else None

    @property
    def submitted_dir(self) -> Path:
        return self.submitted or self.course / "submitted"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")


def config_value(course: Path, name: str, default: str) -> str:
    """A `c.CourseDirectory.<name> = "..."` string from the course's nbgrader_config.py, else ``default``."""
    config = course / "nbgrader_config.py"
    pattern = rf"^c\.CourseDirectory\.{name}\s*=\s*[\"']([^\"']*)[\"']"
    found = re.search(pattern, config.read_text(), re.M) if config.exists() else None
    return found.group(1) if found else default


def course_id(course: Path) -> str:
    """The course_id of the course's nbgrader_config.py (nbgrader's default when it sets none)."""
    return config_value(course, "course_id", "default_course")


def _masters(s: Settings) -> dict[str, nbformat.NotebookNode]:
    folder = s.course / "modules" / s.assignment
    masters = {p.stem: nbformat.read(p, as_version=4) for p in sorted(folder.glob("*.ipynb"))}
    if not masters:
        raise SystemExit(f"no released notebooks in {folder}: run `make release` / generate_assignment first")
    return masters


def cell_label(nb: nbformat.NotebookNode, index: int) -> str:
    """How a student finds cell ``index``: its grade id, else "code cell 2 of section «5. Обучение»"."""
    cell = nb.cells[index]
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    if grade_id:
        return grade_id
    section, ordinal = None, 0
    for before in nb.cells[: index + 1]:
        headings = [line for line in before.source.splitlines() if line.startswith("#")]
        if before.cell_type == "markdown" and headings:
            section, ordinal = headings[-1].lstrip("#").strip(), 0
        elif before.cell_type == "code":
            ordinal += 1
    kind = "code cell" if cell.cell_type == "code" else f"{cell.cell_type} cell"
    return f"{kind} {ordinal} of section «{section}»" if section else f"{kind} {ordinal} (before the first heading)"


def _cell_errors(path: Path) -> list[str]:
    """Plain-English notes on the cells of a graded notebook that ended in a timeout or out of memory."""
    notes = []
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            where = cell_label(nb, i)
            if out.ename in ("CellTimeoutError", "KeyboardInterrupt", "TimeoutError"):
                notes.append(f"time limit hit in {where}")
            elif out.ename == "MemoryError":
                notes.append(f"out of memory in {where}")
            elif out.ename == "RuntimeError" and "KERNEL-DIED" in out.evalue:
                notes.append(f"{where} was disabled: the kernel died while running it")
    return notes


def _disable_cell_that_kills_the_kernel(
    notebook: Path, settings: Settings, env: dict, workdir: Path
) -> str | None:
    """Find the cell during which the kernel dies (tools.grader.probe) and replace it by an error.

    Returns the cell's name, or None when the kernel survived (then the failure was something else).
    """
    try:
        done = subprocess.run(
            die_with_parent([
                PYTHON,
                "-m",
                "tools.grader.probe",
                str(notebook),
                str(workdir),
                str(settings.cell_timeout or 120),
            ]),
            cwd=ROOT,
            env=env,
            text=True,
            capture_output=True,
            timeout=settings.submission_timeout,
        )
        index = json.loads(done.stdout.strip().splitlines()[-1])["died_at"]
    except (subprocess.TimeoutExpired, IndexError, ValueError):
        return None
    if index is None:
        return None
    nb = nbformat.read(notebook, as_version=4)
    cell = nb.cells[index]
    name = cell_label(nb, index)
    cell.source = (
        "raise RuntimeError('KERNEL-DIED: ядро Python упало при выполнении этой ячейки; она отключена')"
    )
    nbformat.write(nb, notebook)
    return name


def _run_autograde(
    s: Settings, student: str, staging_root: Path, db_url: str, env: dict
) -> subprocess.CompletedProcess:
    cmd = [
        PYTHON,
        "-m",
        "nbgrader",
        "autograde",
        s.assignment,
        "--student",
        student,
        "--force",
        f"--CourseDirectory.root={s.course}",
        f"--CourseDirectory.submitted_directory={staging_root}",
        f"--CourseDirectory.db_url={db_url}",
        "--KernelManager.transport=ipc",
        f"--KernelManager.ip={Path(env['JUPYTER_RUNTIME_DIR']) / 'k'}",
    ]
    if s.cell_timeout:
        cmd.append(f"--Execute.timeout={s.cell_timeout}")
    try:
        return subprocess.run(
            die_with_parent(cmd), cwd=s.course, env=env, text=True, capture_output=True,
            timeout=s.submission_timeout,
        )
    except subprocess.TimeoutExpired as err:
        return subprocess.CompletedProcess(
            cmd, 124, err.stdout or "", f"TIMEOUT after {s.submission_timeout} s"
        )


def grade_one(s: Settings, student: str) -> tuple[list[NotebookResult], str]:
    """Grade one student's submission; returns per-notebook results and the gradebook URL holding them."""
    start = time.perf_counter()
    work = s.course / ".grading"
    staging_root = work / "submitted"
    prepared = prepare_submission(
        s.submitted_dir / student / s.assignment, staging_root / student / s.assignment, _masters(s)
    )
    results = {p.notebook: NotebookResult(student, p.notebook, reasons=list(p.notes)) for p in prepared}
    for p in prepared:
        if p.fatal:
            results[p.notebook].reasons.insert(0, p.fatal)
            results[p.notebook].failed = True
    db_url = s.db_url
    if s.is_sqlite:
        private = work / "db" / f"{student}.db"
        private.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_sqlite_path(s.db_url, s.course), private)
        db_url = f"sqlite:///{private}"
    gradable = [p for p in prepared if p.path is not None]
    if gradable:
        _grade_prepared(s, student, gradable, staging_root, db_url, results)
    _ensure_submission(db_url, s.assignment, student, course_id(s.course))
    for r in results.values():
        r.seconds = time.perf_counter() - start
    return list(results.values()), db_url


def _ensure_submission(db_url: str, assignment: str, student: str, course: str) -> None:
    """Record the submission even when nothing in it could be graded: the gradebook shows 0, not nothing."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url, course) as gb:
        try:
            gb.find_submission(assignment, student)
        except MissingEntry:
            gb.update_or_create_student(student)
            gb.update_or_create_submission(assignment, student)


def _grade_prepared(
    s: Settings,
    student: str,
    gradable: list[Prepared],
    staging_root: Path,
    db_url: str,
    results: dict[str, NotebookResult],
) -> None:
    workdir = s.course / "autograded" / student / s.assignment
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="g") as runtime:
        jupyter_path = Path(runtime) / "jupyter"
        sandbox.write_kernelspec(
            jupyter_path,
            sandbox.kernel_argv(s.sandbox_level, workdir, Path(runtime), s.limits, s.course),
            threads=s.threads,
        )
        env = tool_env(
            JUPYTER_PATH=str(jupyter_path),
            JUPYTER_RUNTIME_DIR=runtime,
            COURSE_FAST="1",
            # jupyter_client writes the connection file with tempfile: keep it where the sandbox sees it.
            TMPDIR=runtime,
            COURSE_OFFLINE="1",
        )
        for attempt in range(3):
            done = _run_autograde(s, student, staging_root, db_url, env)
            died = done.returncode != 0 and KERNEL_DIED.search(done.stderr or "")
            missing = [p for p in gradable if not (workdir / f"{p.notebook}.ipynb").exists()]
            if done.returncode == 0 and not missing:
                break
            if done.returncode == 124:
                for p in gradable:
                    results[p.notebook].fail(f"whole submission over {s.submission_timeout} s: stopped")
                return
            if not died or attempt == 2:
                tail = (done.stderr or "").strip().splitlines()[-1:] or ["no output"]
                for p in gradable:
                    results[p.notebook].fail(f"nbgrader failed: {tail[0][:200]}")
                return
            workdir.mkdir(parents=True, exist_ok=True)  # nbgrader removes it after a failed run
            for p in gradable:
                if _disable_cell_that_kills_the_kernel(p.path, s, env, workdir) is None:
                    results[p.notebook].reasons.append("the kernel died, but not reproducibly")
    for p in gradable:
        graded = workdir / f"{p.notebook}.ipynb"
        if graded.exists():
            problems = _cell_errors(graded)
            results[p.notebook].reasons += problems
            results[p.notebook].troubled = bool(problems)


def _sqlite_path(db_url: str, course: Path) -> Path:
    path = Path(db_url.split("sqlite:///", 1)[1])
    return path if path.is_absolute() else course / path


def merge(private_url: str, main_url: str, assignment: str, student: str, course: str) -> None:
    """Copy one student's automatic grades and comments from a private gradebook into the main one."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(private_url, course) as src, Gradebook(main_url, course) as dst:
        try:
            sub = src.find_submission(assignment, student)
        except MissingEntry:
            return
        dst.update_or_create_student(student)
        dst.update_or_create_submission(assignment, student, timestamp=sub.timestamp)
        for nb in sub.notebooks:
            target = dst.find_submission_notebook(nb.name, assignment, student)
            target.flagged = nb.flagged
            for grade in nb.grades:
                g = dst.find_grade(grade.name, nb.name, assignment, student)
                g.auto_score, g.needs_manual_grade = grade.auto_score, grade.needs_manual_grade
            for comment in nb.comments:
                c = dst.find_comment(comment.name, nb.name, assignment, student)
                c.auto_comment = comment.auto_comment
        dst.db.commit()


def scores(db_url: str, assignment: str, results: list[NotebookResult], course: str) -> None:
    """Fill score, max score and status of each result from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url, course) as gb:
        for r in results:
            try:
                nb = gb.find_submission_notebook(r.notebook, assignment, r.student)
            except MissingEntry:
                continue
            r.max_score = nb.max_score
            written = [g for g in nb.grades if g.needs_manual_grade and g.manual_score is None]
            r.manual_pending = sum(g.max_score for g in written)
            auto_lost = any(g.auto_score is not None and g.auto_score < g.max_score for g in nb.grades)
            sub = nb.assignment
            r.submitted_at = sub.timestamp.strftime("%Y-%m-%d %H:%M:%S UTC") if sub.timestamp else None
            r.late_seconds = sub.total_seconds_late if sub.timestamp and sub.duedate else None
            if not r.failed:
                r.score = nb.score
                # A limit hit in a cell that cost nothing (an ungraded experiment) does not make the grade partial.
                r.status = "partly graded" if r.troubled and auto_lost else "graded"
                if r.troubled and not auto_lost:
                    r.reasons.append("no automatic points lost")


def result_line(r: NotebookResult) -> str:
    """One result as the grading log prints it; each reason once."""
    score = "" if r.score is None else f"{r.score:g}/{r.max_score:g}"
    return f"  {r.student:<20} {r.notebook:<18} {r.status:<14} {score}  {'; '.join(dict.fromkeys(r.reasons))}"


def submitted_students(s: Settings) -> list[str]:
    """Every student with a folder for the assignment in submitted/."""
    if not s.submitted_dir.is_dir():
        return []
    return sorted(p.name for p in s.submitted_dir.iterdir() if (p / s.assignment).is_dir())


def take_in(s: Settings, student: str, outcome, log=print) -> list[NotebookResult]:
    """The results of one finished grading (``outcome()`` returns what `grade_one` returned), scored from the
    gradebook, merged into it first when the run wrote a private SQLite copy, and logged."""
    try:
        student_results, db_url = outcome()
    except Exception as err:  # noqa: BLE001 -- one student's failure never stops the batch
        student_results = [
            NotebookResult(student, name, reasons=[f"grader error: {err!r}"[:300]]) for name in _masters(s)
        ]
        db_url = None
    if db_url and s.is_sqlite:
        merge(db_url, s.db_url, s.assignment, student, course_id(s.course))
    scores(s.db_url, s.assignment, student_results, course_id(s.course))
    for r in student_results:
        log(result_line(r))
    return student_results


def grade_all(s: Settings, students: list[str] | None = None, log=print) -> list[NotebookResult]:
    """Grade ``students`` (default: every folder in submitted/) ``s.jobs`` at a time."""
    students = students or submitted_students(s)
    log(
        f"grading {len(students)} submission(s) of {s.assignment} with {s.jobs} job(s); kernel "
        f"{sandbox.describe(s.sandbox_level)}"
    )
    results: list[NotebookResult] = []
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=s.jobs) as pool:
        futures = {pool.submit(grade_one, s, student): student for student in students}
        for future in as_completed(futures):
            results += take_in(s, futures[future], future.result, log)
    log(f"graded {len(students)} submission(s) in {time.perf_counter() - start:.1f} s")
    return sorted(results, key=lambda r: (r.student, r.notebook))


def not_submitted(s: Settings, graded: list[str]) -> list[NotebookResult]:
    """Students of the gradebook's roster (`nbgrader db student import`) with no submission: a row each, 0 points."""
    from nbgrader.api import Gradebook

    with Gradebook(s.db_url, course_id(s.course)) as gb:
        roster = sorted(st.id for st in gb.students)
    results = []
    notebooks = _masters(s)
    for student in sorted(set(roster) - set(graded)):
        for name in notebooks:
            r = NotebookResult(student, name, status="not submitted", score=0.0, reasons=["no submission"])
            r.failed = True
            results.append(r)
    return results
