"""The interpreter and environment for the nbgrader/Jupyter subprocesses the tools start.

`sys.executable` is relative when PATH holds a relative entry (`PATH=.venv/bin:$PATH`),
and these subprocesses often run from another folder, so both are made absolute here.
"""

from __future__ import annotations

import os
import sys

PYTHON = os.path.abspath(sys.executable)


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for nbgrader subprocesses: this interpreter's bin first on PATH
    (nbgrader shells out to `alembic`), the environment's kernelspecs preferred."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(PYTHON) + os.pathsep + env.get("PATH", "")
    env["JUPYTER_PREFER_ENV_PATH"] = "1"
    env.update(extra)
    return env
