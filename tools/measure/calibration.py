"""A fixed workload that stands for the chapters' computing: the unit of machine-independent budgets.

    python -m tools.measure.calibration     prints the workload's time on this machine

The chapters spend their fast-mode time in small convolutional and fully
connected networks trained with Adam on 28x28 images. The workload does the
same for a fixed number of steps: a convolutional autoencoder (convolutions,
a strided and a transposed convolution) and an MLP, forward, backward and
optimiser step. A notebook's cost is its run time divided by this workload's
time measured in the same test run, on the same threads, so that a slower or
busier machine raises both and the ratio stays put. The median of three
timings is taken so that one burst of other load does not decide it.

`calibrate()` times the workload in a fresh Python process, as a notebook's
kernel is one: in a process that has already computed for a while (a test
session) the same workload runs about a third faster (1.4 s against 0.9 s on
the reference machine), which would inflate every cost measured there.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

CONV_STEPS = 12
MLP_STEPS = 60


def _train(model: nn.Module, batch: torch.Tensor, steps: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = torch.zeros(())
    for _ in range(steps):
        loss = F.mse_loss(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def workload() -> float:
    """One pass of the fixed workload; returns its last loss (so that nothing is optimised away)."""
    torch.manual_seed(0)
    conv = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 1, 3, padding=1),
    )
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                        nn.Linear(256, 784), nn.Unflatten(1, (1, 28, 28)))
    images = torch.rand(128, 1, 28, 28)
    return _train(conv, images[:64], CONV_STEPS) + _train(mlp, images, MLP_STEPS)


def calibrate(repeats: int = 3) -> float:
    """Median wall time of ``repeats`` passes of the workload in a fresh process, in seconds."""
    done = subprocess.run([sys.executable, "-m", "tools.measure.calibration", "--repeats", str(repeats), "--json"],
                          capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def calibrated(run):
    """``run()``'s result and the calibration time around it: the mean of a timing just before and one just
    after, since the machine's load drifts during a run of a minute or more."""
    before = calibrate()
    result = run()
    return result, (before + calibrate()) / 2


def calibrate_here(repeats: int = 3) -> float:
    """Median wall time of ``repeats`` passes of the workload in this process, in seconds."""
    workload()  # warm-up: first calls allocate and pick kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        workload()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON line (what calibrate() reads)")
    args = parser.parse_args()
    seconds = calibrate_here(args.repeats)
    threads = torch.get_num_threads()
    print(json.dumps({"seconds": seconds, "threads": threads}) if args.json else
          f"calibration workload: {seconds:.3f} s on {threads} threads")
