"""The Colab path (issue 39, part 2): what the setup cell installs there, and the path itself, simulated.

On Colab a student opens one released notebook and nothing else; its setup cell clones the course and installs
what Colab lacks. The simulation reproduces exactly that here: the notebook alone in an empty folder, a
stand-in `google.colab` module imported at kernel start (as on Colab), and the clone URL redirected, for git
only (`url.<base>.insteadOf` in a temporary HOME), to a bare clone of the commit under test, so the notebook
runs unchanged. For every chapter it executes the setup cell, the code before the first exercise, that exercise
with its reference answer and its test cell; one whole chapter runs end to end with every answer filled in.
Committed work only: the bare clone is of HEAD.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
import pytest
import tomllib
from course import ROOT, SLUGS, first_exercise, grading, release_notebook, solution_notebook
from nbclient import NotebookClient
from packaging.requirements import Requirement
from packaging.version import Version

from utils import colab

RECORD = json.loads((ROOT / "utils" / "colab_packages.json").read_text(encoding="utf-8"))
# What students never need on Colab: its own notebook front end replaces the lab, nbgrader and jupytext
# (and its widgets: ipywidgets is pinned by Colab to the version its front end speaks).
NOT_ON_COLAB = {"jupyterlab", "nbgrader", "jupytext", "ipywidgets"}
END_TO_END = "02_vae"  # the cheapest chapter in fast mode (reports/fast_mode.json)


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in project["dependencies"]]


def test_the_record_covers_every_runtime_requirement():
    names = {r.name for r in runtime_requirements()} - NOT_ON_COLAB
    assert names <= set(RECORD["packages"]), f"not in utils/colab_packages.json: {names - set(RECORD['packages'])}"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", RECORD["date"]) and RECORD["source"].startswith("https://")


def test_install_list_is_what_colab_lacks():
    """A requirement goes into INSTALL_ON_COLAB exactly when Colab's recorded version is missing or too old."""
    lacking = {}
    for requirement in runtime_requirements():
        if requirement.name in NOT_ON_COLAB:
            continue
        version = RECORD["packages"][requirement.name]
        if version is None or not requirement.specifier.contains(Version(version), prereleases=True):
            lacking[requirement.name] = str(requirement)
    listed = {module: spec for module, (spec, _) in colab.INSTALL_ON_COLAB.items()}
    assert listed == lacking, f"INSTALL_ON_COLAB {listed} but Colab lacks {lacking}"
    for module, (_, chapters) in colab.INSTALL_ON_COLAB.items():
        assert set(chapters) <= set(SLUGS), f"{module}: unknown chapters {set(chapters) - set(SLUGS)}"


@pytest.mark.parametrize("present", [False, True])
def test_install_missing_against_a_package_list_stub(present, capsys):
    calls = []
    chapter, (module, (spec, _)) = "08_clip", next(iter(colab.INSTALL_ON_COLAB.items()))
    installed = colab.install_missing(chapter, present=lambda name: present and name == module,
                                      run=lambda *args, **kwargs: calls.append(args[0]))
    if present:
        assert installed == [] and calls == [] and capsys.readouterr().out == ""
    else:
        assert installed == [spec]
        assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", spec]]
        assert "устанавливаю" in capsys.readouterr().out
    # a chapter that does not use the package installs nothing, present or not
    assert colab.install_missing("01_autoencoders", present=lambda name: False, run=calls.append) == []


# ---------------------------------------------------------------------------------------------- the simulation

# Kernel start-up in the simulation: Colab imports google.colab; the package-list stub says the runtime lacks what
# utils.colab installs (its modules are not found), and a pip stand-in records the install command in a file
# instead of downloading. Nothing else changes: the notebook's own setup cell runs as it is.
STARTUP = """
import google.colab  # noqa: F401
import importlib.util, json, os, subprocess

_lacking = set(json.loads(os.environ["COLAB_SIM_LACKING"]))
_find_spec, _run = importlib.util.find_spec, subprocess.run


def _stub_find_spec(name, package=None):
    return None if name in _lacking else _find_spec(name, package)


def _stub_run(args, *rest, **options):
    if list(args[1:3]) == ["-m", "pip"]:
        with open(os.environ["COLAB_SIM_PIP_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps([str(a) for a in args]) + "\\n")
        return subprocess.CompletedProcess(args, 0)
    return _run(args, *rest, **options)


importlib.util.find_spec, subprocess.run = _stub_find_spec, _stub_run
"""

