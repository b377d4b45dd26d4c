"""The fast-mode cost table printed after every test run that grades chapters, and written to reports/."""

from __future__ import annotations

import json

from tools.course import ROOT, benchmark

# Filled by tests/test_chapters.py: slug -> the measurement of grading that chapter's solution.
FAST_MODE_COSTS: dict[str, dict] = {}
REPORT = ROOT / "reports" / "fast_mode.json"


def pytest_terminal_summary(terminalreporter):
    if not FAST_MODE_COSTS:
        return
    bench = benchmark()
    tr = terminalreporter
    tr.section("fast-mode cost per chapter (the solution graded by tools.grader in the sandbox)")
    tr.write_line(f"calibration workload: reference {bench.reference_calibration_s:.2f} s on the "
                  f"{bench.reference_machine}; cost = notebook seconds / calibration seconds of this run")
    tr.write_line(f"{'chapter':<20}{'seconds':>9}{'calib. s':>10}{'cost':>8}{'ref. s':>9}{'budget':>8}  status")
    for slug, m in sorted(FAST_MODE_COSTS.items()):
        status = ("ok" if m["reference_seconds"] <= m["budget_s"] else
                  "over budget" if m["reference_seconds"] <= bench.overrun_factor * m["budget_s"] else "FAILED")
        tr.write_line(f"{slug:<20}{m['seconds']:>9.1f}{m['calibration_s']:>10.2f}{m['cost']:>8.1f}"
                      f"{m['reference_seconds']:>9.1f}{m['budget_s']:>8.0f}  {status}")
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(FAST_MODE_COSTS, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tr.write_line(f"written to {REPORT.relative_to(ROOT)}")
