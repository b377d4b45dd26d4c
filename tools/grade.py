"""Grade an assignment's submissions, each in isolation, and write a status report.

    python -m tools.grade ASSIGNMENT [--student NAME ...] [--jobs N] [--db-url URL]

Behind `make autograde`. Reads submitted/<student>/<ASSIGNMENT>/, grades each
student with its own nbgrader process and a sandboxed kernel, records every
result in the gradebook and writes grading_report.csv (one row per student and
notebook: graded / partly graded / not graded, score, reasons). Re-running
regrades; --student regrades only the students named.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tools.grading import sandbox
from tools.grading.report import write_report
from tools.grading.runner import Settings, config_value, grade_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("assignment")
    parser.add_argument("--student", action="append", default=None)
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", "1")))
    parser.add_argument(
        "--db-url",
        default=os.environ.get("DB_URL") or None,
        help="default: DB_URL, else CourseDirectory.db_url of nbgrader_config.py",
    )
    parser.add_argument("--course", type=Path, default=Path.cwd())
    parser.add_argument("--submitted", type=Path, default=None, help="default: COURSE/submitted")
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--memory-mb", type=int, default=6144)
    args = parser.parse_args(argv)
    course = args.course.resolve()
    db_url = args.db_url or config_value(course, "db_url", "sqlite:///gradebook.db")
    if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        db_url = f"sqlite:///{course / db_url.removeprefix('sqlite:///')}"  # relative to the course folder
    settings = Settings(
        course=course,
        assignment=args.assignment,
        db_url=db_url,
        jobs=max(1, args.jobs),
        limits=sandbox.Limits(memory_mb=args.memory_mb),
        submitted=args.submitted.resolve() if args.submitted else None,
    )
    results = grade_all(settings, args.student)
    report = args.report or course / "grading_report.csv"
    write_report(results, report, sandbox.describe(settings.sandbox_level))
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
