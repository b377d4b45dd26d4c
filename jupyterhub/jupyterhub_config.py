"""An example JupyterHub for the course: students and instructors on one machine, nbgrader's exchange between them.

    sudo COURSE_INSTRUCTORS=teacher COURSE_DIR=/srv/nbgrader/dl-course-ru \
         .venv/bin/jupyterhub -f jupyterhub/jupyterhub_config.py

What it sets up (docs/grading.md, "A JupyterHub for the course", has the steps):
- Local Unix accounts log in with their passwords (PAM); each gets a JupyterLab
  server running as that user (LocalProcessSpawner; the hub runs as root).
- Instructors (COURSE_INSTRUCTORS, comma-separated; they are also hub admins)
  start in the course folder COURSE_DIR (the clone that holds modules/ and the
  gradebook) with nbgrader's formgrader; students start in their home folder with
  the Assignments tab only (jupyterhub/student/: formgrader and course list off).
- Everyone shares the course id and the exchange folder NBGRADER_EXCHANGE
  (jupyterhub/nbgrader_config.py).
- Per-user limits: each server runs under prlimit with a data-size limit
  (COURSE_MEM_LIMIT_GB, default 4) and a process limit (COURSE_NPROC, default
  512); at most COURSE_ACTIVE_SERVERS servers run at once (default 60). These
  are enforced on any Linux without cgroups; for CPU shares use a spawner that
  owns cgroups (jupyterhub-systemdspawner: mem_limit, cpu_limit).
"""

import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821  (injected by traitlets)
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the course environment: jupyterhub-singleuser, nbgrader, torch

COURSE_DIR = os.environ.get("COURSE_DIR", "/srv/nbgrader/dl-course-ru")
EXCHANGE = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")
INSTRUCTORS = {name for name in os.environ.get("COURSE_INSTRUCTORS", "").split(",") if name}
MEM_LIMIT_GB = float(os.environ.get("COURSE_MEM_LIMIT_GB", "4"))
NPROC = int(os.environ.get("COURSE_NPROC", "512"))

c.JupyterHub.bind_url = os.environ.get("HUB_BIND_URL", "http://127.0.0.1:8000")
c.JupyterHub.active_server_limit = int(os.environ.get("COURSE_ACTIVE_SERVERS", "60"))
c.Authenticator.admin_users = INSTRUCTORS
c.Authenticator.allow_all = True  # every local account; use allowed_users or PAM groups to narrow it
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
# The data-size limit bounds what a runaway notebook allocates (an address-space limit would break PyTorch).
prlimit = shutil.which("prlimit")
singleuser = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.cmd = ([prlimit, f"--data={int(MEM_LIMIT_GB * 2**30)}", f"--nproc={NPROC}", "--"] if prlimit else []) + \
    singleuser
c.Spawner.environment = {
    "NBGRADER_EXCHANGE": EXCHANGE,
    # Set COURSE_FAST=1 on a shared CPU server: full-mode chapters take tens of minutes each.
    **({"COURSE_FAST": os.environ["COURSE_FAST"]} if "COURSE_FAST" in os.environ else {}),
}


def course_role(spawner) -> None:
    """Instructors get the course folder and the formgrader; students their home and the Assignments tab."""
    instructor = spawner.user.name in INSTRUCTORS
    spawner.environment["JUPYTER_CONFIG_PATH"] = str(HERE / ("instructor" if instructor else "student"))
    spawner.environment["PATH"] = f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    if instructor:
        spawner.notebook_dir = COURSE_DIR


c.Spawner.pre_spawn_hook = course_role
