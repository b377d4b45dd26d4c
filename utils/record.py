"""A notebook run's key numbers, kept for the course's results page.

A chapter prints its summary with ``utils.summary`` (or calls ``utils.record``
beside a print). Nothing is written to disk and nothing extra is shown: the
maintainers' tool that runs a chapter end to end (tools.measure.run_notebook
--record) reads ``utils.recorded()`` when the run is over and stores it with
the run time and the machine, and the course's results page and chapter texts
quote the stored values. So every measured number has one source: the run
that measured it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

_RECORDED: dict[str, float | int | str] = {}


def _plain(value):
    """A JSON-ready copy of ``value``: numbers to Python numbers (6 significant digits), text as is."""
    if isinstance(value, torch.Tensor | np.ndarray):
        value = value.item()
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.6g}")
    raise TypeError(f"utils.record keeps numbers and text, not {type(value).__name__}")


def record(name: str, value) -> None:
    """Keep ``value`` under ``name`` (a snake_case English key) for this run's record."""
    if not name.isidentifier():
        raise ValueError(f"record names are identifiers, not {name!r}")
    _RECORDED[name] = _plain(value)


def record_pitfall(name: str, with_mistake, correct) -> None:
    """Keep a pitfall's measurement beside the correct run's: ``pitfall_<name>`` and ``pitfall_<name>_correct``.

    A chapter that names a pitfall measures it; the course's checks flag a pitfall whose value equals the correct
    one (a measurement that did not really exercise the mistake)."""
    record(f"pitfall_{name}", with_mistake)
    record(f"pitfall_{name}_correct", correct)


def recorded() -> dict:
    """Everything recorded in this process so far."""
    return dict(_RECORDED)


def grouped(value, spec: str = ",") -> str:
    """``format(value, spec)`` with thousands separated by a space, as the course's Russian text writes them
    (272 474, not 272,474); ``spec`` asks for the grouping with ``,`` (for example ``">12,"``)."""
    return format(value, spec).replace(",", " ")


def summary(rows) -> None:
    """Print a run's key numbers as a table and record each of them.

    ``rows``: ``(name, label, value)`` or ``(name, label, value, format_spec)``;
    ``label`` is what the student reads, ``name`` the key of the record.
    """
    rows = [tuple(r) + ("",) * (4 - len(r)) for r in rows]
    width = max(len(label) for _, label, _, _ in rows) + 2
    for name, label, value, spec in rows:
        record(name, value)
        print(f"{label:<{width}}{grouped(value, spec)}")
