"""Execute a chapter's solution notebook end to end and keep the executed copy.

    python -m tools.run_notebook 04_dcgan [--fast] [--out DIR]

Full mode is the default: this is how the full-mode figures in the README are
measured (on a GPU when there is one). The executed notebook, with every
output, goes to DIR/<chapter>.executed.ipynb; the wall time and the slowest
cells are printed, so a run's figures can be read back without Jupyter.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tools.subprocess_env import tool_env

ROOT = Path(__file__).resolve().parents[1]


def run(chapter: str, fast: bool, out: Path, cell_timeout: int | None = None) -> Path:
    """Execute solutions/<chapter>/<chapter>.ipynb; returns the executed copy's path."""
    return execute(ROOT / "solutions" / chapter / f"{chapter}.ipynb", fast, out, cell_timeout)


def execute(source: Path, fast: bool, out: Path, cell_timeout: int | None = None) -> Path:
    """Execute the notebook ``source`` in its folder; the copy goes to out/<stem>.executed.ipynb.

    The copy is written even when a cell fails or runs past ``cell_timeout``
    seconds, so that the outputs up to that cell can be read."""
    nb = nbformat.read(source, as_version=4)
    env = tool_env()
    env.pop("NBGRADER_EXECUTION", None)
    if fast:
        env["COURSE_FAST"] = "1"
    else:
        env.pop("COURSE_FAST", None)
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(source.parent)}})
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{source.stem}.executed.ipynb"
    try:
        client.execute(env=env)
    finally:
        seconds = time.perf_counter() - start
        nbformat.write(nb, target)
        print(f"{source.stem} ({'fast' if fast else 'full'} mode): {seconds:.1f} s -> {target}")
    for took, index in sorted(((cell_seconds(c), i) for i, c in enumerate(nb.cells)), reverse=True)[:5]:
        print(f"  cell {index}: {took:.1f} s")
    return target


def cell_seconds(cell) -> float:
    """Seconds nbclient recorded for one code cell (0 for markdown)."""
    timing = cell.get("metadata", {}).get("execution", {})
    if "iopub.execute_input" not in timing or "shell.execute_reply" not in timing:
        return 0.0
    start, end = (datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
                  for key in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="+")
    parser.add_argument("--fast", action="store_true", help="COURSE_FAST=1 instead of full mode")
    parser.add_argument("--out", type=Path, default=ROOT / "executed")
    parser.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default: none)")
    args = parser.parse_args()
    for chapter in args.chapters:
        run(chapter, args.fast, args.out, args.cell_timeout)


if __name__ == "__main__":
    main()
