"""Grading throughput of one chapter: submissions per minute at several JOBS values or Dask cluster sizes.

    python -m tools.measure.grading_throughput [--chapter 01_autoencoders] [--students 6] [--jobs 1 2] [--record]
    python -m tools.measure.grading_throughput --workers 1 2 4 [--students 8] [--record]

Builds a throw-away course with the chapter's assignment and N copies of a
complete submission (the release with the solution cells filled in), grades
them with tools.grader at each JOBS value (or, with --workers, on a local Dask
cluster of that many one-thread worker processes, tools.grader.cluster) and
prints the figures; --record adds them to results/grading.json (docs/results.md
shows them).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from tools import records
from tools.course import ROOT, run_nbgrader
from tools.grader.cluster import grade_on_cluster, local_cluster
from tools.grader.runner import Settings, grade_all, usable_cores
from tools.grader.submissions import completed_submission


def run(chapter: str, students: int, jobs: int, kernel_threads: int | None = None, workers: int | None = None) -> dict:
    """Grade ``students`` complete submissions of ``chapter``, ``jobs`` at once or on ``workers`` Dask workers."""
    course = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        shutil.copy(ROOT / "nbgrader_config.py", course)
        shutil.copytree(ROOT / "solutions" / chapter, course / "solutions" / chapter)
        run_nbgrader(course, "generate_assignment", chapter, "--force")
        nb = completed_submission(chapter)
        for i in range(students):
            folder = course / "submitted" / f"student{i:02d}" / chapter
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{chapter}.ipynb")
        settings = Settings(course=course, assignment=chapter, db_url=f"sqlite:///{course / 'gradebook.db'}",
                            jobs=jobs, kernel_threads=kernel_threads)
        if workers:
            with local_cluster(workers, folder=course) as (address, _):
                start = time.perf_counter()  # the cluster is up: its start is not grading time
                results = grade_on_cluster(settings, address, log=lambda _: None)
                seconds = time.perf_counter() - start
        else:
            start = time.perf_counter()
            results = grade_all(settings, log=lambda _: None)
            seconds = time.perf_counter() - start
        graded = sum(r.status == "graded" for r in results)
        what = f"{workers} Dask worker(s)" if workers else f"JOBS={jobs}"
        print(f"{what}{f' ({kernel_threads} thread(s) per kernel)' if kernel_threads else ''}: "
              f"{students} submissions in {seconds:.1f} s = {60 * students / seconds:.2f} per minute "
              f"({graded}/{students} graded)", flush=True)
        engine = {"engine": "dask", "workers": workers} if workers else {}
        return {"chapter": chapter, "students": students, "jobs": jobs, "kernel_threads": kernel_threads,
                **engine, "seconds": round(seconds, 1), "graded": graded, "sandbox": settings.sandbox_level,
                "cores": usable_cores(), **records.provenance("python -m tools.measure.grading_throughput")}
    finally:
        shutil.rmtree(course, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapter", default="01_autoencoders")
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kernel-threads", type=int, help="threads per kernel (default: cores / jobs)")
    parser.add_argument("--workers", type=int, nargs="+", help="grade on local Dask clusters of these sizes")
    parser.add_argument("--record", action="store_true", help="add the runs to results/grading.json")
    args = parser.parse_args()
    if args.workers:
        runs = [run(args.chapter, args.students, 1, args.kernel_threads, workers=n) for n in args.workers]
        base = runs[0]["seconds"]
        for r in runs[1:]:
            print(f"speed-up {r['workers']} / {runs[0]['workers']} worker(s): {base / r['seconds']:.2f}x")
    else:
        runs = [run(args.chapter, args.students, jobs, args.kernel_threads) for jobs in args.jobs]
        by_jobs = {r["jobs"]: r["seconds"] for r in runs}
        if 1 in by_jobs and 2 in by_jobs:
            print(f"speed-up JOBS=2 / JOBS=1: {by_jobs[1] / by_jobs[2]:.2f}x")
    if args.record:
        recorded = records.read("grading")
        records.update("grading", "runs", recorded.get("runs", []) + runs)
        print(f"recorded in {records.results_path('grading').relative_to(ROOT)}; run `make release`")


if __name__ == "__main__":
    main()
