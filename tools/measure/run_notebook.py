"""Execute a chapter's solution notebook end to end, keep the executed copy, optionally record its results.

    python -m tools.measure.run_notebook 04_dcgan [--fast] [--out DIR] [--record]

Full mode is the default: this is how the chapters' full-mode results are
measured (on a GPU when there is one). The executed notebook, with every
output, goes to DIR/<chapter>.executed.ipynb; the wall time and the slowest
cells are printed. With --record, a run that completes is stored in
results/<chapter>.json under "fast" or "full": the values the notebook passed
to utils.summary / utils.record, the run time, the calibration workload's
time (tools.measure.calibration, the mean of a timing before and one after the run), and where it ran;
then `make release` quotes them in docs/results.md and the chapter texts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tools import records
from tools.build.notebooks import source_to_notebook
from tools.course import ROOT, chapter, tool_env

from .calibration import calibrated

MARK = "__course_recorded__"
# Appended to the executed notebook and removed from the copy that is kept: prints what utils recorded.
COLLECT = f"import json as _json, utils as _utils\nprint({MARK!r} + _json.dumps(_utils.recorded()))"


def execute(source: Path, fast: bool, out: Path, cell_timeout: int | None = None,
            nb: nbformat.NotebookNode | None = None) -> tuple[Path, float, dict]:
    """Execute the notebook ``source`` (or ``nb``, run as if it were there) in its folder; returns the
    executed copy (out/<stem>.executed.ipynb), the seconds it took and what it recorded.

    The copy is written even when a cell fails or runs past ``cell_timeout``
    seconds, so that the outputs up to that cell can be read."""
    nb = nbformat.read(source, as_version=4) if nb is None else nb
    nb.cells.append(nbformat.v4.new_code_cell(COLLECT))
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
    recorded: dict = {}
    try:
        client.execute(env=env)
    finally:
        seconds = time.perf_counter() - start
        collector = nb.cells.pop()
        for output in collector.get("outputs", []):
            text = output.get("text", "")
            if output.get("output_type") == "stream" and text.startswith(MARK):
                recorded = json.loads(text[len(MARK):])
        nbformat.write(nb, target)
        print(f"{source.stem} ({'fast' if fast else 'full'} mode): {seconds:.1f} s -> {target}")
    for took, index in sorted(((cell_seconds(c), i) for i, c in enumerate(nb.cells)), reverse=True)[:5]:
        print(f"  cell {index}: {took:.1f} s")
    return target, seconds, recorded


def cell_seconds(cell) -> float:
    """Seconds nbclient recorded for one code cell (0 for markdown)."""
    timing = cell.get("metadata", {}).get("execution", {})
    if "iopub.execute_input" not in timing or "shell.execute_reply" not in timing:
        return 0.0
    start, end = (datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
                  for key in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def run(slug: str, fast: bool, out: Path, cell_timeout: int | None = None, record: bool = False) -> Path:
    """Execute chapter ``slug``'s solution notebook, built afresh from its source (so that an edit not yet
    released is what runs); with ``record``, store the run in results/<slug>.json."""
    ch = chapter(slug)
    notebook = source_to_notebook(ch, ROOT)

    def execute_it():
        return execute(ch.instructor_notebook(), fast, out, cell_timeout, nb=notebook)

    if not record:
        return execute_it()[0]
    (target, seconds, values), calibration = calibrated(execute_it)
    mode = "fast" if fast else "full"
    command = f"python -m tools.measure.run_notebook {slug}{' --fast' if fast else ''} --record"
    records.update(slug, mode, {**records.provenance(command), "seconds": round(seconds, 1),
                                "calibration_s": round(calibration, 3), "values": values})
    print(f"recorded {len(values)} values in {records.results_path(slug).relative_to(ROOT)} ({mode}); "
          "run `make release` to update docs/results.md and the chapter texts")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="+")
    parser.add_argument("--fast", action="store_true", help="COURSE_FAST=1 instead of full mode")
    parser.add_argument("--out", type=Path, default=ROOT / "executed")
    parser.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default: none)")
    parser.add_argument("--record", action="store_true", help="store the run in results/<chapter>.json")
    args = parser.parse_args()
    for slug in args.chapters:
        run(slug, args.fast, args.out, args.cell_timeout, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
