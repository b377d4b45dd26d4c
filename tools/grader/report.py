"""The per-submission status report written beside grades.csv.

`score` is what the gradebook holds now (automatic points, plus any hand-graded ones); `manual_pending`
is the points of written answers that still wait for the instructor, so they are not read as points lost.
"""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

from .runner import NotebookResult

COLUMNS = ["student", "notebook", "status", "score", "max_score", "manual_pending", "submitted_at", "late", "reasons",
           "sandbox"]


def write_report(results: list[NotebookResult], path: Path, sandbox_note: str) -> None:
    """One row per student and notebook; regrading a student replaces that student's rows only."""
    rows = {}
    if path.exists():
        with path.open(newline="", encoding="utf-8") as f:
            rows = {(r["student"], r["notebook"]): r for r in csv.DictReader(f)}
        rows = {key: {c: row.get(c) or "" for c in COLUMNS} for key, row in rows.items()}  # older reports
    for r in results:
        rows[(r.student, r.notebook)] = {
            "student": r.student,
            "notebook": r.notebook,
            "status": r.status,
            "score": "" if r.score is None else f"{r.score:g}",
            "max_score": "" if r.max_score is None else f"{r.max_score:g}",
            "manual_pending": "" if r.manual_pending is None else f"{r.manual_pending:g}",
            "submitted_at": r.submitted_at or "",
            "late": late(r.late_seconds),
            "reasons": "; ".join(dict.fromkeys(r.reasons)),  # each reason once, in order
            "sandbox": sandbox_note,
        }
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for key in sorted(rows):
            writer.writerow(rows[key])


def late(seconds: float | None) -> str:
    """'' on time or without a due date, else how late: 'late by 0:02:05' (days as '1 day, 3:00:00')."""
    if not seconds:
        return ""
    return f"late by {timedelta(seconds=round(seconds))}"
