"""The hub's shared nbgrader settings (jupyterhub/nbgrader_config.py)."""

from pathlib import Path

c = get_config()  # noqa: F821  (injected by traitlets)
load_subconfig(str(Path(__file__).resolve().parents[1] / "nbgrader_config.py"))  # noqa: F821
