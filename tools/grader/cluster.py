"""Grading on a Dask cluster: each submission is one task, graded on a worker exactly as `grade_all` grades it.

    make autograde ASSIGNMENT=01_autoencoders SCHEDULER=tcp://grader-head:8786 DB_URL=postgresql://...

The workers must see the course folder at the same path (a shared file system:
submitted/, autograded/ and the released notebooks) and run this repository's
environment; each grades in the same sandbox as a local run. With a server
gradebook (PostgreSQL) nbgrader writes each grade from the worker; with SQLite
each worker writes a private copy that this process merges, as in `grade_all`.

A worker that dies mid-grading takes its grading processes with it (the
nbgrader process of a task gets SIGKILL when its worker goes, so no stale
grader can write after the regrade), and the scheduler runs the task again on
another worker: the submission is regraded, and nbgrader's update of the same
rows leaves one grade per cell. Each task start and end is appended to
.grading/cluster.log (time, worker, student).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tools.course import ROOT

from . import sandbox
from .runner import NotebookResult, Settings, grade_one, submitted_students, take_in, usable_cores


def _log(settings: Settings, event: str, student: str, worker: str) -> None:
    log = settings.course / ".grading" / "cluster.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as f:
        f.write(f"{time.time():.3f}\t{worker}\t{event}\t{student}\n")


def grade_task(settings: Settings, student: str, threads: dict[str, int]):
    """What a worker runs for one student: the local grader, with this machine's sandbox and thread share."""
    from distributed import get_worker

    worker = get_worker().address
    host = worker.rsplit(":", 1)[0]
    settings = dataclasses.replace(settings, sandbox_level=sandbox.level(), jobs=1,
                                   kernel_threads=settings.kernel_threads or threads.get(host))
    _log(settings, "start", student, worker)
    outcome = grade_one(settings, student)
    _log(settings, "done", student, worker)
    return outcome


def threads_by_host(nthreads: dict[str, int], cores: dict[str, int]) -> dict[str, int]:
    """BLAS threads per kernel on each host: its usable cores shared by the gradings it runs at once.

    ``nthreads`` and ``cores`` map worker addresses (tcp://host:port) to their threads and their host's cores.
    """
    hosts: dict[str, list[str]] = {}
    for address in nthreads:
        hosts.setdefault(address.rsplit(":", 1)[0], []).append(address)
    return {host: max(1, cores[addresses[0]] // sum(nthreads[a] for a in addresses))
            for host, addresses in hosts.items()}


def grade_on_cluster(s: Settings, scheduler: str, students: list[str] | None = None,
                     log=print) -> list[NotebookResult]:
    """Grade ``students`` (default: every folder in submitted/) on the workers of the Dask ``scheduler``."""
    from distributed import Client, as_completed

    students = students or submitted_students(s)
    results: list[NotebookResult] = []
    start = time.perf_counter()
    with Client(scheduler, timeout=60) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        log(f"grading {len(students)} submission(s) of {s.assignment} on {len(workers)} Dask worker(s) "
            f"at {scheduler}")
        threads = threads_by_host({a: w["nthreads"] for a, w in workers.items()}, client.run(usable_cores))
        futures = {
            client.submit(grade_task, s, student, threads, key=f"grade-{s.assignment}-{student}", pure=False):
            student
            for student in students
        }
        for future in as_completed(futures):
            results += take_in(s, futures[future], future.result, log)
    log(f"graded {len(students)} submission(s) in {time.perf_counter() - start:.1f} s")
    return sorted(results, key=lambda r: (r.student, r.notebook))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_cluster(n_workers: int, threads_per_worker: int = 1, folder: Path | None = None):
    """A real Dask cluster on loopback: one `dask scheduler` and ``n_workers`` `dask worker` processes.

    Yields (scheduler address, {worker address: its process}). Workers run without a
    nanny, so a killed worker stays dead, as a lost machine would.
    """
    from distributed import Client

    dask = str(Path(sys.executable).parent / "dask")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = folder or Path.cwd()
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0", "--no-show"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=(logs / "scheduler.log").open("w"))]
    try:
        for i in range(n_workers):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", str(threads_per_worker), "--no-nanny",
                 "--dashboard-address", ":0", "--name", f"worker{i}", "--local-directory", str(logs / f"w{i}")],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(logs / f"worker{i}.log").open("w")))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=120)
            pids = client.run(os.getpid)
        by_pid = {p.pid: p for p in procs[1:]}
        yield address, {worker: by_pid[pid] for worker, pid in pids.items()}
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if folder is None:
            for i in range(n_workers):
                shutil.rmtree(logs / f"w{i}", ignore_errors=True)
