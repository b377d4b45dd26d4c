"""Chapter 05: each exercise's tests reject the plausible mistakes and accept other correct code;
the helpers the chapter gives students ready-made work for any sensible setting."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from exercise_checks import exercise_tests, variants

from tools.artifacts.chapter_code import load_chapter

CHAPTER = "05_ddpm"

SCHEDULES = """
import math


def linear_beta_schedule(timesteps, beta_start=1e-4, beta_end=0.02):
    return {linear}


def cosine_beta_schedule(timesteps, s=0.008):
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = {f}
    abar = f / f[0]
    betas = 1 - abar[1:] / abar[:-1]
    return {cos_ret}


class NoiseSchedule:
    def __init__(self, betas):
        self.betas = betas.float()
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = {abar}
        self.alphas_cumprod_prev = {abar_prev}
        self.posterior_variance = {post}

    def q_sample(self, x0, t, noise):
        a = {coef}
        return {q}
"""
GOOD_SCHEDULES = dict(
    linear="torch.linspace(beta_start, beta_end, timesteps)",
    f="torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2",
    cos_ret="betas.clamp(max=0.999).float()",
    abar="torch.cumprod(self.alphas, 0)",
    abar_prev="torch.cat([torch.ones(1), self.alphas_cumprod[:-1]])",
    post="self.betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)",
    coef="self.alphas_cumprod.to(x0.device)[t].view(-1, *([1] * (x0.dim() - 1)))",
    q="a.sqrt() * x0 + (1 - a).sqrt() * noise",
)
schedules = variants(SCHEDULES, GOOD_SCHEDULES)


EMBEDDING = """
import math


def sinusoidal_embedding(t, dim):
    half = dim // 2
    freqs = {freqs}
    args = t.float()[:, None] * freqs[None]
    return {out}
"""
GOOD_EMBEDDING = dict(freqs="torch.exp(-math.log(10000) * torch.arange(half) / half)",
                      out="torch.cat([torch.sin(args), torch.cos(args)], dim=-1)")
embedding = variants(EMBEDDING, GOOD_EMBEDDING)


UNET = EMBEDDING.format(**GOOD_EMBEDDING) + """

class ResidualBlock(nn.Module):
    def __init__(self, cin, cout, time_dim):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, cout)
        self.norm2, self.conv2 = nn.GroupNorm(8, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.use_time = True

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.use_time:
            h = h + {time_term}
        return self.conv2(F.silu(self.norm2(h))) + self.skip(x)


class UNet(nn.Module):
    def __init__(self, in_channels=1, base_channels=32, time_dim=128):
        super().__init__()
        c = base_channels * {width}
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, 4 * time_dim), nn.SiLU(), nn.Linear(4 * time_dim, time_dim))
        self.inc = nn.Conv2d(in_channels, c, 3, padding=1)
        self.down1, self.ds1 = ResidualBlock(c, c, time_dim), nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.down2, self.ds2 = ResidualBlock(c, 2 * c, time_dim), nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1)
        self.mid = ResidualBlock(2 * c, 2 * c, time_dim)
        self.us2 = nn.ConvTranspose2d(2 * c, 2 * c, 4, stride=2, padding=1)
        self.up2 = ResidualBlock({skip_mult} * 2 * c, 2 * c, time_dim)
        self.us1 = nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1)
        self.up1 = ResidualBlock({skip_mult} * c, c, time_dim)
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, in_channels, 3, padding=1))
        for block in {untimed}:
            block.use_time = False

    def join(self, h, skip):
        return {join}

    def forward(self, x, t):
        temb = self.time_mlp(sinusoidal_embedding(t, self.time_dim))
        h1 = self.down1(self.inc(x), temb)
        h2 = self.down2(self.ds1(h1), temb)
        h = self.mid(self.ds2(h2), temb)
        h = self.up2(self.join({up2}, h2), temb)
        h = self.up1(self.join(self.us1(h), h1), temb)
        return self.out(h)
"""
GOOD_UNET = dict(time_term="self.time_proj(F.silu(temb))[:, :, None, None]", width="1", skip_mult="2",
                 join="torch.cat([h, skip], dim=1)", untimed="[]", up2="self.us2(h)")
unet = variants(UNET, GOOD_UNET)


LOSS = """
def diffusion_loss(model, x0, t, noise, schedule):
    {body}
"""

SAMPLING = """
import math


@torch.no_grad()
def p_sample(model, x_t, t, schedule):
    eps = model(x_t, torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device))
    beta, alpha, abar = float(schedule.betas[t]), float(schedule.alphas[t]), float(schedule.alphas_cumprod[t])
    mean = {mean}
    {last}
    return mean + math.sqrt({var}) * torch.randn_like(x_t)


