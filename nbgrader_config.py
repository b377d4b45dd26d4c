"""nbgrader configuration for the course.

`solutions/` holds the instructor notebooks (source), `modules/` the student
versions (release). Grading runs every notebook in fast mode (nbgrader sets
NBGRADER_EXECUTION, which `utils.is_fast_mode()` honours).
"""

import sys
from pathlib import Path

c = get_config()  # noqa: F821  (injected by traitlets)
# The grading helpers (tools.grader) live beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))  # noqa: F821  (__file__ is set by traitlets)

# --- layout -----------------------------------------------------------------
# The course's id in the gradebook and the exchange (a server gradebook such as
# PostgreSQL insists on one; tools.grader reads it from this line).
c.CourseDirectory.course_id = "dl-course-ru"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "modules"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
# The jupytext sources (NN_slug.py) are authoring files: never release them.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "[0-9][0-9]_*.py",
]

# --- student stubs (Russian) ------------------------------------------------
c.ClearSolutions.code_stub = {
    "python": "# ВАШ КОД ЗДЕСЬ\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "ВАШ ОТВЕТ ЗДЕСЬ"

# --- execution --------------------------------------------------------------
# Fast mode keeps every cell far below this; a runaway student loop is cut here.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
# Outputs of graded notebooks stay small.
c.LimitOutput.max_lines = 300
c.LimitOutput.max_traceback = 100

# --- robustness -------------------------------------------------------------
# Only errors (failed assertions, exceptions) cost points: PyTorch warnings and
# other stderr chatter are dropped from every cell before grades are computed.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"(?s).*"
# A grade cell that a student deleted is put back from the gradebook.
c.OverwriteCells.add_missing_cells = True
c.OverwriteCells.missing_cell_notification = (
    "Эта ячейка (id:{cell_id}) отсутствовала в сданной работе; "
    "nbgrader вернул её на место.\n\n"
)

# --- feedback ---------------------------------------------------------------
# Students see which tests passed and the failure messages, not the hidden tests' code.
c.GenerateFeedback.preprocessors = [
    "tools.grader.feedback.HideHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
