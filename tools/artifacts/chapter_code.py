"""Load the definitions of a chapter's reference solution for repository scripts.

Scripts that train a chapter's shipped checkpoint (tools/artifacts/ddpm.py) must
use exactly the code the chapter teaches, not a second copy of it that could
drift. The chapter's jupytext source is the one place that code lives; this
module executes its imports, functions and classes -- never its experiments
or test cells -- in a fresh namespace.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import jupytext

from tools.course import ROOT

if TYPE_CHECKING:
    import torch

PREAMBLE = """
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import utils
"""
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)


def _is_test_cell(cell) -> bool:
    return "### BEGIN HIDDEN TESTS" in cell.source or "Видимые тесты пройдены" in cell.source


def _kept(node, names: tuple[str, ...], constants: bool = False) -> bool:
    if isinstance(node, DEFINITIONS):
        return True
    if not isinstance(node, ast.Assign):
        return False
    targets = [n for t in node.targets for n in (t.elts if isinstance(t, ast.Tuple) else [t])]
    return any(isinstance(t, ast.Name) and (t.id in names or (constants and t.id.isupper())) for t in targets)


def definitions(chapter: str, root: Path = ROOT, names: tuple[str, ...] = (), constants: bool = False) -> list:
    """Compiled code of every top-level import, function and class of ``chapter``'s solution source (and the
    assignments to ``names``), in notebook order, as ``(code, required)`` pairs. With ``constants``, assignments
    to UPPER_CASE names come too, each as its own optional piece (one may need data that only an experiment
    cell makes: whoever runs them skips those that fail)."""
    notebook = jupytext.read(root / "solutions" / chapter / f"{chapter}.py")
    code = [(compile(PREAMBLE, "<preamble>", "exec"), True)]
    for cell in notebook.cells:
        if cell.cell_type != "code" or "{{" in cell.source or _is_test_cell(cell):
            continue
        for node in ast.parse(cell.source).body:
            if _kept(node, names):
                code.append((compile(ast.Module(body=[node], type_ignores=[]), f"<{chapter}>", "exec"), True))
            elif _kept(node, (), constants):
                code.append((compile(ast.Module(body=[node], type_ignores=[]), f"<{chapter}>", "exec"), False))
    return code


def load_chapter(chapter: str, root: Path = ROOT, names: tuple[str, ...] = (), context: dict | None = None) -> dict:
    """Namespace with every top-level import, function and class of ``chapter``'s solution source.

    ``names``: top-level assignments to run as well (a chapter's ``CFG``, whose values its functions use as
    defaults); ``context``: globals the chapter's setup cell would have made (``device``, ``FAST``), set first.
    """
    namespace: dict = {"__name__": f"chapter_{chapter}", **(context or {})}
    for code, _ in definitions(chapter, root, names):
        exec(code, namespace)
    return namespace


def add_device_arguments(parser) -> None:
    """--device and --threads: the machine options every chapter trainer takes."""
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")


def device_of(args):
    """The torch device ``args`` name, with torch's thread count set first when --threads is given."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return torch.device(args.device)


def round_to_half(model: torch.nn.Module) -> dict:
    """The model's state with float tensors stored in float16 (half the file), loaded back into ``model`` so that
    everything measured and exported afterwards is what ships."""
    state = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    return state
