"""The student's path in JupyterLab itself, driven in headless Chromium (issue 39, part 1).

JupyterLab is started the way a student starts it (`make lab`, fast mode, loopback, a token), and for every
chapter's student notebook the test does what a student does first: opens it from the file browser, runs the
setup cell (its printout names the mode), runs the cells up to the first exercise, runs that exercise's test
cell on the blank answer (the student must see the short Russian message, not an English traceback), then types
the reference answer into the exercise cell through the editor and runs both cells («Видимые тесты пройдены.»).
A screenshot of each chapter goes to reports/lab/. The student's lab has no instructor panels (nbgrader's
Create Assignment and its menu with the formgrader) and no news pop-up; `make lab-instructor` has the panels.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from course import ROOT, SLUGS, first_exercise
from streamlit_app import CHROMIUM, browser_marks, free_port, wait_for_port

from tools.course import JUPYTER_AUTOSAVE

SHOTS = ROOT / "reports" / "lab"
CELL_TIMEOUT_MS = 120_000

pytestmark = browser_marks


@contextlib.contextmanager
def running_lab(target: str, home: Path, startup_s: float = 120):
    """``make target`` (lab or lab-instructor) on a free loopback port with a token, in fast mode, with a fresh
    HOME (no workspace or settings from an earlier run); yields the URL with the token."""
    port, token = free_port(), secrets.token_hex(16)
    args = (f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token={token} "
            f"--LabApp.workspaces_dir={home / 'workspaces'} --LabApp.user_settings_dir={home / 'settings'}")
    env = {**os.environ, "COURSE_FAST": "1", "HOME": str(home)}
    env.pop("JUPYTER_CONFIG_PATH", None)
    server = subprocess.Popen(["make", "--no-print-directory", target, f"LAB_ARGS={args}"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for_port(server, port, startup_s, f"`make {target}`")
        yield f"http://127.0.0.1:{port}", token
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright's sync API allows one instance at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@contextlib.contextmanager
def browser_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory, browser):
    home = tmp_path_factory.mktemp("student_home")
    # No autosave: the answers this test types must never reach the repository's notebooks.
    settings = home / "settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text('{"autosave": false}', encoding="utf-8")
    with running_lab("lab", home) as (url, token), browser_page(browser) as page:
        page.goto(f"{url}/lab?token={token}")
        page.locator(".jp-DirListing-content").wait_for(timeout=CELL_TIMEOUT_MS)
        yield url, token, page


def shut_down_kernels(url: str, token: str) -> None:
    """Delete every session through the server's REST API: one chapter's kernel does not outlive its test."""
    import urllib.request

    headers = {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{url}/api/sessions", headers=headers)) as answer:
        sessions = json.load(answer)
    for session in sessions:
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/sessions/{session['id']}", headers=headers,
                                                      method="DELETE")).close()


def menu_labels(page) -> list[str]:
    page.locator(".lm-MenuBar-itemLabel").first.wait_for()
    return [t.strip() for t in page.locator(".lm-MenuBar-itemLabel").all_inner_texts()]


def run_cell(page, cell, timeout_ms: int = CELL_TIMEOUT_MS) -> str:
    """Select a code cell in command mode, run it with Shift+Enter as a student does, wait for its prompt to show
    an execution count, and return its output text."""
    prompt = cell.locator(".jp-InputArea-prompt").first
    prompt.click()
    page.keyboard.press("Shift+Enter")
    deadline = time.monotonic() + timeout_ms / 1000
    while not re.fullmatch(r"\[\d+\]:", prompt.inner_text().strip()):
        if time.monotonic() > deadline:
            pytest.fail(f"the cell did not finish in {timeout_ms / 1000:.0f} s: {prompt.inner_text()!r}")
        time.sleep(0.1)
    return cell.locator(".jp-OutputArea").inner_text()


def test_student_lab_has_no_instructor_panels(student_lab):
    url, _, page = student_lab
    labels = menu_labels(page)
    assert "Nbgrader" not in labels, f"the student's lab shows the instructor's Nbgrader menu: {labels}"
    assert page.locator("[title='Create Assignment'], #create_assignment").count() == 0, (
        "the student's lab shows the Create Assignment panel")
    page.wait_for_timeout(1500)  # the news question appears shortly after start-up where it is enabled
    toasts = " ".join(page.locator(".Toastify__toast").all_inner_texts())
    assert "news" not in toasts.lower(), f"the student's lab asks about Jupyter news: {toasts!r}"


def test_instructor_lab_keeps_its_panels(tmp_path_factory, browser):
    """The same check's other side, so that it cannot pass because the menu bar never rendered."""
    home = tmp_path_factory.mktemp("instructor_home")
    with running_lab("lab-instructor", home) as (url, token), browser_page(browser) as page:
        page.goto(f"{url}/lab?token={token}")
        page.locator(".jp-DirListing-content").wait_for(timeout=CELL_TIMEOUT_MS)
        assert "Nbgrader" in menu_labels(page), "make lab-instructor should keep nbgrader's menu"


