"""Find the cell during which the kernel dies: run a notebook cell by cell in the grading sandbox.

    python -m tools.grader.probe NOTEBOOK WORKDIR TIMEOUT

Run by the runner in a child process whose environment selects the sandboxed
kernelspec (JUPYTER_PATH) and keeps the connection file visible to it (TMPDIR).
Prints one JSON line: {"died_at": <cell index or null>}.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError


def died_at(notebook: Path, workdir: Path, timeout: int) -> int | None:
    nb = nbformat.read(notebook, as_version=4)
    started: list[int] = []
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        kernel_name="python3",
        interrupt_on_timeout=True,
        resources={"metadata": {"path": str(workdir)}},
        on_cell_start=lambda cell, cell_index: started.append(cell_index),
    )
    client.km = AsyncKernelManager(
        kernel_name="python3", transport="ipc", ip=str(Path(os.environ["JUPYTER_RUNTIME_DIR"]) / "p")
    )
    try:
        client.execute()
    except DeadKernelError:
        return started[-1] if started else None
    except RuntimeError:  # the kernel died before it ever answered: nothing to blame on a cell
        return None
    return None


if __name__ == "__main__":
    print(json.dumps({"died_at": died_at(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))}))
