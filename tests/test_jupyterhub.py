"""The example JupyterHub (jupyterhub/jupyterhub_config.py) started for real on loopback.

An instructor account releases the `mini` assignment with `make release-assignment`;
the hub runs as root with the shipped configuration, only the authenticator
swapped for JupyterHub's test one (a shared password). A student logs in through
the login form, the hub spawns her single-user server as her own Unix user, and
nbgrader's assignment list on that server shows the released assignment; the
student's server has no formgrader and runs under the configured limits, the
instructor's has the formgrader and starts in the course folder.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from course import ROOT
from test_exchange import COURSE_ID, copy_course
from test_grader import ASSIGNMENT
from unix_accounts import CAN_CREATE_USERS, SKIP_REASON, Accounts, interpreter_reachable

pytestmark = [pytest.mark.grader, pytest.mark.accounts,
              pytest.mark.skipif(not CAN_CREATE_USERS, reason=SKIP_REASON)]

TEACHER, STUDENT = "dlc_hubteacher", "dlc_hubstudent"
PASSWORD = "пароль-для-теста"
PROXY_CACHE = ROOT / ".cache" / "npm"


def _proxy() -> str | None:
    """configurable-http-proxy: on PATH, or installed once from npm into .cache/npm (gitignored)."""
    found = shutil.which("configurable-http-proxy") or (PROXY_CACHE / "node_modules" / ".bin" /
                                                        "configurable-http-proxy")
    if Path(found).exists():
        return str(found)
    if shutil.which("npm") is None:
        return None
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PROXY_CACHE),
                    "configurable-http-proxy@4"], check=True, capture_output=True, timeout=600)
    return str(PROXY_CACHE / "node_modules" / ".bin" / "configurable-http-proxy")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _login(url: str, user: str):
    """A browser-like session: the login form, then the hub's redirects until the server answers."""
    import requests

    session = requests.Session()
    session.get(f"{url}/hub/login", timeout=30)
    reply = session.post(f"{url}/hub/login", timeout=120,
                         data={"username": user, "password": PASSWORD, "_xsrf": session.cookies.get("_xsrf")})
    assert reply.status_code == 200, (reply.status_code, reply.text[:500])
    deadline = time.time() + 150
    while time.time() < deadline:  # spawn-pending until the server runs, then the OAuth round to JupyterLab
        page = session.get(f"{url}/user/{user}/lab", timeout=30)
        if page.status_code == 200 and urlparse(page.url).path.startswith(f"/user/{user}/lab"):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"{user}'s server did not open: {page.status_code} {page.url} {page.text[:300]}")
    # Like JupyterLab, send the server's XSRF cookie back with every request it answers with cookie auth.
    xsrf = [c.value for c in session.cookies if c.name == "_xsrf" and c.path.startswith(f"/user/{user}")]
    session.headers["X-XSRFToken"] = (xsrf or [session.cookies.get("_xsrf", "")])[0]
    status = session.get(f"{url}/user/{user}/api/status", timeout=30)
    assert status.status_code == 200, (status.status_code, status.text[:300])
    return session


def _server_pid(uid: int) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid and b"jupyterhub-singleuser" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    raise AssertionError("no single-user server process")