@pytest.mark.parametrize("slug", SLUGS)
def test_first_exercise_as_a_student(student_lab, slug):
    url, token, page = student_lab
    plan = first_exercise(slug)
    notebook_file = ROOT / "modules" / slug / f"{slug}.ipynb"
    released = notebook_file.read_bytes()
    autosave = notebook_file.parent / JUPYTER_AUTOSAVE
    had_autosave = autosave.exists()
    try:
        _first_exercise(page, url, slug, plan)
    finally:
        close_tab_discarding(page)
        shut_down_kernels(url, token)
        if not had_autosave:  # the lab's checkpoint copy of the opened notebook: not the course's file
            shutil.rmtree(autosave, ignore_errors=True)
        if notebook_file.read_bytes() != released:  # never leave a typed answer in the repository
            notebook_file.write_bytes(released)
            pytest.fail(f"{slug}: the lab saved the notebook while the test typed into it")


def close_tab_discarding(page) -> None:
    """Close the current notebook as a student would (Alt+W), answering "Discard" to the save question: a lab
    with a dozen open notebooks slows the browser down to minutes per chapter."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.keyboard.press("Escape")
    page.keyboard.press("Alt+w")
    discard = page.locator(".jp-Dialog button", has_text="Discard")
    with contextlib.suppress(PlaywrightTimeout):  # nothing to discard: the notebook closed at once
        discard.click(timeout=5000)
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").wait_for(state="detached", timeout=10_000)


def _first_exercise(page, url, slug, plan):
    # ?reset: a fresh workspace. JupyterLab saves the open tabs to the server a moment after they change, so
    # without it the reload may bring back the previous chapter's notebook beside this one.
    page.goto(f"{url}/lab/tree/modules/{slug}?reset")
    page.locator(".jp-DirListing-item", has_text=f"{slug}.ipynb").first.dblclick()
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    cells = notebook.locator(":scope > .jp-WindowedPanel-outer .jp-Cell, :scope > .jp-Cell")
    cells.nth(plan["test"]).wait_for(state="attached", timeout=CELL_TIMEOUT_MS)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        state="attached", timeout=CELL_TIMEOUT_MS)

    setup = run_cell(page, cells.nth(plan["setup"]))
    assert "Режим       быстрый" in setup, f"{slug}: the setup cell should print the fast mode, got {setup!r}"
    for index in plan["code_before"]:
        run_cell(page, cells.nth(index))

    run_cell(page, cells.nth(plan["impl"]))
    blank = run_cell(page, cells.nth(plan["test"]))
    assert "Упражнение ещё не решено" in blank, f"{slug}: the blank answer should get the Russian message: {blank!r}"
    english = re.search(r"Traceback|Cell In\[|^\s*NotImplementedError", blank, re.MULTILINE)
    assert english is None, (
        f"{slug}: the blank answer shows an English traceback: {blank!r}")

    editor = cells.nth(plan["impl"]).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(plan["answer"])
    page.keyboard.press("Escape")
    run_cell(page, cells.nth(plan["impl"]))
    solved = run_cell(page, cells.nth(plan["test"]))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{slug}.png"))
    assert "Видимые тесты пройдены." in solved, f"{slug}: the reference answer typed in the editor: {solved!r}"
