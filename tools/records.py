"""Measured results, each written once: the files under results/ and the shipped checkpoints' own records.

The tools that measure write here (tools.measure.run_notebook --record, the
checkpoint trainers in tools.artifacts, tools.measure.grading_throughput
--record); the build reads from here (docs/results.md, and `{{result ...}}`
tokens in chapter text). Nothing else types a measured number.

- results/NN_slug.json: {"fast": RUN, "full": RUN}, a RUN being what one
  execution of the chapter's solution notebook recorded with utils.record,
  its run time and where it ran;
- results/<name>.json for measurements that are not a chapter run
  (classifiers, grading);
- a checkpoint's record: the "info" dict stored inside data/checkpoints/<file>.
"""

from __future__ import annotations

import functools
import json
import platform
from datetime import date
from pathlib import Path

from tools.course import ROOT

RESULTS = "results"
CHECKPOINT_PREFIX = "checkpoint:"


def results_path(name: str, root: Path = ROOT) -> Path:
    return root / RESULTS / f"{name}.json"


def read(name: str, root: Path = ROOT) -> dict:
    """results/<name>.json, or {} when nothing was recorded yet."""
    path = results_path(name, root)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write(name: str, data: dict, root: Path = ROOT) -> Path:
    path = results_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def update(name: str, key: str, value, root: Path = ROOT) -> Path:
    """Replace one top-level entry of results/<name>.json, keeping the others."""
    data = read(name, root)
    data[key] = value
    return write(name, data, root)


def machine(device=None) -> str:
    """Where a measurement ran (``device``, default: CUDA when there), in the words the records keep."""
    import torch

    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads ({platform.processor() or platform.machine()})"


def provenance(command: str) -> dict:
    """The fields every recorded run carries besides its values."""
    import torch

    return {"date": date.today().isoformat(), "machine": machine(), "torch": str(torch.__version__),
            "command": command}


@functools.cache
def checkpoint_record(file: str, root: Path = ROOT) -> dict:
    """The "info" record stored inside data/checkpoints/<file> by the tool that trained it."""
    import torch

    return torch.load(root / "data" / "checkpoints" / file, map_location="cpu", weights_only=True)["info"]


def lookup(source: str, path: str, root: Path = ROOT):
    """A recorded value: ``source`` is a results name (``04_dcgan``) or ``checkpoint:<file>``;
    ``path`` is dotted (``full.values.dcgan_fid``); a number indexes a list (``history.val.2``)."""
    if source.startswith(CHECKPOINT_PREFIX):
        value = checkpoint_record(source.removeprefix(CHECKPOINT_PREFIX), root)
    else:
        value = read(source, root)
        if not value:
            raise KeyError(f"nothing is recorded in {results_path(source, root).relative_to(root)}")
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(f"{source}: no recorded value at {path!r} (missing {part!r})")
    return value
