"""Robust autograding around nbgrader: preflight repair, sandboxed kernels, isolation, parallelism, report."""
