"""Grade submissions, each in isolation, and write a status report: `make autograde`.

    python -m tools.grader [ASSIGNMENT ...] [--student NAME ...] [--jobs N] [--db-url URL] [--submitted DIR]

For each assignment (default: every chapter in chapters.toml that has
submissions), the assignment is generated into the gradebook
(`nbgrader generate_assignment`), then submitted/<student>/<ASSIGNMENT>/ is
graded student by student with its own nbgrader process and a sandboxed
kernel, every result goes into the gradebook, and grading_report.csv gets one
row per student and notebook: graded / partly graded / not graded, score,
reasons. Re-running regrades; --student regrades only the students named.
Students of the gradebook's roster without a submission get a "not submitted"
row. --scheduler grades on the workers of a Dask cluster (tools.grader.cluster).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tools.course import NbgraderError, chapters, run_nbgrader
from tools.grader import sandbox
from tools.grader.report import write_report
from tools.grader.runner import Settings, config_value, grade_all, not_submitted


def generate_assignment(course: Path, assignment: str, db_url: str) -> None:
    """Register the assignment and its grade cells in the gradebook (what autograde compares with)."""
    try:
        run_nbgrader(course, "generate_assignment", assignment, "--force", "--log-level=WARN",
                     f"--CourseDirectory.db_url={db_url}")
    except NbgraderError as err:
        raise SystemExit(str(err)[-2000:]) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignments", nargs="*", help="default: every registered chapter with submissions")
    parser.add_argument("--student", action="append", default=None)
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", "1")))
    parser.add_argument("--db-url", default=os.environ.get("DB_URL") or None,
                        help="default: DB_URL, else CourseDirectory.db_url of nbgrader_config.py")
    parser.add_argument("--course", type=Path, default=Path.cwd())
    parser.add_argument("--submitted", type=Path, default=None, help="default: COURSE/submitted")
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--memory-mb", type=int, default=6144)
    parser.add_argument("--scheduler", default=os.environ.get("SCHEDULER") or None,
                        help="a Dask scheduler address: grade on its workers (needs a server gradebook)")
    args = parser.parse_args(argv)
    course = args.course.resolve()
    submitted = args.submitted.resolve() if args.submitted else course / "submitted"
    if not submitted.is_dir():
        raise SystemExit(f"no submissions folder: {submitted}")
    assignments = args.assignments or [ch.slug for ch in chapters() if any(submitted.glob(f"*/{ch.slug}"))]
    db_url = args.db_url or config_value(course, "db_url", "sqlite:///gradebook.db")
    if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        db_url = f"sqlite:///{course / db_url.removeprefix('sqlite:///')}"  # relative to the course folder
    report = args.report or course / "grading_report.csv"
    for assignment in assignments:
        generate_assignment(course, assignment, db_url)
        settings = Settings(course=course, assignment=assignment, db_url=db_url, jobs=max(1, args.jobs),
                            limits=sandbox.Limits(memory_mb=args.memory_mb), submitted=submitted)
        if args.scheduler:
            from tools.grader.cluster import grade_on_cluster

            results = grade_on_cluster(settings, args.scheduler, args.student)
        else:
            results = grade_all(settings, args.student)
        if not args.student:
            results += not_submitted(settings, [r.student for r in results])
        write_report(results, report, sandbox.describe(settings.sandbox_level))
    print(f"wrote {report}" if assignments else f"no submission of a registered chapter in {submitted}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
