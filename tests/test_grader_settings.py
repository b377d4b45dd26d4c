"""tools.grader settings that need no grading run: threads per kernel, the tools found on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tools.course import PYTHON, tool_env
from tools.grader.runner import Settings, usable_cores


def test_kernel_threads_share_the_cores_between_jobs(tmp_path):
    one = Settings(course=tmp_path, assignment="a", db_url="sqlite:///x.db", jobs=1)
    two = Settings(course=tmp_path, assignment="a", db_url="sqlite:///x.db", jobs=2)
    pinned = Settings(course=tmp_path, assignment="a", db_url="sqlite:///x.db", jobs=1, kernel_threads=1)
    assert one.threads is None  # one job: the libraries use every core
    assert two.threads == max(1, usable_cores() // 2)
    assert pinned.threads == 1


def test_kernel_threads_follow_the_affinity_mask(tmp_path, monkeypatch):
    """Under `taskset -c 0-3` (or a container CPU set) on a 16-core machine, JOBS=2 gets 2 threads each."""
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert usable_cores() == 4
    assert Settings(course=tmp_path, assignment="a", db_url="sqlite:///x.db", jobs=2).threads == 2


def test_tools_are_found_when_path_holds_a_relative_venv(tmp_path, monkeypatch):
    """`PATH=.venv/bin:$PATH make autograde` must still find alembic and python from another folder."""
    monkeypatch.setenv("PATH", ".venv/bin" + os.pathsep + os.environ["PATH"])
    env = tool_env()
    first = env["PATH"].split(os.pathsep)[0]
    assert os.path.isabs(first) and os.path.isabs(PYTHON)
    assert (Path(first) / "alembic").exists()
    done = subprocess.run(
        [PYTHON, "-c", "import shutil; print(shutil.which('alembic'))"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert done.stdout.strip() == str(Path(first) / "alembic")