@pytest.fixture(scope="module")
def hub():
    proxy = _proxy()
    if proxy is None:
        pytest.skip("configurable-http-proxy is not installed and npm is missing")
    base = Path(tempfile.mkdtemp(prefix="course-hub-"))
    base.chmod(0o755)
    exchange = base / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)
    (base / "home").mkdir()
    (base / "home").chmod(0o755)
    accounts = Accounts(base / "home", str(Path(sys.prefix) / "bin"))
    hub_process = None
    try:
        with interpreter_reachable([ROOT]):
            for name in (TEACHER, STUDENT):
                accounts.add(name)
            course = accounts.home(TEACHER) / "course"
            copy_course(course)
            for path in [course, *course.rglob("*")]:
                shutil.chown(path, TEACHER)
            accounts.run(TEACHER, f"make VENV={sys.prefix} EXCHANGE={exchange} release-assignment "
                                  f"ASSIGNMENT={ASSIGNMENT}", cwd=course)
            port = _free_port()
            (base / "hub").mkdir()
            config = base / "hub" / "test_config.py"
            config.write_text(
                "c = get_config()  # noqa\n"
                f"load_subconfig({str(ROOT / 'jupyterhub' / 'jupyterhub_config.py')!r})  # noqa\n"
                "c.JupyterHub.authenticator_class = 'dummy'\n"
                f"c.DummyAuthenticator.password = {PASSWORD!r}\n"
                f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{_free_port()}'\n"
                f"c.ConfigurableHTTPProxy.command = [{proxy!r}]\n"
                f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{_free_port()}'\n",
                encoding="utf-8")
            env = {"PATH": f"{Path(sys.prefix) / 'bin'}:{Path(proxy).parent}:/usr/local/bin:/usr/bin:/bin",
                   "HOME": str(base / "hub"), "LANG": "C.UTF-8", "HUB_BIND_URL": f"http://127.0.0.1:{port}",
                   "COURSE_DIR": str(course), "NBGRADER_EXCHANGE": str(exchange), "COURSE_INSTRUCTORS": TEACHER,
                   "COURSE_MEM_LIMIT_GB": "3"}
            log = (base / "hub" / "hub.log").open("w")
            hub_process = subprocess.Popen([str(Path(sys.prefix) / "bin" / "jupyterhub"), "-f", str(config)],
                                           cwd=base / "hub", env=env, stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            _wait_for(f"{url}/hub/api", hub_process, base / "hub" / "hub.log")
            student = _login(url, STUDENT)
            listed = student.get(f"{url}/user/{STUDENT}/assignments", params={"course_id": COURSE_ID}, timeout=60)
            limits = Path(f"/proc/{_server_pid(accounts.uid(STUDENT))}/limits").read_text()
            student_formgrader = student.get(f"{url}/user/{STUDENT}/formgrader", timeout=60).status_code
            teacher = _login(url, TEACHER)
            teacher_formgrader = teacher.get(f"{url}/user/{TEACHER}/formgrader", timeout=60)
            teacher_root = teacher.get(f"{url}/user/{TEACHER}/api/contents", timeout=60).json()
            yield {"listed": listed, "limits": limits, "student_formgrader": student_formgrader,
                   "teacher_formgrader": teacher_formgrader, "teacher_root": teacher_root}
    finally:
        if hub_process is not None:
            hub_process.terminate()
            try:
                hub_process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                hub_process.kill()
        accounts.remove_all()
        shutil.rmtree(base, ignore_errors=True)


def _wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    import requests

    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"jupyterhub exited: {log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"jupyterhub did not start: {log.read_text()[-3000:]}")


def test_the_student_sees_the_released_assignment(hub):
    assert hub["listed"].status_code == 200, hub["listed"].text[:500]
    reply = hub["listed"].json()
    assert reply["success"], reply
    released = [(a["course_id"], a["assignment_id"], a["status"]) for a in reply["value"]]
    assert (COURSE_ID, ASSIGNMENT, "released") in released, released


def test_the_student_has_no_formgrader(hub):
    assert hub["student_formgrader"] == 404


def test_the_students_server_runs_under_the_limits(hub):
    data = next(line for line in hub["limits"].splitlines() if line.startswith("Max data size"))
    assert data.split()[3] == str(3 * 2**30), data
    processes = next(line for line in hub["limits"].splitlines() if line.startswith("Max processes"))
    assert processes.split()[2] == "512", processes


def test_the_instructor_gets_the_formgrader_in_the_course_folder(hub):
    assert hub["teacher_formgrader"].status_code == 200, hub["teacher_formgrader"].text[:300]
    names = {item["name"] for item in hub["teacher_root"]["content"]}
    assert {"nbgrader_config.py", "modules", "solutions"} <= names, names
