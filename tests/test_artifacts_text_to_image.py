"""The text-to-image generator shipped with chapter 12 (tools.artifacts.text_to_image): registered, small,
loadable into the chapter's own network, trained with the chapter's settings, and its recorded agreement what
the chapter's code measures again on the record's own prompts."""

from __future__ import annotations

import pytest
import torch
from course import ROOT

import utils
from tools.artifacts import checksums
from tools.artifacts.text_to_image import CHECKPOINT, EVAL_PROMPTS, chapter_namespace


@pytest.fixture(scope="module")
def chapter():
    return chapter_namespace(torch.device("cpu"))


@pytest.fixture(scope="module")
def shipped():
    return torch.load(utils.datasets.subset_file(CHECKPOINT), map_location="cpu", weights_only=True)


def test_the_file_is_registered_and_small():
    size = (ROOT / "data" / CHECKPOINT).stat().st_size
    assert checksums.read()[CHECKPOINT]["bytes"] == size
    assert size <= 520_000  # what the 40 MB budget of data/ leaves


def test_record_names_the_chapter_settings(chapter, shipped):
    cfg, info = chapter["CFG"], shipped["info"]
    for key, value in info["config"].items():
        want = cfg[key]
        assert (list(want) if isinstance(want, tuple) else want) == (list(value) if isinstance(value, tuple)
                                                                     else value), key
    assert len(info["history"]["loss"]) * info["history"]["every"] >= info["config"]["steps"]
    assert info["history"]["loss"][-1] < 0.5 * info["history"]["loss"][0]


def test_the_weights_load_into_the_chapter_network(chapter, shipped):
    model, info = chapter["load_course_generator"]()
    assert info == shipped["info"]
    assert sum(p.numel() for p in model.parameters()) == info["params"]


def test_recorded_agreement_is_measured_again(chapter, shipped):
    """The record's held-out captions at the default guidance: the chapter's generate and judge give the record."""
    model, _ = chapter["load_course_generator"]()
    w = chapter["CFG"]["guidance"]
    scenes, prompts = chapter["evaluation_prompts"](True, EVAL_PROMPTS, 7)
    verdict = chapter["scene_reader"].judge(chapter["generate"](model, prompts, w=w, seed=3), scenes)
    recorded = shipped["info"]["evaluation"][f"held_out_w{w:g}"]
    for key in ("digit", "attributes"):
        assert abs(float(verdict[key].mean()) - recorded[key]) <= 0.01, key
    # Issue 24's targets (digit >= 90%, attributes >= 70%) are not asserted: the shipped weights reach about 7%
    # and 67-74% (see the record and docs/results.md); the issue stays open until a generator meets them.
