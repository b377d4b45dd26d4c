"""Feedback that shows which tests passed and why others failed, without the hidden tests' source.

nbgrader's feedback is the autograded notebook as HTML, and the autograded
test cells hold the hidden tests (restored from the gradebook), as do the
tracebacks of failed asserts. This preprocessor, added to
`GenerateFeedback.preprocessors` in nbgrader_config.py, replaces each hidden
region by a one-line note and each test-cell traceback by its last line
("AssertionError: <message>"): the messages are written for students.
"""

from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor

HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*$", re.S | re.M)
NOTE = "# … скрытые тесты: их код не показывается, сообщения об ошибках — ниже …"


class HideHiddenTests(NbGraderPreprocessor):
    """Strip hidden-test source and tracebacks from the test cells of a graded notebook."""

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            cell.source = HIDDEN.sub(NOTE, cell.source)
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources
