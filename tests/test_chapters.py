"""Course invariants for every chapter of chapters.toml (see CONTRIBUTING.md).

- the registry and the chapter folders agree, and the registry says what each chapter uses;
- nothing of a chapter's solutions or hidden tests reaches its student notebook as text;
- nbgrader metadata is sane;
- graded by tools.grader in the sandbox, as instructors grade: a complete submission (with a deleted
  test cell and stderr noise) earns full marks, the blank release earns zero on every autograded cell,
  and the solution's fast-mode cost is measured against its budget (tier `notebook`).

The build itself (generated files, leaks between chapters) is tested in test_build.py.
"""

from __future__ import annotations

import re
import shutil

import nbformat
import pytest
from conftest import FAST_MODE_COSTS
from course import ROOT, SLUGS, grading, release_notebook, solution_notebook, split_regions

from tools.artifacts import checksums
from tools.course import JUPYTER_AUTOSAVE, SLUG_RE, benchmark, chapter, run_nbgrader
from tools.grader.runner import Settings, grade_all
from tools.grader.submissions import fill_solutions
from tools.measure.calibration import calibrated

# --- the registry ------------------------------------------------------------------

def test_every_chapter_folder_is_registered_and_every_entry_has_its_files():
    folders = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and SLUG_RE.match(p.name))
    assert folders == SLUGS, "solutions/ and chapters.toml must list the same chapters"
    assert sorted(p.name for p in (ROOT / "modules").iterdir() if p.is_dir()) == SLUGS
    for slug in SLUGS:
        assert (ROOT / "tests" / "exercises" / f"test_{slug}.py").exists(), \
            f"{slug}: its exercise-check table tests/exercises/test_{slug}.py is missing"


LOADERS = {"mnist": r"load_mnist\(|get_loaders\(\"mnist\"", "fashion_mnist": r"load_fashion_mnist\(|\"fashion_mnist\"",
           "cifar10": r"load_cifar10\(|\"cifar10\"", "omniglot": r"load_omniglot\(",
           "ru_proverbs": r"load_text\(\"ru_proverbs\""}


@pytest.mark.parametrize("slug", SLUGS)
def test_registry_says_which_data_and_checkpoints_a_chapter_uses(slug):
    ch = chapter(slug)
    source = ch.source().read_text(encoding="utf-8")
    used = {name for name, pattern in LOADERS.items() if re.search(pattern, source)}
    assert used == set(ch.datasets), f"{slug} loads {sorted(used)}, chapters.toml says {sorted(ch.datasets)}"
    shipped = checksums.read()
    for file in ch.checkpoints:
        assert f"checkpoints/{file}" in shipped, f"{slug}: {file} is not a shipped checkpoint"
    named = set(re.findall(r"checkpoints/([\w.]+)", source))
    if "utils.metrics." in source:
        named.add("mnist_classifier.pt")
    assert named <= set(ch.checkpoints), f"{slug} reads {sorted(named - set(ch.checkpoints))}, not declared"


@pytest.mark.parametrize("slug", SLUGS)
def test_chapter_layout(slug):
    # Jupyter's autosave folder (git-ignored) appears wherever a notebook was opened in place; it is not shipped.
    shipped = (p.name for p in (ROOT / "modules" / slug).iterdir() if p.name != JUPYTER_AUTOSAVE)
    assert sorted(shipped) == [f"{slug}.ipynb"]
    text = chapter(slug).release_notebook().read_text(encoding="utf-8")
    assert "{{" not in text, "an unstamped build token is left in the student notebook"


# --- text leaks within a chapter ------------------------------------------------------

