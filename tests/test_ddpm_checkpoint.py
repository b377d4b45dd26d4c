"""The diffusion checkpoint shipped with chapter 05: present, small, loadable both ways, meets its targets."""

from __future__ import annotations

import json

import pytest
import torch
from course import ROOT

import utils
from tools.chapter_code import load_chapter
from tools.train_ddpm import ddim_split_sample, load_shipped, round_to_storage, storage_state

WEIGHTS, PROGRAM = "checkpoints/ddpm_mnist.pt", "checkpoints/ddpm_mnist.pt2"
CHECKSUMS = json.loads((ROOT / "utils" / "checksums.json").read_text())


@pytest.fixture(scope="module")
def chapter():
    return load_chapter("05_ddpm")


@pytest.fixture(scope="module")
def checkpoint():
    return torch.load(utils.datasets.subset_file(WEIGHTS), map_location="cpu", weights_only=True)


def test_both_files_are_registered_and_together_under_10_mb():
    sizes = [(ROOT / "data" / rel).stat().st_size for rel in (WEIGHTS, PROGRAM)]
    assert all(CHECKSUMS[rel]["bytes"] == size for rel, size in zip((WEIGHTS, PROGRAM), sizes, strict=True))
    assert sum(sizes) <= 10 * 2**20


def test_weights_fit_the_chapter_unet_and_the_program_computes_the_same(chapter):
    # load_shipped builds the chapter's UNet at the recorded width and loads strictly: every layer
    # named as in the chapter's table.
    net, _, _ = load_shipped(chapter)
    program = torch.export.load(utils.datasets.subset_file(PROGRAM)).module()
    torch.manual_seed(0)
    x, t = torch.randn(5, 1, 28, 28), torch.tensor([0, 10, 250, 700, 999])
    with torch.no_grad():
        utils.assert_close(program(x, t), net.eval()(x, t), "torch.export program vs state dict", atol=1e-4)


