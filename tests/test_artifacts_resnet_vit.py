"""The ResNet-20 and ViT shipped with chapter 09 (tools.artifacts.resnet_vit): registered, small, loadable into the
chapter's own models, trained with the chapter's full-mode recipes, their accuracy on the committed test images is
what the record says, and the trainer's whole path (JPEG source, runs, records) works on tiny data."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from course import ROOT

import utils
from tools.artifacts import checksums, resnet_vit

FILES = resnet_vit.CHECKPOINTS
MAX_BYTES = 3 * 2**20  # everything the chapter ships (issue 36)


@pytest.fixture(scope="module")
def chapter():
    return resnet_vit.chapter_namespace(torch.device("cpu"))


def shipped(name: str) -> dict:
    return torch.load(utils.datasets.subset_file(FILES[name]), map_location="cpu", weights_only=True)


def test_the_files_are_registered_and_small():
    registered = checksums.read()
    sizes = [(ROOT / "data" / rel).stat().st_size for rel in FILES.values()]
    for rel, size in zip(FILES.values(), sizes, strict=True):
        assert registered[rel]["bytes"] == size
    assert sum(sizes) <= MAX_BYTES, f"{sum(sizes)} bytes shipped, the budget is {MAX_BYTES}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_weights_are_float16_and_load_strictly_into_the_chapter_model(chapter, name):
    checkpoint = shipped(name)
    floats = [v for v in checkpoint["model"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    model = resnet_vit.build_model(chapter, checkpoint["info"]["model"])
    model.load_state_dict({k: v.float() for k, v in checkpoint["model"].items()})  # strict: the chapter's names
    assert checkpoint["info"]["parameters"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(FILES))
def test_records_name_the_chapter_recipe(chapter, name):
    info = shipped(name)["info"]
    recipe = chapter["CFG"][resnet_vit.run_table()[name]["recipe"]]
    assert info["recipe"] == recipe, "the chapter's recipe changed after the model was trained"
    assert info["n_train"] == 50000 and len(info["log"]["epoch"]) == recipe["epochs"]
    assert info["evaluation"]["cifar10_test"]["test_images"] == 10000


def test_the_vit_is_small_and_trained_in_at_most_twice_the_resnet_time():
    resnet, vit = shipped("resnet20")["info"], shipped("vit")["info"]
    assert vit["parameters"] <= 1_050_000
    print(f"train seconds: ResNet-20 {resnet['train_seconds']}, ViT {vit['train_seconds']}")
    assert vit["train_seconds"] <= 2 * resnet["train_seconds"]


@pytest.mark.parametrize("name", sorted(FILES))
def test_accuracy_on_the_committed_test_images_is_measured_again(chapter, name):
    checkpoint = shipped(name)
    model = resnet_vit.build_model(chapter, checkpoint["info"]["model"])
    model.load_state_dict({k: v.float() for k, v in checkpoint["model"].items()})
    images, labels = utils.load_cifar10("test", source="subset")
    recorded = checkpoint["info"]["evaluation"]["committed_subset"]
    assert recorded["test_images"] == len(labels)
    correct = (chapter["predict"](model, images).argmax(1) == labels).sum().item()
    assert abs(correct - round(recorded["test_accuracy"] * len(labels))) <= 1  # a tie may round either way


def test_the_experiments_are_recorded():
    experiments = shipped("resnet20")["info"]["experiments"]
    setup = resnet_vit.degradation_setup()
    assert experiments["degradation_setup"] == setup
    # the trainer runs the degradation nets at the default width with the plain resnet recipe: so must full mode
    assert resnet_vit.full_cfg()["degradation_width"] == 16 and resnet_vit.full_cfg()["degradation_recipe"] == {}
    runs = {f"{kind}{depth}" for depth in setup["depths"] for kind in ("plain", "resnet")}
    assert set(experiments["degradation"]) == runs
    assert all(len(run["train_loss"]) == setup["epochs"] for run in experiments["degradation"].values())
    gradient_depths = resnet_vit.full_cfg()["gradient_depths"]
    assert set(experiments["gradient_ratio"]) == {f"{kind}{d}" for d in gradient_depths for kind in ("plain", "resnet")}
    for model in ("resnet20", "vit"):
        sizes = [p["n_train"] for p in experiments["learning_curve"][model]]
        assert sizes == [*resnet_vit.learning_curve_sizes(), 50000]
    accuracy = {model: {p["n_train"]: p["test_accuracy"] for p in experiments["learning_curve"][model]}
                for model in ("resnet20", "vit")}
    assert [g["n_train"] for g in experiments["curve_gaps"]] == [*resnet_vit.learning_curve_sizes(), 50000]
    for g in experiments["curve_gaps"]:
        assert g["gap"] == pytest.approx(accuracy["resnet20"][g["n_train"]] - accuracy["vit"][g["n_train"]], abs=1e-4)
    assert experiments["degradation_loss_floor"] == pytest.approx(
        resnet_vit.smoothed_loss_floor(resnet_vit.full_cfg()["resnet"]["label_smoothing"], 10), abs=1e-4)


def _jpeg_npz(path, n_train: int, n_test: int) -> None:
    """A tiny copy in the format of the offline CIFAR-10 (JPEG bytes with offsets), sorted by class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        blobs = []
        for _ in range(n):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, format="JPEG")
            blobs.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
        arrays[f"{split}_jpeg"] = np.concatenate(blobs)
        arrays[f"{split}_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
        arrays[f"y_{split}"] = np.sort(rng.integers(0, 10, n)).astype(np.uint8)
    np.savez(path, **arrays)


def test_the_trainer_runs_on_tiny_data(chapter, tmp_path):
    run = "degradation_plain20"  # the cheapest run (12 epochs of one batch); the others differ only in the table
    _jpeg_npz(tmp_path / "tiny.npz", 40, 20)
    data = resnet_vit.load_data(str(tmp_path / "tiny.npz"), limit=32)
    assert data["train"][0].shape == (32, 3, 32, 32) and data["test"][0].shape == (16, 3, 32, 32)
    assert data["train"][0].min() >= 0 and data["train"][0].max() <= 1
    result = resnet_vit.train(chapter, run, data, torch.device("cpu"), limit=32)
    log = result["record"]["log"]
    spec = resnet_vit.run_table()[run]
    assert len(log["epoch"]) == spec.get("epochs", chapter["CFG"][spec["recipe"]]["epochs"])
    assert log["test_accuracy"][-1] is not None and np.isfinite(log["train_loss"]).all()
    assert result["record"]["n_train"] == 32


def test_the_loss_floor_under_label_smoothing_is_the_least_reachable_cross_entropy():
    """The degradation text compares final losses with this floor: it must equal the cross-entropy of the best
    possible prediction (the smoothed target itself), and any other prediction must do worse."""
    floor = resnet_vit.smoothed_loss_floor(0.1, 10)
    target = torch.full((1, 10), 0.01)
    target[0, 3] = 0.91
    label = torch.tensor([3])
    best = torch.nn.functional.cross_entropy(target.log(), label, label_smoothing=0.1).item()
    assert abs(floor - best) < 1e-6, (floor, best)
    for other in (torch.randn(5, 10), torch.zeros(1, 10)):
        loss = torch.nn.functional.cross_entropy(other, label.expand(len(other)), label_smoothing=0.1).item()
        assert loss > floor


def test_shipping_from_a_cache_without_the_experiment_runs_keeps_the_recorded_experiments(monkeypatch, tmp_path):
    monkeypatch.setattr(resnet_vit, "state_dir", lambda: tmp_path)  # a fresh checkout: no finished runs
    previous = shipped("resnet20")["info"]["experiments"]
    kept = resnet_vit.experiments(previous)
    assert kept["kept_from_previous_checkpoint"] is True
    assert {k: v for k, v in kept.items() if k != "kept_from_previous_checkpoint"} == {
        k: v for k, v in previous.items()
        if k not in ("gradient_ratio", "gradient_images", "kept_from_previous_checkpoint")}  # kept once already


def test_a_shipped_run_longer_than_the_curve_gets_its_own_curve_point():
    table = resnet_vit.run_table()
    for model, recipe in (("resnet20", "resnet"), ("vit", "vit")):
        longer = resnet_vit.full_cfg()[recipe]["epochs"] != resnet_vit.CURVE_EPOCHS[model]
        assert (f"curve_{model}_50000" in table) == longer
        assert all(spec["epochs"] == resnet_vit.CURVE_EPOCHS[model] for name, spec in table.items()
                   if name.startswith(f"curve_{model}_"))
