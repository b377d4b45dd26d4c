"""Repository wiring: the package lists, the Makefile targets, CI and ignores."""

import re

import tomllib
import yaml
from course import ROOT

# conda-forge names that differ from the PyPI names in pyproject.toml
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_name(r) for r in reqs}


def environment_packages() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(r) for r in dep["pip"] if not r.startswith("-e")}
        elif _name(dep) not in ("python", "pip"):
            names.add(CONDA_TO_PYPI.get(_name(dep), _name(dep)))
    return names


def test_environment_yml_installs_the_same_packages_as_pyproject():
    assert environment_packages() == pyproject_packages()


def test_environment_yml_installs_utils_from_the_checkout():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip
    assert "conda-forge" in env["channels"]


def test_required_dependencies_are_declared_as_ranges():
    required = {"torch", "torchvision", "jupyterlab", "nbgrader", "matplotlib", "scikit-learn",
                "transformers", "tokenizers", "gymnasium", "tqdm", "jupytext", "ipywidgets"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert required <= {_name(r) for r in project["dependencies"]}
    assert not [r for r in project["dependencies"] if "==" in r], "use ranges, not exact pins"
    assert "pytest" in {_name(r) for r in project["optional-dependencies"]["dev"]}


def test_makefile_has_every_documented_target():
    text = (ROOT / "Makefile").read_text()
    for target in ("install", "lab", "test", "test-fast", "lint", "release", "autograde", "feedback", "grades",
                   "data", "clean"):
        assert re.search(rf"^{target}:", text, re.M), f"missing make target {target}"
    # Targets that need the environment depend on it.
    for target in ("lab", "test", "test-fast", "lint", "release", "autograde", "feedback", "grades", "data"):
        assert re.search(rf"^{target}: install", text, re.M), f"{target} must depend on install"


def test_ci_runs_make_test_and_readme_gives_it():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme


def test_gitignore_covers_environment_caches_grading_and_downloads():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in (".venv/", "__pycache__/", ".pytest_cache/", "gradebook.db", "submitted/",
                  "autograded/", "feedback/", "data/cache/"):
        assert entry in ignored


def test_repository_address_is_set_in_one_place():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["course"]
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", settings["repository"])
    sources = list((ROOT / "solutions").glob("*/*.py"))
    assert sources
    for src in sources:
        assert settings["repository"] not in src.read_text(), \
            f"{src.name}: use the {{{{repo_url}}}} token; the build stamps the address"
