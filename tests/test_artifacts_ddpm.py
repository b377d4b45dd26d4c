"""The diffusion checkpoint shipped with chapter 05 (tools.artifacts.ddpm): present, small, loadable both ways,
and its record says what the chapter says of it."""

from __future__ import annotations

import pytest
import torch
from course import ROOT

import utils
from tools.artifacts import checksums
from tools.artifacts.chapter_code import load_chapter
from tools.artifacts.ddpm import PROGRAM, WEIGHTS, load_shipped, round_to_storage, storage_state

CHECKSUMS = checksums.read()


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


def test_recorded_evaluation_stochastic_ddim_meets_the_speed_and_quality_targets(checkpoint):
    """Chapter target: DDIM with 50 steps at least 15x faster than DDPM and within 1.5x of its score; met by
    DDIM with eta = 1 (the stochastic member of the DDIM family)."""
    ev = checkpoint["info"]["evaluation"]
    assert ev["ddpm"]["seconds"] / ev["ddim50_eta1"]["seconds"] >= 15
    assert ev["ddim50_eta1"]["fid"] <= 1.5 * ev["ddpm"]["fid"]


def test_recorded_evaluation_shows_the_finding_the_chapter_teaches(checkpoint):
    """Chapter 05 teaches that this network's deterministic DDIM (eta = 0) loses to the stochastic one: the
    fresh noise corrects the network's errors. If a retrained network reverses that, the text must change."""
    ev = checkpoint["info"]["evaluation"]
    assert ev["ddim50"]["fid"] > ev["ddim50_eta1"]["fid"] and ev["ddim20"]["fid"] > ev["ddim20_eta1"]["fid"]


def test_recorded_real_image_floor_is_reproducible_and_below_every_sampler(checkpoint):
    """The "real" entry is utils.metrics.real_image_score at the evaluation's 1000 images, seed 0."""
    ev = checkpoint["info"]["evaluation"]
    assert ev["real"]["fid"] == round(utils.metrics.real_image_score(1000, seed=0), 2)
    assert all(r["fid"] > ev["real"]["fid"] and 0 < r["spread"] < 1.1 for k, r in ev.items() if k != "real")
