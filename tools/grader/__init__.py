"""Robust autograding around nbgrader (`make autograde`): preflight repair, sandboxed kernels, isolation,
parallelism, a status report."""
