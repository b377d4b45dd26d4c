"""Device choice, reproducibility and the fast/full mode switch.

Every chapter's setup cell calls these, so a notebook behaves the same on a
laptop CPU, on Colab's GPU and inside the nbgrader autograder.
"""

from __future__ import annotations

import os
import platform
import random
import re
import socket
import sys

import numpy as np
import torch

_TRUE = {"1", "true", "yes", "on"}


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def is_autograding() -> bool:
    """True while nbgrader executes the notebook (autograde or validate)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def is_fast_mode() -> bool:
    """True when notebooks should train briefly on small subsets.

    On when ``COURSE_FAST`` is set to 1/true/yes/on, and always while nbgrader
    autogrades, so grading never trains for long.
    """
    if is_autograding():
        return True
    return os.environ.get("COURSE_FAST", "").strip().lower() in _TRUE


def set_fast_mode(fast: bool | None) -> None:
    """The notebook's one-line switch (``FAST_MODE`` in the setup cell): True fast, False full, None as
    ``COURSE_FAST`` says. Autograding stays fast whatever is chosen here."""
    if fast is not None:
        os.environ["COURSE_FAST"] = "1" if fast else "0"


def by_mode(fast, full):
    """Return ``fast`` in fast mode and ``full`` otherwise (hyperparameter tables)."""
    return fast if is_fast_mode() else full


def get_device(prefer: str | None = None) -> torch.device:
    """Pick CUDA, then Apple MPS, then CPU; ``prefer`` forces one by name."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_device(model) -> torch.device:
    """Device of a model's first parameter or buffer; CPU for a plain function or a model without any.

    Samplers create their starting noise with it, so that they work for a
    network on a GPU as for a test double written as a lambda.
    """
    if isinstance(model, torch.nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            return tensor.device
    return torch.device("cpu")


def seed_everything(seed: int = 42, deterministic: bool = True) -> int:
    """Seed python, numpy and torch (all devices); optionally ask for determinism.

    Determinism uses ``warn_only`` so that an op without a deterministic kernel
    warns instead of failing a student's run.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether ``host`` accepts a connection on port 443: the optional pretrained-model sections run only then."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def describe_environment(device: torch.device | None = None) -> str:
    """One short block of text: versions, device, threads and mode."""
    device = device or get_device()
    lines = [
        f"Python      {platform.python_version()}",
        f"PyTorch     {torch.__version__}",
        f"Устройство  {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        f"Потоки CPU  {torch.get_num_threads()}",
        "Режим       "
        + ("быстрый (COURSE_FAST=1 или автопроверка)" if is_fast_mode() else "полный"),
    ]
    if in_colab():
        lines.append("Среда       Google Colab")
    return "\n".join(lines)


def machine_words(machine: str) -> str:
    """A record's machine ("CPU, 2 threads (x86_64)", a GPU's name) in the students' language.

    Records are written for maintainers, in English; notebooks print them to students.
    """
    found = re.fullmatch(r"CPU, (\d+) threads? \((.*)\)", machine)
    if not found:
        return machine  # a GPU's own name ("NVIDIA H100 80GB HBM3") stays as it is
    n = int(found.group(1))
    word = "поток" if n % 10 == 1 and n % 100 != 11 else (
        "потока" if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14) else "потоков")
    return f"CPU, {n} {word} ({found.group(2)})"
