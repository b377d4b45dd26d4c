"""Repair what a submitted notebook got wrong before nbgrader sees it, and say what was repaired.

nbgrader itself restores edited or deleted test cells and reset points; what
makes it abort or mis-grade is the notebook *file*: unreadable JSON, an old
format without cell ids, duplicated grade ids (a copied or split cell aborts a
whole `nbgrader autograde` batch), duplicated cell ids, another kernel, a
renamed file. `prepare_submission` turns one student's submitted folder into
a clean copy plus a list of plain-English notes for the status report.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@dataclass
class Prepared:
    """One expected notebook of one submission after preflight."""

    notebook: str  # expected name without .ipynb
    path: Path | None  # the clean copy, None when nothing gradable was submitted
    notes: list[str] = field(default_factory=list)  # what was wrong and what was done about it
    fatal: str | None = None  # why the notebook cannot be graded at all


def _grade_ids(nb) -> list[str]:
    return [
        c.metadata.get("nbgrader", {}).get("grade_id")
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id")
    ]


def read_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, str | None]:
    """The notebook at ``path`` as nbformat 4, or None and the reason it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, f"cannot read the file ({err.strerror})"
    if not raw.strip():
        return None, "the file is empty"
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "the file is not UTF-8 text"
    except json.JSONDecodeError as err:
        return None, f"the file is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        return None, "the file is JSON but not a Jupyter notebook"
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as err:  # noqa: BLE001 -- nbformat raises many kinds; all mean "not a notebook"
        return None, f"the file is not a readable notebook ({type(err).__name__})"
    return nb, None


def repair(nb: nbformat.NotebookNode, master: nbformat.NotebookNode) -> list[str]:
    """Fix in place what would abort or mislead nbgrader; return notes on what was changed."""
    notes = []
    if nb.nbformat_minor < 5 or any("id" not in c for c in nb.cells):
        notes.append(f"old notebook format (4.{nb.nbformat_minor}) upgraded to 4.5 with cell ids")
        nb.nbformat_minor = max(nb.nbformat_minor, 5)
    seen_ids: set[str] = set()
    for cell in nb.cells:
        if not cell.get("id") or cell.id in seen_ids:
            cell.id = uuid.uuid4().hex[:8]
        seen_ids.add(cell.id)
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != "python3":
        notes.append(f"kernel '{kernel}' replaced by python3")
    nb.metadata["kernelspec"] = dict(master.metadata.get("kernelspec", KERNELSPEC))
    nb.metadata.setdefault("language_info", {"name": "python"})
    known = set(_grade_ids(master))
    seen: set[str] = set()
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        grade_id = (meta or {}).get("grade_id")
        if not grade_id:
            continue
        if grade_id in seen:
            del cell.metadata["nbgrader"]
            notes.append(
                f"cell '{grade_id}' appears more than once (copied or split); only the first is graded"
            )
        elif grade_id not in known:
            del cell.metadata["nbgrader"]
            notes.append(f"cell '{grade_id}' is not part of the assignment; kept as an ordinary cell")
        seen.add(grade_id)
    masters = {
        c.metadata["nbgrader"]["grade_id"]: c
        for c in master.cells
        if c.metadata.get("nbgrader", {}).get("grade_id")
    }
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        ref = masters.get(grade_id)
        if ref is None:
            continue
        ref_meta = ref.metadata["nbgrader"]
        if ref_meta.get("locked") and cell.source != ref.source:
            notes.append(f"locked cell '{grade_id}' was edited; restored from the assignment")
        if ref_meta.get("grade") and cell.metadata["nbgrader"].get("points") != ref_meta.get("points"):
            notes.append(f"points of '{grade_id}' were changed; reset to {ref_meta.get('points')}")
        if cell.cell_type != ref.cell_type:
            notes.append(f"cell '{grade_id}' changed type to {cell.cell_type}; restored")
    for grade_id in sorted(known - seen):
        ref_meta = masters[grade_id].metadata["nbgrader"]
        if ref_meta.get("grade") or ref_meta.get("solution"):
            notes.append(f"cell '{grade_id}' was missing; restored from the assignment")
    return notes


def _candidates(folder: Path, expected: set[str]) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if p.stem not in expected and p.is_file())


def prepare_submission(
    submitted: Path, dest: Path, masters: dict[str, nbformat.NotebookNode]
) -> list[Prepared]:
    """Clean copies of the expected notebooks from ``submitted`` into ``dest``, with notes.

    ``masters`` maps each expected notebook name to the instructor version. Other
    files in the folder (data the student wrote, images) are copied as they are.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    expected = set(masters)
    if submitted.is_dir():
        for item in submitted.iterdir():
            if item.suffix != ".ipynb" and item.is_file() and not item.is_symlink():
                shutil.copy2(item, dest / item.name)
    extras = _candidates(submitted, expected) if submitted.is_dir() else []
    results = []
    for name, master in sorted(masters.items()):
        path = submitted / f"{name}.ipynb"
        notes: list[str] = []
        if not path.is_file():
            # A single unexpected notebook that holds this assignment's cells was renamed: grade it.
            renamed = [
                p
                for p in extras
                if (nb := read_notebook(p)[0]) is not None and set(_grade_ids(nb)) & set(_grade_ids(master))
            ]
            if len(renamed) == 1:
                path = renamed[0]
                extras.remove(path)
                notes.append(f"submitted as '{path.name}'; graded as {name}.ipynb")
            else:
                results.append(Prepared(name, None, notes, fatal="notebook missing"))
                continue
        nb, problem = read_notebook(path)
        if nb is None:
            results.append(Prepared(name, None, notes, fatal=f"unreadable notebook: {problem}"))
            continue
        notes += repair(nb, master)
        out = dest / f"{name}.ipynb"
        nbformat.write(nb, out)
        results.append(Prepared(name, out, notes))
    for extra in extras:
        if results:
            results[0].notes.append(f"extra notebook '{extra.name}' ignored")
    return results
