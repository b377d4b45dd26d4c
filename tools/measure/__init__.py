"""Measure the course: run a chapter end to end and record its results, the calibration workload behind
machine-independent budgets, grading throughput."""
