"""The small CLIP shipped with chapter 08 (tools.artifacts.clip): registered, small, loadable into the chapter's
own CLIP, trained with the chapter's full-mode settings and vocabulary, its exported text encoder equal to the
weights it was exported from, and its recorded zero-shot accuracy what the chapter's evaluation measures again."""

from __future__ import annotations

import pytest
import torch
from course import ROOT

import utils
from tools.artifacts import checksums
from tools.artifacts.clip import CHECKPOINT, TEXT_PROGRAM, chapter_namespace


@pytest.fixture(scope="module")
def chapter():
    return chapter_namespace(torch.device("cpu"))


@pytest.fixture(scope="module")
def shipped():
    return torch.load(utils.datasets.subset_file(CHECKPOINT), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def model(chapter, shipped):
    clip = chapter["CLIP"](shipped["vocab"])
    clip.load_state_dict(shipped["state_dict"])  # strict: the chapter's layer names
    return clip.eval()


def test_the_files_are_registered_and_small():
    registered = checksums.read()
    for rel in (CHECKPOINT, TEXT_PROGRAM):
        size = (ROOT / "data" / rel).stat().st_size
        assert registered[rel]["bytes"] == size
        assert size <= 2.5 * 2**20


def test_record_names_the_chapter_settings_and_vocabulary(chapter, shipped):
    cfg, info = chapter["CFG"], shipped["info"]
    for key, value in info["config"].items():
        assert cfg[key] == value, f"{key}: the chapter says {cfg[key]}, the checkpoint was trained with {value}"
    assert shipped["vocab"] == chapter["build_vocab"](chapter["train_scenes"])
    assert len(info["history"]["loss"]) == info["config"]["steps"]
    assert info["evaluation"]["text_to_image"]["gallery"] == cfg["gallery_size"]


def test_the_exported_text_encoder_is_the_shipped_one(chapter, shipped, model):
    """The program the chapter falls back to gives the loaded encoder's vectors, for any batch size and length."""
    program = torch.export.load(utils.datasets.subset_file(TEXT_PROGRAM)).module()
    texts = ["тройка", "маленькая тройка слева на синем фоне", "семёрка справа от двойки на сером фоне"]
    fallback = chapter["CLIP"](shipped["vocab"])
    fallback.load_state_dict(shipped["state_dict"])
    fallback.text_encoder = chapter["ExportedTextEncoder"](program)
    with torch.no_grad():
        for batch in (texts, texts[:1], texts[1:]):
            utils.assert_close(fallback.eval().encode_text(batch), model.encode_text(batch),
                               f"text vectors of {batch} through the exported program", atol=1e-5)


def test_zero_shot_accuracy_is_measured_again(chapter, shipped, model):
    recorded = shipped["info"]["evaluation"]
    sets = chapter["zero_shot_sets"](recorded["zero_shot_held_out"]["images"])  # the record's pictures
    measured = chapter["zero_shot_table"](model, sets, kinds=("ансамбль",))
    assert abs(measured[("ансамбль", "отложенные")] - recorded["zero_shot_held_out"]["ensemble"]) < 0.002
    assert abs(measured[("ансамбль", "знакомые")] - recorded["zero_shot_seen"]["ensemble"]) < 0.002
    # The targets for the trained model, on its own record.
    assert recorded["zero_shot_held_out"]["ensemble"] >= 0.30 and recorded["zero_shot_seen"]["ensemble"] >= 0.90
    assert recorded["text_to_image"]["recall_at_10"] >= 0.8
