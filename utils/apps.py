"""Start one of the course's Streamlit apps (demo/) from a notebook and show it there, locally or on Colab.

A notebook cell calls ``show_app("clip_search")``: the app runs as a background server of this kernel (stopped
when the kernel stops) and appears below the cell, in an iframe. On Colab the page cannot reach the runtime's
localhost, so Colab's own proxy serves the port (``google.colab.output.serve_kernel_port_as_iframe``); locally
the iframe shows http://localhost:PORT and the address is printed as well.
"""

from __future__ import annotations

import atexit
import socket
import subprocess
import sys
import time
from pathlib import Path

from .env import in_colab

DEMO = Path(__file__).resolve().parents[1] / "demo"
_servers: dict[int, subprocess.Popen] = {}


def _open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def start_app(name: str, port: int = 8501, timeout_s: float = 120) -> str:
    """Run demo/<name>.py with Streamlit on ``port`` (once per port) and wait until it answers; its URL."""
    script = DEMO / f"{name}.py"
    if not script.exists():
        raise FileNotFoundError(f"нет приложения {script}")
    if port not in _servers or _servers[port].poll() is not None:
        if _open(port):
            raise RuntimeError(f"порт {port} уже занят другим процессом: укажите другой, например port={port + 1}")
        _servers[port] = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
             "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=DEMO.parent, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while not _open(port):
        if _servers[port].poll() is not None:
            raise RuntimeError(f"приложение {name} завершилось с кодом {_servers[port].returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"приложение {name} не ответило за {timeout_s:.0f} с")
        time.sleep(0.3)
    return f"http://localhost:{port}"


def show_app(name: str, port: int = 8501, height: int = 800) -> str:
    """Start demo/<name>.py (see ``start_app``) and show it below the cell; returns its local URL."""
    url = start_app(name, port)
    if in_colab():
        from google.colab import output

        output.serve_kernel_port_as_iframe(port, height=height)
    else:
        from IPython.display import IFrame, display

        print(f"Приложение запущено: {url} (можно открыть и в отдельной вкладке браузера)")
        display(IFrame(url, width="100%", height=height))
    return url


def stop_apps() -> None:
    """Stop every app this kernel started."""
    for server in _servers.values():
        server.terminate()
    for server in _servers.values():
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    _servers.clear()


atexit.register(stop_apps)
