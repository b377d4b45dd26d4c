"""Course invariants for every chapter in solutions/ (see COURSE_SPEC.md).

- generated notebooks are exactly what `make release` builds, and a rebuild is identical;
- nothing of the solutions or hidden tests reaches modules/;
- nbgrader metadata is sane;
- graded as submissions, the solution earns full marks and the blank release
  earns zero on every autograded cell, in fast mode within the time budget.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import NOTEBOOK_BUDGET_S, NOTEBOOK_SECONDS
from course import CHAPTERS, ROOT, grading, release_notebook, solution_notebook, split_regions

from tools import build_notebooks

pytestmark = pytest.mark.skipif(not CHAPTERS, reason="no chapter in solutions/ yet")


# --- generated files -------------------------------------------------------------

def test_generated_notebooks_are_current_and_rebuild_identically(tmp_path):
    problems = build_notebooks.check(ROOT)
    assert not problems, "run `make release`:\n" + "\n".join(problems)
    # Two builds of the same sources are byte-identical.
    build_notebooks.copy_sources(ROOT, tmp_path)
    build_notebooks.build(tmp_path)
    first = build_notebooks.generated_files(tmp_path)
    build_notebooks.build(tmp_path)
    assert build_notebooks.generated_files(tmp_path) == first


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_layout(chapter):
    assert sorted(p.name for p in (ROOT / "modules" / chapter).iterdir()) == [f"{chapter}.ipynb"]
    assert (ROOT / "solutions" / chapter / f"{chapter}.py").exists()
    text = (ROOT / "modules" / chapter / f"{chapter}.ipynb").read_text(encoding="utf-8")
    assert "{{" not in text, "an unstamped build token is left in the student notebook"


# --- leaks -----------------------------------------------------------------------

def _secret_lines(nb) -> tuple[list[str], str]:
    """Lines of solution and hidden-test regions, and the notebook's public text."""
    secret, public = [], []
    for cell in nb.cells:
        solution, rest = split_regions(cell.source, "BEGIN SOLUTION", "END SOLUTION")
        hidden, rest = split_regions("\n".join(rest), "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        secret += solution + hidden
        public += rest
    return secret, "\n".join(public)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_solution_or_hidden_test_reaches_modules(chapter):
    release = release_notebook(chapter)
    released_text = "\n".join(c.source for c in release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in released_text
    secret, public = _secret_lines(solution_notebook(chapter))
    # A secret line that also stands in a public part of the notebook is not a leak.
    distinctive = [s.strip() for s in secret
                   if len(s.strip()) >= 8 and not s.strip().startswith("#") and s.strip() not in public]
    assert distinctive, "no solution text found to check"
    leaked = [line for line in distinctive if line in released_text]
    assert not leaked, "solution or hidden-test text found in modules/:\n" + "\n".join(leaked)
    for path in (ROOT / "modules" / chapter).rglob("*"):
        assert path.suffix == ".ipynb", f"only notebooks are released, found {path.name}"


# --- metadata --------------------------------------------------------------------

@pytest.mark.parametrize("chapter", CHAPTERS)
@pytest.mark.parametrize("which", ["solution", "release"])
def test_metadata_is_sane(chapter, which):
    nb = solution_notebook(chapter) if which == "solution" else release_notebook(chapter)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.metadata.kernelspec.language == "python"
    ids = [grading(c)["grade_id"] for c in nb.cells if grading(c)]
    assert len(ids) == len(set(ids)), f"duplicate grade_id: {ids}"
    assert len({c.id for c in nb.cells}) == len(nb.cells), "cell ids must be unique"
    pending_solution = None
    autograded = 0
    for cell in nb.cells:
        meta = grading(cell)
        if meta.get("grade"):
            assert meta.get("points", 0) > 0, f"{meta['grade_id']}: graded cell without points"
        if cell.cell_type == "code" and meta.get("solution"):
            assert pending_solution is None, f"{pending_solution}: solution cell not followed by tests"
            pending_solution = meta["grade_id"]
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            autograded += 1
            pending_solution = None
            assert meta.get("locked"), f"{meta['grade_id']}: test cells are locked"
    assert pending_solution is None, f"{pending_solution}: solution cell not followed by tests"
    assert autograded > 0


# --- grading ---------------------------------------------------------------------

def _nbgrader(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, text=True,
                          capture_output=True, env=build_notebooks.tool_env(COURSE_FAST="1"))


def _noisy_submission(solution):
    """The solution with its first test cell deleted and debug output to stderr in its code.

    Every solution body prints to stderr, so the test cells that call it show
    stderr output (as PyTorch warnings would). The configuration must restore the
    deleted cell from the gradebook and ignore the chatter: full marks still.
    (Printing from the test cells themselves would prove nothing: nbgrader
    overwrites them from the gradebook.)
    """
    nb = copy.deepcopy(solution)
    tests = [c for c in nb.cells if grading(c).get("grade") and c.cell_type == "code"]
    nb.cells.remove(tests[0])
    for cell in nb.cells:
        if cell.cell_type == "code" and grading(cell).get("solution"):
            lines = []
            for line in cell.source.splitlines():
                lines.append(line)
                if "### BEGIN SOLUTION" in line:
                    indent = line[: len(line) - len(line.lstrip())]
                    lines.append(f"{indent}print('отладка', file=__import__('sys').stderr)")
            cell.source = "\n".join(lines)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the solution and the blank release of every chapter as two students."""
    from nbgrader.api import Gradebook

    root = tmp_path_factory.mktemp("grading")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    results = {}
    for ch in CHAPTERS:
        (root / "solutions" / ch).mkdir(parents=True)
        shutil.copy(ROOT / "solutions" / ch / f"{ch}.ipynb", root / "solutions" / ch)
        done = _nbgrader(root, "generate_assignment", ch, "--force")
        assert done.returncode == 0, done.stderr
        solution = nbformat.read(ROOT / "solutions" / ch / f"{ch}.ipynb", as_version=4)
        submissions = {"solution": solution,
                       "blank": nbformat.read(ROOT / "modules" / ch / f"{ch}.ipynb", as_version=4),
                       "noisy": _noisy_submission(solution)}
        for student, nb in submissions.items():
            dest = root / "submitted" / student / ch
            dest.mkdir(parents=True)
            nbformat.write(nb, dest / f"{ch}.ipynb")
            start = time.perf_counter()
            done = _nbgrader(root, "autograde", ch, "--student", student)
            seconds = time.perf_counter() - start
            results[(ch, student)] = {"returncode": done.returncode, "log": done.stderr,
                                      "seconds": seconds, "grades": {}}
            if student == "solution":
                NOTEBOOK_SECONDS[ch] = seconds
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for (ch, student), res in results.items():
            try:
                nb = gb.find_submission_notebook(ch, ch, student)
            except Exception:  # nothing recorded: the assertions below report it
                continue
            for grade in nb.grades:
                res["grades"][grade.name] = (grade.cell.cell_type, grade.auto_score, grade.max_score)
    results["root"] = root
    return results


def _failure_report(graded, chapter, student) -> str:
    path = graded["root"] / "autograded" / student / chapter / f"{chapter}.ipynb"
    if not path.exists():
        return graded[(chapter, student)]["log"][-3000:]
    nb = nbformat.read(path, as_version=4)
    lines = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                lines.append(f"{grading(cell).get('grade_id', cell.id)}: {out.ename}: {out.evalue}")
    return "\n".join(lines)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_earns_full_marks(graded, chapter):
    res = graded[(chapter, "solution")]
    assert res["returncode"] == 0, res["log"][-3000:]
    auto = {k: v for k, v in res["grades"].items() if v[0] == "code"}
    assert auto, "no autograded cell was recorded"
    missing = {k: v for k, v in auto.items() if v[1] != v[2]}
    assert not missing, f"cells below full marks: {missing}\n{_failure_report(graded, chapter, 'solution')}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_deleted_test_cell_is_restored_and_stderr_costs_nothing(graded, chapter):
    res = graded[(chapter, "noisy")]
    assert res["returncode"] == 0, res["log"][-3000:]
    expected = {k: v for k, v in graded[(chapter, "solution")]["grades"].items() if v[0] == "code"}
    got = {k: v for k, v in res["grades"].items() if v[0] == "code"}
    assert got == expected, f"{got}\n{_failure_report(graded, chapter, 'noisy')}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_blank_release_earns_zero_and_grader_survives(graded, chapter):
    res = graded[(chapter, "blank")]
    assert res["returncode"] == 0, res["log"][-3000:]
    auto = {k: v for k, v in res["grades"].items() if v[0] == "code"}
    assert auto and all(score == 0 for _, score, _ in auto.values()), auto
    assert set(auto) == {k for k, v in graded[(chapter, "solution")]["grades"].items() if v[0] == "code"}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_fast_mode_run_time_within_budget(graded, chapter):
    seconds = graded[(chapter, "solution")]["seconds"]
    assert seconds < NOTEBOOK_BUDGET_S, \
        f"{chapter}: {seconds:.0f} s in fast mode (budget {NOTEBOOK_BUDGET_S:.0f} s)"