def test_float16_storage_round_trips_into_a_float32_unet(chapter, tmp_path):
    """With --half-weights the file holds float16 tensors; loaded into the chapter's float32 UNet they
    compute exactly what the rounded network that was evaluated and exported computes."""
    torch.manual_seed(0)
    net = chapter["UNet"](base_channels=8, time_dim=32).eval()
    rounded = round_to_storage(net, torch.float16)
    assert all(p.dtype == torch.float32 for p in rounded.parameters())
    torch.save({"state_dict": storage_state(rounded, torch.float16)}, tmp_path / "w.pt")
    stored = torch.load(tmp_path / "w.pt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    fresh = chapter["UNet"](base_channels=8, time_dim=32).eval()
    fresh.load_state_dict(stored)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([5, 900])
    with torch.no_grad():
        assert torch.equal(fresh(x, t), rounded(x, t))


def test_training_record_says_how_it_was_trained(checkpoint):
    info = checkpoint["info"]
    assert info["timesteps"] == 1000 and info["schedule"] == "linear"
    assert info["steps"] > 0 and info["seconds"] > 0 and info["n_train"] >= 20000
    assert checkpoint["loss_curve"][-1] < checkpoint["loss_curve"][0] / 5


def test_recorded_evaluation_meets_coverage_and_speed_targets(checkpoint):
    """Chapter targets: each digit >= 5% of 1000 DDPM samples; DDIM with 50 steps >= 15x faster than DDPM."""
    ev = checkpoint["info"]["evaluation"]
    assert ev["ddpm"]["min_share"] >= 0.05, ev["ddpm"]
    assert ev["ddpm"]["seconds"] / ev["ddim50"]["seconds"] >= 15
    assert CHECKSUMS[WEIGHTS]["evaluation"]["ddpm"]["fid"] == ev["ddpm"]["fid"]


@pytest.mark.xfail(strict=True, reason=(
    "target not met by deterministic DDIM with the shipped checkpoint (11 800 steps on an H100): "
    "DDIM-50 with eta=0 scores 21.74 vs 10.3 for DDPM on the CPU, ratio 2.11 > 1.5 (1.83 on the GPU)"))
def test_recorded_evaluation_deterministic_ddim_meets_the_quality_target(checkpoint):
    """Chapter target: DDIM with 50 steps scores within 1.5x of the full DDPM sampler (here with eta = 0)."""
    ev = checkpoint["info"]["evaluation"]
    assert ev["ddim50"]["fid"] <= 1.5 * ev["ddpm"]["fid"]


def test_recorded_evaluation_stochastic_ddim_meets_the_speed_and_quality_targets(checkpoint):
    """The same targets for DDIM with 50 steps and eta = 1 (the stochastic member of the DDIM family)."""
    ev = checkpoint["info"]["evaluation"]
    assert ev["ddpm"]["seconds"] / ev["ddim50_eta1"]["seconds"] >= 15
    assert ev["ddim50_eta1"]["fid"] <= 1.5 * ev["ddpm"]["fid"]
    assert CHECKSUMS[WEIGHTS]["evaluation"]["ddim50_eta1"]["fid"] == ev["ddim50_eta1"]["fid"]


def test_recorded_real_image_floor_is_reproducible_and_below_every_sampler(checkpoint):
    """The "real" entry is utils.metrics.real_image_score at the evaluation's 1000 images, seed 0."""
    ev = checkpoint["info"]["evaluation"]
    assert ev["real"]["fid"] == round(utils.metrics.real_image_score(1000, seed=0), 2)
    assert all(r["fid"] > ev["real"]["fid"] and 0 < r["spread"] < 1.1 for k, r in ev.items() if k != "real")


def _toy_eps(x, t):
    """A fixed smooth function of (x, t) standing in for a network: enough to tell samplers apart."""
    return 0.3 * torch.tanh(x) + 1e-3 * t.view(-1, 1, 1, 1)


@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_split_sampler_is_the_chapters_ddim_at_either_end(chapter, eta):
    """ddim_split_sample (the diagnostic behind the noise_low/noise_high rows) reduces to the chapter's
    ddim_sample when every step, or no step, is on its noisy side; a split in between differs from both."""
    schedule = chapter["NoiseSchedule"](chapter["linear_beta_schedule"](100))

    def run(fn, **kw):
        torch.manual_seed(3)
        return fn(_toy_eps, (4, 1, 6, 6), schedule, **kw)

    stochastic = run(chapter["ddim_sample"], num_steps=10, eta=eta)
    deterministic = run(chapter["ddim_sample"], num_steps=10, eta=0.0)
    for split, noisy, expected in ((100, "low", stochastic), (0, "high", stochastic),
                                   (0, "low", deterministic), (100, "high", deterministic)):
        got = run(ddim_split_sample, num_steps=10, eta=eta, split=split, noisy=noisy)
        utils.assert_close(got, expected, f"split={split}, noisy={noisy}", atol=1e-6)
    for noisy in ("low", "high"):
        middle = run(ddim_split_sample, num_steps=10, eta=eta, split=50, noisy=noisy)
        assert (middle - stochastic).abs().max() > 1e-3 and (middle - deterministic).abs().max() > 1e-3


def test_recorded_evaluation_has_the_split_rows_the_chapter_prints(checkpoint):
    """The noise-only-below / noise-only-above T/2 rows are recorded with the others, on the same device.

    They were measured in a later run than the rest, so they carry no seconds (timings of two runs on a
    shared machine are not comparable); every row that has seconds comes from the one full run."""
    ev = checkpoint["info"]["evaluation"]
    for key in ("ddim50_noise_low", "ddim50_noise_high"):
        assert {"fid", "spread", "min_share", "confident_share"} <= set(ev[key]), key
        assert CHECKSUMS[WEIGHTS]["evaluation"][key]["fid"] == ev[key]["fid"]
        assert 0 < ev[key]["spread"] < 1.1 and ev[key]["fid"] > ev["real"]["fid"]