@pytest.fixture(scope="module")
def colab_world(tmp_path_factory):
    """(environment for the kernel, a folder for notebooks): HOME with the clone redirect, the google.colab
    stand-in imported at start-up, fast mode."""
    base = tmp_path_factory.mktemp("colab")
    bare = base / "course.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(ROOT), str(bare)], check=True)
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["course"]
    home = base / "home"
    home.mkdir()
    subprocess.run(["git", "config", "--file", str(home / ".gitconfig"),
                    f"url.file://{bare}.insteadOf", f"https://github.com/{settings['repository']}"], check=True)
    stub = base / "stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('"""Stand-in for Colab\'s google.colab in the simulation."""\n')
    startup = base / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(STARTUP, encoding="utf-8")
    env = {"HOME": str(home), "IPYTHONDIR": str(base / "ipython"), "PYTHONPATH": str(base / "stub"),
           "COURSE_FAST": "1", "GIT_TERMINAL_PROMPT": "0",
           "COLAB_SIM_LACKING": json.dumps(list(colab.INSTALL_ON_COLAB))}
    return env, base


def run_on_colab(monkeypatch, env: dict, folder, nb, indices: list[int]) -> list:
    """Execute the cells ``indices`` of ``nb`` in ``folder`` with the course kernel in the Colab environment;
    returns the executed cells. A last probe cell checks that `utils` came from the clone, not from this
    checkout's editable install."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    probe = nbformat.v4.new_code_cell("import utils\nprint(utils.__file__)")
    nb.cells.append(probe)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    with client.setup_kernel():
        for i in [*indices, len(nb.cells) - 1]:
            client.execute_cell(nb.cells[i], i)
    assert output_text(probe).strip() == str(folder / "course" / "utils" / "__init__.py"), output_text(probe)
    return [nb.cells[i] for i in indices]


def output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", "") if out.output_type == "stream" else
                     "\n".join(out.get("traceback", [])) if out.output_type == "error" else
                     str(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


@pytest.mark.notebook
@pytest.mark.parametrize("slug", SLUGS)
def test_first_exercise_on_colab(slug, colab_world, monkeypatch):
    env, base = colab_world
    folder = base / slug
    folder.mkdir()
    plan = first_exercise(slug)
    nb = release_notebook(slug)
    nbformat.write(nb, folder / f"{slug}.ipynb")  # the notebook alone, as a student opens it
    nb.cells[plan["impl"]].source = plan["answer"]
    pip_log = folder / "pip.log"
    cells = run_on_colab(monkeypatch, {**env, "COLAB_SIM_PIP_LOG": str(pip_log)}, folder, nb,
                         [plan["setup"], *plan["code_before"], plan["impl"], plan["test"]])
    setup = output_text(cells[0])
    assert (folder / "course" / "utils" / "__init__.py").exists(), f"{slug}: the setup cell did not clone the course"
    assert "Среда       Google Colab" in setup and "Режим       быстрый" in setup, setup
    # the install step: reached, and asking pip for exactly what this chapter needs and the stub runtime lacks
    wanted = [spec for spec, chapters in colab.INSTALL_ON_COLAB.values() if slug in chapters]
    calls = [json.loads(line) for line in pip_log.read_text(encoding="utf-8").splitlines()] if pip_log.exists() else []
    assert [call[1:] for call in calls] == ([["-m", "pip", "install", "--quiet", *wanted]] if wanted else []), calls
    assert ("устанавливаю" in setup) == bool(wanted), setup
    assert "Видимые тесты пройдены." in output_text(cells[-1]), output_text(cells[-1])


@pytest.mark.notebook
def test_a_whole_chapter_on_colab(colab_world, monkeypatch):
    env, base = colab_world
    folder = base / f"whole_{END_TO_END}"
    folder.mkdir()
    nb = release_notebook(END_TO_END)
    nbformat.write(nb, folder / f"{END_TO_END}.ipynb")
    answers = solution_notebook(END_TO_END)
    for cell in nb.cells:
        if cell.cell_type == "code" and grading(cell).get("solution"):
            grade_id = grading(cell)["grade_id"]
            cell.source = next(c.source for c in answers.cells if grading(c).get("grade_id") == grade_id)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    cells = run_on_colab(monkeypatch, {**env, "COLAB_SIM_PIP_LOG": str(folder / "pip.log")}, folder, nb, code)
    errors = [output_text(c) for c in cells if any(o.output_type == "error" for o in c.get("outputs", []))]
    assert not errors, errors[0]
    assert sum("Видимые тесты пройдены." in output_text(c) for c in cells) == sum(
        1 for c in nb.cells if grading(c).get("grade") and c.cell_type == "code")
