"""The course's Streamlit apps as students meet them: from a notebook (utils.show_app, Colab included) and from a
checkout that has only what students have (demo/, utils/, data/): no solutions/, no tools/."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import types
import urllib.request

import pytest
from course import ROOT
from streamlit_app import CHROMIUM, app_page, check_ranked_grid, free_port, running_app

import utils
from utils import apps

# Apps that still run the instructor's chapter code (none since issue 37 rebuilt chapter 12's on utils).
NEEDS_INSTRUCTOR_CODE: set[str] = set()


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("app", sorted(p.stem for p in (ROOT / "demo").glob("*.py")))
def test_apps_use_only_what_students_have(app):
    uses = imported_modules(ROOT / "demo" / f"{app}.py") & {"tools", "solutions", "tests"}
    if app in NEEDS_INSTRUCTOR_CODE:
        assert uses, f"demo/{app}.py no longer needs the instructor's code: take it off NEEDS_INSTRUCTOR_CODE"
    else:
        assert not uses, f"demo/{app}.py imports {uses}, which students do not have"


@pytest.mark.browser
def test_show_app_on_colab_serves_the_port_through_colab(monkeypatch):
    """On Colab, show_app starts the server and hands its port to Colab's proxy (a stand-in records the call)."""
    served = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(serve_kernel_port_as_iframe=lambda port, height: served.append((port, height)))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setenv("COURSE_FAST", "1")
    port = free_port()
    try:
        url = utils.show_app("clip_search", port=port, height=600)
        assert served == [(port, 600)]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=30) as answer:
            assert answer.status == 200 and answer.read().decode() == "ok"
        assert url == f"http://localhost:{port}"
        assert utils.start_app("clip_search", port=port) == url and len(apps._servers) == 1, "started twice"
    finally:
        utils.stop_apps()
    assert not apps._servers


def student_checkout(tmp_path) -> object:
    """demo/, utils/ and the data the apps read, and nothing else of the repository."""
    for folder in ("demo", "utils"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("mnist", "checkpoints/clip_mnist.pt", "checkpoints/clip_mnist_text.pt2",
                 "checkpoints/mnist_classifier.pt", "checkpoints/text_to_image_latent.pt"):
        source, target = ROOT / "data" / part, tmp_path / "data" / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    return tmp_path


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_search_app_runs_without_solutions_and_tools(tmp_path):
    root = student_checkout(tmp_path)
    assert not (root / "tools").exists() and not (root / "solutions").exists()
    found = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(root)!r}); import utils; "
                            "print(utils.__file__)"], capture_output=True, text=True, check=True).stdout.strip()
    assert found == str(root / "utils" / "__init__.py"), found  # the app's own sys.path finds this copy
    with running_app(root / "demo" / "clip_search.py", cwd=root) as url, app_page(url) as page:
        box = page.get_by_label("Запрос")
        box.wait_for(timeout=120_000)
        check_ranked_grid(page, box, "двойка слева от четвёрки", count=12)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_text_to_image_app_runs_without_solutions_and_tools(tmp_path):
    root = student_checkout(tmp_path)
    assert not (root / "tools").exists() and not (root / "solutions").exists()
    with running_app(root / "demo" / "text_to_image.py", cwd=root) as url, app_page(url) as page:
        box = page.get_by_label("Подпись")
        box.wait_for(timeout=120_000)
        check_ranked_grid(page, box, "большая тройка в центре на красном фоне", count=8, timeout_ms=120_000)
        page.get_by_text("Что читает судья").wait_for(timeout=10_000)
        assert page.get_by_text("система курса").count() >= 1  # no student's file in this checkout