def _secret_lines(nb) -> tuple[list[str], str]:
    """Lines of solution and hidden-test regions, and the notebook's public text."""
    secret, public = [], []
    for cell in nb.cells:
        solution, rest = split_regions(cell.source, "BEGIN SOLUTION", "END SOLUTION")
        hidden, rest = split_regions("\n".join(rest), "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        secret += solution + hidden
        public += rest
    return secret, "\n".join(public)


@pytest.mark.parametrize("slug", SLUGS)
def test_no_solution_or_hidden_test_text_reaches_modules(slug):
    """Line by line, written answers included; code is also compared after normalisation (test_build.py)."""
    release = release_notebook(slug)
    released_text = "\n".join(c.source for c in release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in released_text
    secret, public = _secret_lines(solution_notebook(slug))
    # A secret line that also stands in a public part of the notebook is not a leak.
    distinctive = [s.strip() for s in secret
                   if len(s.strip()) >= 8 and not s.strip().startswith("#") and s.strip() not in public]
    assert distinctive, "no solution text found to check"
    leaked = [line for line in distinctive if line in released_text]
    assert not leaked, "solution or hidden-test text found in modules/:\n" + "\n".join(leaked)


# --- metadata ----------------------------------------------------------------------

@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("which", ["solution", "release"])
def test_metadata_is_sane(slug, which):
    nb = solution_notebook(slug) if which == "solution" else release_notebook(slug)
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


# --- grading, as instructors grade --------------------------------------------------

def noisy_submission(slug: str) -> nbformat.NotebookNode:
    """A complete submission with its first test cell deleted and debug output to stderr in its code.

    Every answer prints to stderr, so the test cells that call it show stderr
    output (as PyTorch warnings would). The grader must restore the deleted cell
    from the gradebook and ignore the chatter: full marks still. (Printing from
    the test cells themselves would prove nothing: nbgrader overwrites them.)
    """
    nb = fill_solutions(release_notebook(slug), solution_notebook(slug))  # a copy: the cached notebooks stay
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


@pytest.fixture(scope="module", params=SLUGS)
def graded(request, tmp_path_factory):
    """One chapter graded by tools.grader: a noisy complete submission ("solution") and the blank release.

    One chapter per fixture instance, so that `-k NN_slug` grades only that chapter."""
    from nbgrader.api import Gradebook

    slug = request.param
    course = tmp_path_factory.mktemp(f"grade-{slug}")
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    shutil.copy(ROOT / "nbgrader_config.py", course)
    (course / "solutions" / slug).mkdir(parents=True)
    shutil.copy(chapter(slug).instructor_notebook(), course / "solutions" / slug)
    run_nbgrader(course, "generate_assignment", slug, "--force", f"--CourseDirectory.db_url={db_url}")
    for student, nb in (("solution", noisy_submission(slug)), ("blank", release_notebook(slug))):
        (course / "submitted" / student / slug).mkdir(parents=True)
        nbformat.write(nb, course / "submitted" / student / slug / f"{slug}.ipynb")
    settings = Settings(course=course, assignment=slug, db_url=db_url)
    graded_results, calibration = calibrated(lambda: grade_all(settings))
    results = {r.student: r for r in graded_results}
    grades = {}
    with Gradebook(db_url) as gb:
        for student in results:
            nb = gb.find_submission_notebook(slug, slug, student)
            grades[student] = {g.name: (g.auto_score, g.max_score) for g in nb.grades if g.cell.cell_type == "code"}
    seconds = results["solution"].seconds
    FAST_MODE_COSTS[slug] = {
        "seconds": round(seconds, 1), "calibration_s": round(calibration, 3),
        "cost": round(seconds / calibration, 2),
        "reference_seconds": round(benchmark().reference_seconds(seconds, calibration), 1),
        "budget_s": chapter(slug).fast_budget_s, "sandbox": settings.sandbox_level,
    }
    return {"slug": slug, "course": course, "results": results, "grades": grades}


def _errors(graded, student) -> str:
    path = graded["course"] / "autograded" / student / graded["slug"] / f"{graded['slug']}.ipynb"
    if not path.exists():
        return "no autograded notebook"
    lines = []
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                lines.append(f"{grading(cell).get('grade_id', cell.id)}: {out.ename}: {out.evalue}")
    return "\n".join(lines)


@pytest.mark.notebook
def test_complete_submission_earns_full_marks_despite_a_deleted_test_cell_and_stderr(graded):
    result, grades = graded["results"]["solution"], graded["grades"]["solution"]
    assert result.status == "graded", f"{result}\n{_errors(graded, 'solution')}"
    assert grades, "no autograded cell was recorded"
    below = {k: v for k, v in grades.items() if v[0] != v[1]}
    assert not below, f"cells below full marks: {below}\n{_errors(graded, 'solution')}"
    assert result.score == sum(full for _, full in grades.values())  # the written answers wait for a person
    assert [r for r in result.reasons if "was missing; restored" in r], result.reasons


@pytest.mark.notebook
def test_blank_release_earns_zero_and_the_grader_survives(graded):
    result, grades = graded["results"]["blank"], graded["grades"]["blank"]
    assert result.status == "graded", result
    assert grades.keys() == graded["grades"]["solution"].keys()
    assert all(score == 0 for score, _ in grades.values()), grades


@pytest.mark.notebook
def test_fast_mode_cost_is_measured_and_not_several_times_the_budget(graded):
    """A budget is a benchmark, reported at the end of the run; only a gross overrun fails here."""
    m, factor = FAST_MODE_COSTS[graded["slug"]], benchmark().overrun_factor
    assert m["reference_seconds"] <= factor * m["budget_s"], \
        f"{graded['slug']}: {m['reference_seconds']:.0f} reference seconds, over {factor:g}x its budget"
