"""Throw-away Unix accounts for the tests that need real separate users (the nbgrader exchange, JupyterHub).

Creating users needs root (CI runs as root); the tests that use this module skip otherwise.
The course's Python may live under a private folder (pyenv in /root): while the
accounts exist, every ancestor of the interpreter gets the search bit for
others, and the original modes are put back afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

CAN_CREATE_USERS = hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("useradd") is not None
SKIP_REASON = "creating Unix users needs root and useradd"


def _ancestors_without_search_bit(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        for folder in [path.resolve(), *path.resolve().parents]:
            if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH and folder not in found:
                found.append(folder)
    return found


@contextmanager
def interpreter_reachable(extra: list[Path] = ()):
    """Let other users run this environment's Python (and reach ``extra`` folders) for the block's duration."""
    targets = [Path(sys.executable), Path(sys.base_prefix), Path(sys.prefix), *extra]
    changed = {folder: folder.stat().st_mode for folder in _ancestors_without_search_bit(targets)}
    try:
        for folder, mode in changed.items():
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(stat.S_IMODE(mode))


class Accounts:
    """Users created under ``home_root``; ``run`` executes a shell command as one of them with a clean env."""

    def __init__(self, home_root: Path, path_prefix: str):
        self.home_root = home_root
        self.path_prefix = path_prefix
        self.names: list[str] = []

    def add(self, name: str) -> Path:
        remove_user(name)  # a leftover of an interrupted run
        home = self.home_root / name
        subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash",
                        "--no-user-group", "--gid", "users", name], check=True, capture_output=True)
        self.names.append(name)
        return home

    def uid(self, name: str) -> int:
        return pwd.getpwnam(name).pw_uid

    def home(self, name: str) -> Path:
        return Path(pwd.getpwnam(name).pw_dir)

    def run(self, name: str, command: str, cwd: Path | None = None, check: bool = True, timeout: int = 600,
            env: dict | None = None) -> subprocess.CompletedProcess:
        home = self.home(name)
        clean = {"HOME": str(home), "USER": name, "LOGNAME": name, "LANG": "C.UTF-8", "TZ": "UTC",
                 "PATH": f"{self.path_prefix}:/usr/local/bin:/usr/bin:/bin", **(env or {})}
        done = subprocess.run(
            ["runuser", "-u", name, "--", "env", "-i", *[f"{k}={v}" for k, v in clean.items()],
             "bash", "-c", command],
            cwd=cwd or home, capture_output=True, text=True, timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"as {name}: {command}\nexit {done.returncode}\n{done.stdout[-3000:]}\n"
                                 f"{done.stderr[-3000:]}")
        return done

    def remove_all(self) -> None:
        for name in self.names:
            remove_user(name)


def remove_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
    subprocess.run(["userdel", "--remove", name], capture_output=True)