@torch.no_grad()
def sample(model, shape, schedule):
    x = torch.randn(shape, device=utils.model_device(model))
    for t in {order}:
        x = p_sample(model, x, t, schedule)
    return {ret}
"""
GOOD_SAMPLING = dict(mean="(x_t - beta / math.sqrt(1 - abar) * eps) / math.sqrt(alpha)",
                     last="if t == 0:\n        return mean", var="float(schedule.posterior_variance[t])",
                     order="reversed(range(len(schedule.betas)))", ret="x")
sampling = variants(SAMPLING, GOOD_SAMPLING)


DDIM = """
import math


@torch.no_grad()
def ddim_sample(model, shape, schedule, num_steps=50, eta=0.0):
    T = len(schedule.betas)
    steps = {steps}
    x = torch.randn(shape, device=utils.model_device(model))
    for i in reversed(range(len(steps))):
        t = steps[i]
        abar = float({table}[t])
        abar_prev = float({table}[steps[i - 1]]) if i > 0 else {final}
        eps = model(x, torch.full((shape[0],), t, dtype=torch.long))
        x0_hat = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
        sigma = {sigma}
        x = math.sqrt(abar_prev) * x0_hat + math.sqrt(max(1 - abar_prev - sigma ** 2, 0.0)) * eps
        x = x + sigma * torch.randn_like(x)
    return x
