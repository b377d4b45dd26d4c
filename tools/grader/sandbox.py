"""Run the grading kernel in a sandbox built from what the OS already has.

The kernel is started through a kernelspec whose argv wraps the usual
`python -m ipykernel_launcher` with
- bubblewrap (`bwrap`, Debian package `bubblewrap`) when it works here: a new
  network namespace (no network), a new PID namespace that dies with the
  grader, the filesystem read-only, the course folder replaced by an empty
  one except the package, the data and the environment (so no `solutions/`,
  no gradebook, no other submission), and writes only in the notebook's own
  working folder and a private /tmp;
- else `unshare --net` when that works (no network, nothing else);
- and in every case `prlimit`: address space, CPU seconds, file size, and the
  number of processes when the grader is not root (root ignores that limit).
The grader talks to the kernel over ZeroMQ IPC sockets (files) instead of TCP,
because a kernel in its own network namespace cannot reach the grader's
loopback. `describe()` says which level was used; it goes into the report.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.course import PYTHON, ROOT


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 6144  # RLIMIT_DATA: heap and private writable mappings, not reserved address space
    cpu_seconds: int = 900
    file_mb: int = 256
    processes: int = 256


@functools.cache
def _works(*argv: str) -> bool:
    try:
        return subprocess.run([*argv, "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def level() -> str:
    """'bwrap', 'unshare' or 'none': the strongest isolation that works on this machine."""
    if os.environ.get("COURSE_GRADING_SANDBOX") == "none":
        return "none"
    if shutil.which("bwrap") and _works(
        "bwrap",
        "--ro-bind",
        "/",
        "/",
        "--unshare-net",
        "--unshare-pid",
        "--die-with-parent",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ):
        return "bwrap"
    if shutil.which("unshare") and (
        _works("unshare", "--net") or _works("unshare", "--user", "--map-root-user", "--net")
    ):
        return "unshare"
    return "none"


def describe(lvl: str) -> str:
    return {
        "bwrap": "sandboxed (bubblewrap: no network, read-only system, course files hidden, limits)",
        "unshare": "partly sandboxed (no network and resource limits; files NOT hidden: install bubblewrap)",
        "none": "UNSANDBOXED (neither bubblewrap nor unshare works here); resource limits only",
    }[lvl]


def _prlimit(limits: Limits) -> list[str]:
    if not shutil.which("prlimit"):
        return []
    args = [
        "prlimit",
        f"--data={limits.memory_mb * 2**20}",
        f"--cpu={limits.cpu_seconds}",
        f"--fsize={limits.file_mb * 2**20}",
    ]
    if os.geteuid() != 0:
        args.append(f"--nproc={limits.processes}")
    return [*args, "--"]


def kernel_argv(lvl: str, workdir: Path, runtime: Path, limits: Limits, course: Path = ROOT) -> list[str]:
    """argv of the sandboxed kernel; `{connection_file}` is filled in by jupyter_client.

    ``course`` is the grading course folder (gradebook, submissions); it and the
    repository are hidden but for the package, the data and the environment.
    """
    python = [PYTHON, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    if lvl == "bwrap":
        visible = [
            p for p in (ROOT / "utils", ROOT / "data", ROOT / ".venv", ROOT / "pyproject.toml") if p.exists()
        ]
        argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        hidden = sorted({ROOT.resolve(), course.resolve()}, key=lambda p: len(p.parts))
        for path in hidden:
            argv += ["--tmpfs", str(path)]
        for path in visible:
            argv += ["--ro-bind", str(path), str(path)]
        venv = Path(sys.prefix)
        if not str(venv).startswith(str(ROOT)):
            argv += ["--ro-bind", str(venv), str(venv)]
        argv += [
            "--bind",
            str(workdir),
            str(workdir),
            "--bind",
            str(runtime),
            str(runtime),
            # The emptied course folders stay read-only: no file can be written beside the notebook.
            *[arg for path in reversed(hidden) for arg in ("--remount-ro", str(path))],
            "--chdir",
            str(workdir),
            "--unshare-net",
            "--unshare-pid",
            "--unshare-ipc",
            "--die-with-parent",
            "--new-session",
            # ipykernel polls the PID in JPY_PARENT_PID, which does not exist in the new PID namespace.
            "--unsetenv",
            "JPY_PARENT_PID",
            "--setenv",
            "TMPDIR",
            "/tmp",
            "--setenv",
            "HOME",
            "/tmp",
            "--setenv",
            "MPLCONFIGDIR",
            "/tmp/mpl",
        ]
        return [*argv, "--", *_prlimit(limits), *python]
    if lvl == "unshare":
        user = [] if _works("unshare", "--net") else ["--user", "--map-root-user"]
        return ["unshare", *user, "--net", "--", *_prlimit(limits), *python]
    return [*_prlimit(limits), *python]


def write_kernelspec(jupyter_path: Path, argv: list[str], threads: int | None = None) -> None:
    """A `python3` kernelspec under ``jupyter_path`` (put first on JUPYTER_PATH) that runs ``argv``."""
    spec = jupyter_path / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": argv,
                "display_name": "Python 3 (grading sandbox)",
                # Interrupt through the control channel: a signal to the launcher would stop at bwrap.
                "interrupt_mode": "message",
                "language": "python",
                "env": {
                    "NBGRADER_EXECUTION": "autograde",
                    "COURSE_OFFLINE": "1",
                    # N graders at once share the cores: one BLAS/OpenMP pool per core, not per grader.
                    **({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}),
                },
            },
            indent=1,
        )
    )
