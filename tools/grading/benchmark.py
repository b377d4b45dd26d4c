"""Grading throughput of one chapter: submissions per minute with JOBS=1 and JOBS=2.

    python -m tools.grading.benchmark [--chapter 01_autoencoders] [--students 6] [--jobs 1 2]

Builds a throw-away course with the chapter's assignment and N copies of a
complete submission (the release with the solution cells filled in), grades
them with tools.grading at each JOBS value and prints the figures for the README.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat

from tools.subprocess_env import PYTHON, tool_env

from .runner import Settings, grade_all
from .sandbox import ROOT


def fill_solutions(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What a good student hands in: ``release`` with each solution cell holding the instructor's code."""
    nb = copy.deepcopy(release)
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def completed_submission(chapter: str) -> nbformat.NotebookNode:
    release = nbformat.read(ROOT / "modules" / chapter / f"{chapter}.ipynb", as_version=4)
    source = nbformat.read(ROOT / "solutions" / chapter / f"{chapter}.ipynb", as_version=4)
    return fill_solutions(release, source)


def run(chapter: str, students: int, jobs: int, kernel_threads: int | None = None) -> float:
    course = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        shutil.copy(ROOT / "nbgrader_config.py", course)
        shutil.copytree(ROOT / "solutions" / chapter, course / "solutions" / chapter)
        subprocess.run(
            [PYTHON, "-m", "nbgrader", "generate_assignment", chapter, "--force"],
            cwd=course,
            env=tool_env(),
            check=True,
            capture_output=True,
        )
        nb = completed_submission(chapter)
        for i in range(students):
            folder = course / "submitted" / f"student{i:02d}" / chapter
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{chapter}.ipynb")
        start = time.perf_counter()
        results = grade_all(
            Settings(
                course=course,
                assignment=chapter,
                db_url=f"sqlite:///{course / 'gradebook.db'}",
                jobs=jobs,
                kernel_threads=kernel_threads,
            ),
            log=lambda _: None,
        )
        seconds = time.perf_counter() - start
        graded = sum(r.status == "graded" for r in results)
        threads = f" ({kernel_threads} thread(s) per kernel)" if kernel_threads else ""
        print(
            f"JOBS={jobs}{threads}: {students} submissions in {seconds:.1f} s = "
            f"{60 * students / seconds:.2f} per minute ({graded}/{students} graded)",
            flush=True,
        )
        return seconds
    finally:
        shutil.rmtree(course, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chapter", default="01_autoencoders")
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--kernel-threads", type=int, help="threads per kernel (diagnostic; default: cores / jobs)"
    )
    args = parser.parse_args()
    times = {jobs: run(args.chapter, args.students, jobs, args.kernel_threads) for jobs in args.jobs}
    if 1 in times and 2 in times:
        print(f"speed-up JOBS=2 / JOBS=1: {times[1] / times[2]:.2f}x")


if __name__ == "__main__":
    main()
