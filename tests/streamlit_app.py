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


@contextlib.contextmanager
def running_app(app: Path, startup_s: float = 120):
    """The URL of ``streamlit run app`` on a free local port, in fast mode and without usage statistics."""
    port = free_port()
    env = {**os.environ, "COURSE_FAST": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + startup_s
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"streamlit exited with {server.returncode}: {server.stdout.read()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"streamlit did not open its port in {startup_s:.0f} s")
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


browser_marks = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]
