"""The Omniglot networks shipped with chapter 07 (tools.artifacts.fewshot): registered, small, loadable into
the chapter's own models, trained with the chapter's full-mode settings, and their recorded accuracy is what
the chapter's evaluation measures again."""

from __future__ import annotations

import pytest
import torch
from course import ROOT

import utils
from tools.artifacts import checksums
from tools.artifacts.fewshot import chapter_namespace

FILES = {"protonet": "checkpoints/omniglot_protonet.pt", "maml": "checkpoints/omniglot_maml_second_order.pt",
         "maml_first_order": "checkpoints/omniglot_maml.pt"}


@pytest.fixture(scope="module")
def chapter():
    return chapter_namespace(torch.device("cpu"))


def shipped(name: str) -> dict:
    return torch.load(utils.datasets.subset_file(FILES[name]), map_location="cpu", weights_only=True)


def test_the_files_are_registered_and_small():
    registered = checksums.read()
    for rel in FILES.values():
        size = (ROOT / "data" / rel).stat().st_size
        assert registered[rel]["bytes"] == size
        assert size <= 2 * 2**20


def test_records_name_the_chapter_settings(chapter):
    cfg = chapter["CFG"]
    proto, maml, first = (shipped(name)["info"] for name in ("protonet", "maml", "maml_first_order"))
    assert proto["config"]["episodes"] == cfg["proto_episodes"]
    assert maml["config"]["first_order"] == cfg["maml_first_order"] and first["config"]["first_order"]
    for info, prefix in ((proto, "proto_"), (maml, "maml_"), (first, "maml_")):
        for key, value in info["config"].items():
            if key.startswith(prefix):
                assert cfg[key] == value, f"{key}: the chapter says {cfg[key]}, the checkpoint was trained with {value}"
    assert {"5way_1shot", "5way_5shot", "20way_1shot", "20way_5shot"} <= set(proto["evaluation"])
    assert all(info["config"]["steps"] == cfg["maml_steps"] for info in (maml, first))
    assert all(e["episodes"] >= 600 for info in (proto, maml, first) for e in info["evaluation"].values())


def test_protonet_accuracy_is_measured_again(chapter):
    encoder = chapter["ConvNet"](chapter["CFG"]["proto_channels"])
    encoder.load_state_dict(shipped("protonet")["state_dict"])  # strict: the chapter's layer names
    recorded = shipped("protonet")["info"]["evaluation"]["5way_1shot"]
    mean, _ = chapter["mean_ci"](chapter["evaluate_protonet"](encoder, 5, 1))  # the same 600 episodes
    assert abs(mean - recorded["mean"]) < 0.005


def test_maml_loads_and_its_first_episodes_agree_with_the_record(chapter):
    model = chapter["maml_model"]()
    model.load_state_dict(shipped("maml")["state_dict"])
    recorded = shipped("maml")["info"]["evaluation"]["5way_1shot"]
    accuracies = chapter["evaluate_maml"](model, 1, episodes=100)  # the first 100 of the recorded 600
    mean, half_width = chapter["mean_ci"](accuracies)
    assert abs(mean - recorded["mean"]) < 1.5 * half_width
