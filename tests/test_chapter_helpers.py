"""Helpers that chapters give students ready-made (not exercises): they must work for any sensible setting."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from tools.chapter_code import load_chapter


class _TinyDenoiser(nn.Module):
    """Ignores t; just enough of a network for train_diffusion to take optimiser steps."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x, t):
        return self.conv(x)


@pytest.fixture(scope="module")
def ddpm():
    return load_chapter("05_ddpm")


@pytest.mark.parametrize("steps", [1, 2, 19, 20, 21, 40])
def test_train_diffusion_runs_for_short_runs(ddpm, steps):
    """steps=20 used to crash in OneCycleLR (its 5% warm-up ended at step 0: ZeroDivisionError)."""
    schedule = ddpm["NoiseSchedule"](ddpm["linear_beta_schedule"](50))
    model = _TinyDenoiser()
    before = model.conv.weight.detach().clone()
    images = torch.rand(16, 1, 8, 8) * 2 - 1
    ema, losses = ddpm["train_diffusion"](model, images, schedule, steps=steps, batch_size=4)
    assert len(losses) == steps and all(torch.isfinite(torch.tensor(losses)))
    assert not torch.equal(model.conv.weight, before), "the optimiser took no step"
    assert ema.conv.weight.shape == before.shape and not ema.training
