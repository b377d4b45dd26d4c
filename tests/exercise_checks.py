"""Run a chapter's graded test cells in-process against a given implementation.

Used by the per-chapter `test_NN_exercise_checks.py` files to show that the
tests reject plausible mistakes and accept other correct implementations.
"""

from __future__ import annotations

import textwrap
import warnings

from course import cell_by_grade_id, grading, solution_notebook

PREAMBLE = """
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import utils
"""


def run_test_cell(chapter: str, implementation: str, test_id: str) -> None:
    """Define ``implementation``, then run the graded test cell ``test_id`` of ``chapter``."""
    ns: dict = {}
    exec(PREAMBLE, ns)
    exec(textwrap.dedent(implementation), ns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(cell_by_grade_id(solution_notebook(chapter), test_id), ns)


def graded_test_ids(chapter: str) -> list[str]:
    """grade_ids of the autograded (code) test cells of a chapter."""
    return [grading(c)["grade_id"] for c in solution_notebook(chapter).cells
            if grading(c).get("grade") and c.cell_type == "code"]
