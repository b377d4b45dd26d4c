"""Start one of the course's Streamlit apps on a free port for a browser test (what `make demo` and
`make text2image` run), and stop it afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(server: subprocess.Popen, port: int, startup_s: float, name: str) -> None:
    """Wait until ``server`` (started with its output piped) listens on the loopback ``port``; fail the test
    with the end of its output if it exits first, or after ``startup_s`` seconds."""
    deadline = time.monotonic() + startup_s
    while True:
        if server.poll() is not None:
            pytest.fail(f"{name} exited with {server.returncode}: {server.stdout.read()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not open its port in {startup_s:.0f} s")
            time.sleep(0.5)


@contextlib.contextmanager
def running_app(app: Path, startup_s: float = 120, cwd: Path = ROOT):
    """The URL of ``streamlit run app`` on a free local port, in fast mode and without usage statistics."""
    port = free_port()
    env = {**os.environ, "COURSE_FAST": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(server, port, startup_s, "streamlit")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def app_fixture(app: Path):
    """A module-scoped pytest fixture giving the URL of ``app`` running for the module's tests."""
    @pytest.fixture(scope="module")
    def app_url():
        with running_app(app) as url:
            yield url

    return app_url


@contextlib.contextmanager
def app_page(url: str):
    """A page of headless Chromium (Debian's) open at ``url``; the browser is closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.goto(url)
            yield page
        finally:
            browser.close()


def check_ranked_grid(page, box, text: str, count: int, timeout_ms: int = 60_000) -> None:
    """Type ``text`` into ``box`` and check the answer: ``count`` served pictures, displayed at their width,
    with cosine captions in [-1, 1] sorted from best to worst."""
    box.fill(text)
    box.press("Enter")
    page.get_by_text(f"«{text}»").wait_for(timeout=timeout_ms)
    pictures = page.locator('[data-testid="stImage"] img')
    pictures.nth(count - 1).wait_for(timeout=60_000)
    assert pictures.count() == count
    sources = [pictures.nth(i).get_attribute("src") for i in range(count)]
    assert all(src and "/media/" in src for src in sources), sources
    shown = pictures.first.evaluate("img => img.complete && img.naturalWidth")
    assert shown == 144, f"the first picture is not displayed at its width: {shown}"
    scores = [float(t) for t in page.locator('[data-testid="stImageCaption"]').all_inner_texts()]
    assert len(scores) == count and scores == sorted(scores, reverse=True), scores
    assert all(-1 <= s <= 1 for s in scores), scores


browser_marks = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]
