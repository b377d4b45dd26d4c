"""What a notebook needs on Google Colab beyond what Colab preinstalls, installed by the setup cell.

On Colab a student has only the notebook: its setup cell clones the course and calls
``install_missing(chapter)``. Colab preinstalls most of the course's packages (its published list, with its
date, is recorded in ``colab_packages.json``); ``INSTALL_ON_COLAB`` names the others and the chapters that use
them. Each is installed quietly and only when its module cannot be imported, so a second run of the setup
cell, or a runtime that already has it, costs nothing.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

# module to import -> (pip requirement, chapters that use it); from pyproject.toml's dependencies, where Colab's
# recorded version is missing or too old (tests/test_colab.py keeps the three in step)
INSTALL_ON_COLAB = {"streamlit": ("streamlit>=1.30", ("08_clip", "12_text_to_image"))}


def importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing(chapter: str, present=importable) -> list[str]:
    """The pip requirements ``chapter`` needs whose module ``present`` says cannot be imported."""
    return [requirement for module, (requirement, chapters) in INSTALL_ON_COLAB.items()
            if chapter in chapters and not present(module)]


def install_missing(chapter: str, present=importable, run=subprocess.run) -> list[str]:
    """Install, quietly, what ``chapter`` needs and this runtime lacks; say so in one Russian line when there is
    anything to install. ``present`` and ``run`` are the checks' stand-ins for a package list and for pip."""
    needed = missing(chapter, present)
    if needed:
        print(f"Colab: устанавливаю {', '.join(needed)} (один раз за сеанс)…")
        run([sys.executable, "-m", "pip", "install", "--quiet", *needed], check=True)
    return needed
