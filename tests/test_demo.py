"""The chapter 08 search app, driven in headless Chromium: a typed query must return pictures.

Starts `streamlit run demo/clip_search.py` (what `make demo` runs) on a free port,
opens it with Playwright in Debian's chromium (no browser download), types a
query, and checks the grid of found pictures and their cosine captions. Skipped
only when the chromium package is missing (.ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "demo" / "clip_search.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = free_port()
    env = {**os.environ, "COURSE_FAST": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"streamlit exited with {server.returncode}: {server.stdout.read()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not open its port in 120 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def test_a_typed_query_returns_pictures(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.goto(app_url)
            box = page.get_by_label("Запрос")
            box.wait_for(timeout=120_000)  # the first run loads the model and encodes the gallery
            assert page.locator('[data-testid="stImage"] img').count() == 0
            box.fill("тройка на жёлтом фоне")
            box.press("Enter")
            page.get_by_text("«тройка на жёлтом фоне»").wait_for(timeout=60_000)
            pictures = page.locator('[data-testid="stImage"] img')
            pictures.nth(11).wait_for(timeout=60_000)
            assert pictures.count() == 12  # the slider's default k
            sources = [pictures.nth(i).get_attribute("src") for i in range(12)]
            assert all(src and "/media/" in src for src in sources), sources
            shown = pictures.first.evaluate("img => img.complete && img.naturalWidth")
            assert shown == 144, f"the first picture is not displayed at its width: {shown}"
            scores = [float(t) for t in page.locator('[data-testid="stImageCaption"]').all_inner_texts()]
            assert len(scores) == 12 and scores == sorted(scores, reverse=True), scores
            assert all(-1 <= s <= 1 for s in scores), scores
        finally:
            browser.close()