"""
GOOD_DDIM = dict(steps="torch.linspace(0, T - 1, num_steps).round().long().tolist()",
                 table="schedule.alphas_cumprod", final="1.0",
                 sigma="eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))")
ddim = variants(DDIM, GOOD_DDIM)


EXERCISES = {
    "schedules_tests": {
        "correct": {
            "reference": schedules(),
            "float64 then float32": schedules(linear="torch.linspace(beta_start, beta_end, timesteps, "
                                                     "dtype=torch.float64).float()"),
            "cumprod through logs": schedules(abar="torch.exp(torch.cumsum(torch.log(self.alphas), 0))"),
            "prev by padding": schedules(abar_prev="F.pad(self.alphas_cumprod[:-1], (1, 0), value=1.0)"),
            "gather and reshape": schedules(coef="self.alphas_cumprod.gather(0, t).reshape(len(t), *[1] * (x0.dim() - 1))"),
        },
        "wrong": {
            "linear end excluded": schedules(linear="torch.linspace(beta_start, beta_end, timesteps + 1)[:-1]"),
            "linear ignores arguments": schedules(linear="torch.linspace(1e-4, 0.02, timesteps)"),
            "cosine not clipped": schedules(cos_ret="betas.float()"),
            "cosine clipped at 0.02": schedules(cos_ret="betas.clamp(max=0.02).float()"),
            "cosine without the square": schedules(f="torch.cos((steps + s) / (1 + s) * math.pi / 2)"),
            "cosine ignores s": schedules(f="torch.cos(steps / (1 + s) * math.pi / 2) ** 2"),
            "alphas used as alphas_cumprod": schedules(abar="self.alphas.clone()"),
            "cumprod of betas": schedules(abar="torch.cumprod(self.betas, 0)"),
            "prev not shifted": schedules(abar_prev="self.alphas_cumprod.clone()"),
            "prev padded with zero": schedules(abar_prev="torch.cat([torch.zeros(1), self.alphas_cumprod[:-1]])"),
            "posterior variance is beta": schedules(post="self.betas.clone()"),
            "posterior variance inverted": schedules(
                post="self.betas * (1 - self.alphas_cumprod) / (1 - self.alphas_cumprod_prev)"),
            "q_sample without square roots": schedules(q="a * x0 + (1 - a) * noise"),
            "q_sample noise weight without root": schedules(q="a.sqrt() * x0 + (1 - a) * noise"),
            "q_sample with alphas": schedules(coef="self.alphas[t].view(-1, *([1] * (x0.dim() - 1)))"),
            "q_sample for 4-d images only": schedules(coef="self.alphas_cumprod[t].view(-1, 1, 1, 1)"),
        },
    },
    "embedding_tests": {
        "correct": {
            "reference": embedding(),
            "powers of 10000": embedding(freqs="10000.0 ** (-torch.arange(half).float() / half)"),
        },
        "wrong": {
            "sin only": embedding(out="torch.cat([torch.sin(args), torch.sin(args)], dim=-1)"),
            "cos before sin": embedding(out="torch.cat([torch.cos(args), torch.sin(args)], dim=-1)"),
            "interleaved": embedding(out="torch.stack([torch.sin(args), torch.cos(args)], -1).flatten(1)"),
            "frequencies over dim": embedding(freqs="torch.exp(-math.log(10000) * torch.arange(half) / (2 * half + 1))"),
            "base 1000": embedding(freqs="torch.exp(-math.log(1000) * torch.arange(half) / half)"),
            "float64 output": embedding(out="torch.cat([torch.sin(args), torch.cos(args)], dim=-1).double()"),
        },
    },
    "unet_tests": {
        "correct": {
            "reference-like": unet(),
            "additive skips": unet(skip_mult="1", join="h + skip"),
        },
        "wrong": {
            "time ignored everywhere": unet(untimed="[self.down1, self.down2, self.mid, self.up2, self.up1]"),
            "time only in the bottleneck": unet(untimed="[self.down1, self.down2, self.up2, self.up1]"),
            "no skip connections": unet(skip_mult="1", join="h"),
            "too many parameters": unet(width="6"),
            "fixed 28x28 upsampling": unet(up2="F.interpolate(self.us2(h), size=(14, 14))"),
        },
    },
    "loss_tests": {
        "correct": {
            "reference": LOSS.format(body="return F.mse_loss(model(schedule.q_sample(x0, t, noise), t), noise)"),
            "by hand": LOSS.format(body="return ((noise - model(schedule.q_sample(x0, t, noise), t)) ** 2).mean()"),
        },
        "wrong": {
            "predicts x0": LOSS.format(body="return F.mse_loss(model(schedule.q_sample(x0, t, noise), t), x0)"),
            "model sees x0": LOSS.format(body="return F.mse_loss(model(x0, t), noise)"),
            "sum not mean": LOSS.format(body="return F.mse_loss(model(schedule.q_sample(x0, t, noise), t), noise, "
                                             "reduction='sum')"),
            "L1": LOSS.format(body="return F.l1_loss(model(schedule.q_sample(x0, t, noise), t), noise)"),
            "fresh noise": LOSS.format(body="return F.mse_loss(model(schedule.q_sample(x0, t, torch.randn_like(x0)), t), "
                                            "noise)"),
            "detached": LOSS.format(body="return F.mse_loss(model(schedule.q_sample(x0, t, noise), t).detach(), noise)"),
        },
    },
    "sampling_tests": {
        "correct": {
            "reference": sampling(),
            "through x0_hat and the posterior mean": sampling(mean=(
                "(math.sqrt(float(schedule.alphas_cumprod_prev[t])) * beta / (1 - abar)) * "
                "((x_t - math.sqrt(1 - abar) * eps) / math.sqrt(abar)) + "
                "(math.sqrt(alpha) * (1 - float(schedule.alphas_cumprod_prev[t])) / (1 - abar)) * x_t")),
        },
        "wrong": {
            "noise added at t = 0": sampling(last="pass"),
            "beta instead of posterior variance": sampling(var="beta"),
            "missing square root in the noise coefficient": sampling(
                mean="(x_t - beta / (1 - abar) * eps) / math.sqrt(alpha)"),
            "divides by sqrt(abar)": sampling(mean="(x_t - beta / math.sqrt(1 - abar) * eps) / math.sqrt(abar)"),
            "variance without square root": sampling(var="float(schedule.posterior_variance[t]) ** 2"),
            "steps in increasing order": sampling(order="range(len(schedule.betas))"),
            "one step too few": sampling(order="reversed(range(1, len(schedule.betas)))"),
        },
    },
    "ddim_tests": {
        "correct": {
            "reference": ddim(),
            "floor-spaced subsequence": ddim(steps="[i * T // num_steps for i in range(num_steps)]"),
        },
        "wrong": {
            "alphas instead of alphas_cumprod": ddim(table="schedule.alphas"),
            "noise even at eta = 0": ddim(sigma="math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))"),
            "stops at step 0 instead of x0": ddim(final="float(schedule.alphas_cumprod[0])"),
            "one extra step": ddim(steps="torch.linspace(0, T - 1, num_steps + 1).round().long().tolist()"),
            "uneven steps": ddim(steps="sorted({0, *torch.logspace(0, math.log10(T - 1), num_steps - 1).long().tolist()})"),
            "ignores eta": ddim(sigma="0.0"),
            "range subsequence, one step too many": ddim(steps="list(range(0, T, T // num_steps))"),
        },
    },
}

# The visible tests of the later exercises build their schedule with the student's NoiseSchedule.
for _test_id in ("loss_tests", "sampling_tests", "ddim_tests"):
    for _kind in ("correct", "wrong"):
        EXERCISES[_test_id][_kind] = {name: schedules() + src for name, src in EXERCISES[_test_id][_kind].items()}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(CHAPTER, EXERCISES)


class _TinyDenoiser(nn.Module):
    """Ignores t; just enough of a network for train_diffusion to take optimiser steps."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x, t):
        return self.conv(x)


@pytest.fixture(scope="module")
def ddpm():
    return load_chapter(CHAPTER)


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
