"""The table of notebook run times printed after every test run."""

from __future__ import annotations

# Filled by tests/test_course.py: chapter -> seconds for a fast-mode autograde of the solution.
NOTEBOOK_SECONDS: dict[str, float] = {}
NOTEBOOK_BUDGET_S = 90.0


def pytest_terminal_summary(terminalreporter):
    if not NOTEBOOK_SECONDS:
        return
    tr = terminalreporter
    tr.section("notebook fast-mode run times (nbgrader autograde of the solution, 2 cores)")
    tr.write_line(f"{'chapter':<24}{'seconds':>10}{'budget':>10}  status")
    for chapter, seconds in sorted(NOTEBOOK_SECONDS.items()):
        status = "ok" if seconds < NOTEBOOK_BUDGET_S else "OVER BUDGET"
        tr.write_line(f"{chapter:<24}{seconds:>10.1f}{NOTEBOOK_BUDGET_S:>10.0f}  {status}")
