"""Train the ResNet and ViT runs of chapter 09_resnet_vit on CIFAR-10 and ship their checkpoints.

    python -m tools.artifacts.resnet_vit train RUN [--source PATH] [--epochs N] [--threads 1] [--device cuda]
    python -m tools.artifacts.resnet_vit ship [--source PATH]
    python -m tools.artifacts.resnet_vit runs             (the table of runs)

Every run uses the chapter's own code (tools.artifacts.chapter_code): its resnet_cifar and ViT,
its augmentation, optimiser recipe and train_epoch, with the chapter's full-mode CFG. A run saves
its whole state after every epoch under data/cache/resnet_vit/ and resumes from it, adding up
the training time across sittings; a finished run leaves its record (loss and test accuracy per
epoch, seconds per epoch, machine) beside the state.

`ship` reads the finished runs and writes data/checkpoints/cifar10_resnet20.pt and cifar10_vit.pt:
float16 weights and the record, with the accuracy of the rounded weights on the 10 000 test images
re-measured; the ResNet's record also keeps the experiments: the learning curve (both models at
several training-set sizes, same recipe and epochs) and the degradation runs (plain and residual
nets at two depths, no augmentation).

Data: --source is a local copy of CIFAR-10 as JPEG bytes (the npz with train_jpeg/train_offsets/
y_train and test_jpeg/test_offsets/y_test); without it the official CIFAR-10 is downloaded
(utils.load_cifar10(source="full"), needs a network). `--limit N` trains on N images and tests on
N // 5 (a smoke test of the whole path on tiny data).
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import utils
from tools import records
from tools.artifacts import checksums
from tools.artifacts.chapter_code import add_device_arguments, device_of, load_chapter, round_to_half
from tools.course import ROOT

CHAPTER = "09_resnet_vit"
CHECKPOINTS = {"resnet20": "checkpoints/cifar10_resnet20.pt", "vit": "checkpoints/cifar10_vit.pt"}
GRADIENT_IMAGES = 64  # the batch of the chapter's gradient-norm figure
# Epochs of every learning-curve point, fixed so that the curve compares sizes at one recipe: the ResNet-20 points
# were trained with 30 epochs, the recipe's length when the curve was recorded; the shipped ResNet-20 alone was
# later trained longer (a second attempt at the 90% target of issue 36).
CURVE_EPOCHS = {"resnet20": 30, "vit": 20}


@functools.cache
def full_cfg() -> dict:
    """The chapter's full-mode CFG: the one place the experiments' sizes are written."""
    return chapter_namespace(torch.device("cpu"))["CFG"]


def learning_curve_sizes() -> tuple[int, ...]:
    """The curve's training-set sizes below the whole set (the whole set is the shipped runs)."""
    return tuple(n for n in full_cfg()["curve_sizes"] if n < 50000)


def degradation_setup() -> dict:
    cfg = full_cfg()
    return dict(n_train=cfg["degradation_images"], epochs=cfg["degradation_epochs"],
                depths=list(cfg["degradation_depths"]))


def run_table() -> dict:
    """Every run: its model, training-set size and recipe (a CFG key, optionally with other epochs)."""
    table = {"resnet20": dict(model="resnet20", n_train=50000, recipe="resnet"),
             "vit": dict(model="vit", n_train=50000, recipe="vit")}
    for n in learning_curve_sizes():
        # Only the final accuracy of a curve point is used: testing on 10 000 images after every epoch of a
        # 500-image run would cost more than the training itself.
        table[f"curve_resnet20_{n}"] = dict(model="resnet20", n_train=n, recipe="resnet", evaluate="last",
                                            epochs=CURVE_EPOCHS["resnet20"])
        table[f"curve_vit_{n}"] = dict(model="vit", n_train=n, recipe="vit", evaluate="last",
                                       epochs=CURVE_EPOCHS["vit"])
    for model_name, recipe in (("resnet20", "resnet"), ("vit", "vit")):
        if full_cfg()[recipe]["epochs"] != CURVE_EPOCHS[model_name]:  # the shipped run is not the curve's point
            table[f"curve_{model_name}_50000"] = dict(model=model_name, n_train=50000, recipe=recipe,
                                                      evaluate="last", epochs=CURVE_EPOCHS[model_name])
    setup = degradation_setup()
    for depth in setup["depths"]:
        for kind in ("plain", "resnet"):
            table[f"degradation_{kind}{depth}"] = dict(model=f"{kind}{depth}", recipe="resnet",
                                                       n_train=setup["n_train"], epochs=setup["epochs"],
                                                       augment=False, evaluate="last")
    return table


def state_dir() -> Path:
    return ROOT / "data" / "cache" / "resnet_vit"


def chapter_namespace(device: torch.device) -> dict:
    os.environ.pop("COURSE_FAST", None)
    return load_chapter(CHAPTER, names=("CFG", "VIT_CONFIG", "CIFAR_MEAN", "CIFAR_STD"),
                        context={"device": device, "FAST": False})


def _decode(jpeg: np.ndarray, offsets: np.ndarray, indices: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(jpeg[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB"))
                     for i in indices])


def load_data(source: str | None, limit: int | None = None) -> dict:
    """Train and test images as float tensors (N, 3, 32, 32) in [0, 1] and int64 labels."""
    if source:
        with np.load(source, allow_pickle=False) as npz:
            data = {}
            for split in ("train", "test"):
                labels = npz[f"y_{split}"]
                # The copy is sorted by class: a limited smoke test takes evenly spaced images.
                n = len(labels) if limit is None else min(len(labels), limit if split == "train" else limit // 5 + 10)
                indices = np.linspace(0, len(labels) - 1, n).astype(int)
                x = _decode(npz[f"{split}_jpeg"], npz[f"{split}_offsets"], indices)
                data[split] = (torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255).contiguous(),
                               torch.from_numpy(labels[indices].astype(np.int64)))
        return data
    return {split: utils.load_cifar10(split, source="full") for split in ("train", "test")}


def build_model(ch: dict, name: str) -> torch.nn.Module:
    if name == "vit":
        return ch["ViT"](**ch["VIT_CONFIG"])
    kind = name.rstrip("0123456789")
    depth = int(name.removeprefix(kind))
    return ch["resnet_cifar"](depth, residual=(kind == "resnet"))


def training_subset(n_images: int, n: int) -> torch.Tensor:
    """The first n of one fixed permutation: smaller subsets are nested in larger ones."""
    return torch.randperm(n_images, generator=torch.Generator().manual_seed(0))[:n]


def train(ch: dict, run: str, data: dict, device: torch.device, limit: int | None,
          epochs: int | None = None) -> dict:
    """Train one run, resuming from its saved state; ``epochs`` overrides the CFG's (a longer attempt trained
    before the chapter's CFG is changed to match it; the record keeps the epochs actually run)."""
    spec = dict(run_table()[run], **({"epochs": epochs} if epochs else {}))
    recipe = dict(ch["CFG"][spec["recipe"]])
    recipe["epochs"] = spec.get("epochs", recipe["epochs"])
    x_train, y_train = data["train"]
    n_train = min(spec["n_train"], len(x_train)) if limit is None else min(spec["n_train"], limit)
    subset = training_subset(len(x_train), n_train)
    x_train, y_train = x_train[subset], y_train[subset]
    x_test, y_test = data["test"]
    steps = recipe["epochs"] * -(-n_train // recipe["batch_size"])

    torch.manual_seed(0)
    model = build_model(ch, spec["model"]).to(device).to(memory_format=torch.channels_last)
    optimizer, scheduler = ch["make_optimizer"](model, recipe, steps)
    path = state_dir() / f"{run}.state.pt"
    log = {"epoch": [], "train_loss": [], "test_accuracy": [], "seconds": []}
    if path.exists() and limit is None:
        state = torch.load(path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        log = state["log"]
        print(f"{run}: resuming after epoch {len(log['epoch'])}", flush=True)
    for epoch in range(len(log["epoch"]) + 1, recipe["epochs"] + 1):
        start = time.perf_counter()
        loss = ch["train_epoch"](model, optimizer, scheduler, x_train, y_train, recipe,
                                 augment=spec.get("augment", True))
        seconds = time.perf_counter() - start
        tested = spec.get("evaluate", "every") == "every" or epoch == recipe["epochs"]
        acc = ch["accuracy"](model, x_test, y_test) if tested else None
        for key, value in (("epoch", epoch), ("train_loss", round(loss, 4)),
                           ("test_accuracy", None if acc is None else round(acc, 4)), ("seconds", round(seconds, 1))):
            log[key].append(value)
        test = "not tested" if acc is None else f"test {acc:.4f}"
        print(f"{run} epoch {epoch}/{recipe['epochs']}: loss {loss:.4f}, {test}, {seconds:.0f} s", flush=True)
        if limit is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), "log": log},
                       path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
    record = {
        "run": run, **spec, "n_train": n_train, "recipe": recipe, "steps": steps,
        "parameters": sum(p.numel() for p in model.parameters()),
        "log": log, "train_seconds": round(sum(log["seconds"]), 1),
        "seconds_per_epoch": round(sum(log["seconds"]) / len(log["seconds"]), 1),
        "final_test_accuracy": log["test_accuracy"][-1], "final_train_loss": log["train_loss"][-1],
        "machine": records.machine(device), "threads": torch.get_num_threads(), "torch": str(torch.__version__),
        "date": records.provenance("")["date"],
    }
    if limit is None:
        (state_dir() / f"{run}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return {"record": record, "model": model}


def finished(run: str) -> dict | None:
    path = state_dir() / f"{run}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def experiments(previous: dict | None = None) -> dict:
    """The learning curve and the degradation runs, from the finished runs' records. Where this cache holds none
    of their runs (a fresh checkout that retrained only a shipped model), the ``previous`` checkpoint's experiments
    are kept as they were measured rather than replaced by a partial set."""
    experiment_runs = [name for name in run_table() if name.startswith(("curve_", "degradation_"))]
    if previous is not None and not any(finished(name) for name in experiment_runs):
        kept = {k: v for k, v in previous.items() if k not in ("gradient_ratio", "gradient_images")}
        return {**kept, "kept_from_previous_checkpoint": True}
    curve = {}
    for model_name in ("resnet20", "vit"):
        points = [(n, finished(f"curve_{model_name}_{n}")) for n in learning_curve_sizes()]
        # the whole set: the curve's own epochs, which the shipped run has unless it was trained longer
        shipped_run = finished(model_name)
        if shipped_run is not None and shipped_run["recipe"]["epochs"] != CURVE_EPOCHS[model_name]:
            shipped_run = finished(f"curve_{model_name}_50000")
        points.append((50000, shipped_run))
        curve[model_name] = [{"n_train": n, "test_accuracy": r["final_test_accuracy"],
                              "train_seconds": r["train_seconds"], "seconds_per_epoch": r["seconds_per_epoch"],
                              "epochs": r["recipe"]["epochs"]}
                             for n, r in points if r is not None]
    out = {"learning_curve": curve, "degradation_setup": degradation_setup()}
    both = {p["n_train"]: p["test_accuracy"] for p in curve["resnet20"]}
    gaps = {p["n_train"]: both[p["n_train"]] - p["test_accuracy"] for p in curve["vit"] if p["n_train"] in both}
    if gaps:
        out["curve_gaps"] = [{"n_train": n, "gap": round(g, 4)} for n, g in sorted(gaps.items())]
        out["curve_gap_smallest"] = round(gaps[min(gaps)], 4)
        out["curve_gap_smallest_n"] = min(gaps)
        out["curve_gap_largest"] = round(gaps[max(gaps)], 4)
        out["curve_gap_largest_n"] = max(gaps)
    out["degradation"] = degradation_runs(state_dir())
    out["degradation_loss_floor"] = round(smoothed_loss_floor(full_cfg()["resnet"]["label_smoothing"], 10), 4)
    # An earlier attempt with another setup, kept beside the current one (its runs under attempt1/)
    if (earlier := degradation_runs(state_dir() / "attempt1")):
        any_run = next(iter(earlier.values()))
        out["degradation_attempt1"] = {"n_train": any_run["n_train"], "epochs": len(any_run["train_loss"]),
                                       "final_train_loss": {k: r["final_train_loss"] for k, r in earlier.items()}}
    return out


def smoothed_loss_floor(smoothing: float, classes: int) -> float:
    """The lowest cross-entropy a model can reach against label-smoothed targets: their entropy. A training loss
    near it means the training set is fitted, so depths are compared against it, not against zero."""
    target = np.full(classes, smoothing / classes)
    target[0] += 1 - smoothing
    return float(-(target * np.log(target)).sum())


def degradation_runs(folder: Path) -> dict:
    """The finished degradation runs in ``folder``: loss per epoch and final figures, by model."""
    runs = {}
    for path in sorted(folder.glob("degradation_*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        runs[r["model"]] = {"train_loss": r["log"]["train_loss"], "final_train_loss": r["final_train_loss"],
                            "final_test_accuracy": r["final_test_accuracy"], "parameters": r["parameters"],
                            "n_train": r["n_train"], "seconds_per_epoch": r["seconds_per_epoch"]}
    order = {f"{kind}{depth}": i for i, (depth, kind) in
             enumerate((d, k) for d in degradation_setup()["depths"] for k in ("plain", "resnet"))}
    return dict(sorted(runs.items(), key=lambda item: order.get(item[0], len(order))))


def gradient_ratios(ch: dict, data: dict) -> dict:
    """Norm of the first block's conv1 gradient over the last block's, at initialisation (seed 0), for the plain
    and residual nets of each of the chapter's gradient depths: the chapter's block_gradient_norms on one batch of
    training images (the first of a seed-0 permutation)."""
    x_train, y_train = data["train"]
    batch = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(0))[:GRADIENT_IMAGES]
    ratios = {}
    for depth in full_cfg()["gradient_depths"]:
        for kind in ("plain", "resnet"):
            torch.manual_seed(0)
            norms = ch["block_gradient_norms"](build_model(ch, f"{kind}{depth}"), x_train[batch], y_train[batch])
            ratios[f"{kind}{depth}"] = round(norms[0] / norms[-1], 3)
    return ratios


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return round((logits.argmax(1) == labels).float().mean().item(), 4)


def ship(ch: dict, data: dict, device: torch.device) -> None:
    """Checkpoints of the two shipped runs, rounded to float16 and re-measured; the ResNet's record also keeps
    the experiments (learning curve, degradation), the one place their figures live."""
    x_test, y_test = data["test"]
    for run, target in CHECKPOINTS.items():
        record = finished(run)
        if record is None:
            print(f"{run}: not finished, not shipped", flush=True)
            continue
        state = torch.load(state_dir() / f"{run}.state.pt", map_location="cpu", weights_only=False)
        model = build_model(ch, record["model"])
        model.load_state_dict(state["model"])
        model.to(device)
        weights = round_to_half(model)
        logits = ch["predict"](model, x_test)
        # Rows: the 10 000 test images, and the part of them committed in data/ that the notebook and the tests
        # measure again.
        x_sub, y_sub = utils.load_cifar10("test", source="subset")
        record["evaluation"] = {
            "cifar10_test": {"test_images": len(y_test), "test_accuracy": _accuracy(logits, y_test)},
            "committed_subset": {"test_images": len(y_sub),
                                 "test_accuracy": _accuracy(ch["predict"](model, x_sub), y_sub)}}
        record["confusion"] = torch.bincount(y_test * 10 + logits.argmax(1), minlength=100).view(10, 10).tolist()
        record["weights"] = "float16 (loaded into float32 modules; the evaluation is of the rounded weights)"
        record["command"] = "python -m tools.artifacts.resnet_vit " + " ".join(sys.argv[1:])
        if run == "resnet20":
            path = ROOT / "data" / target
            previous = torch.load(path, weights_only=False)["info"].get("experiments") if path.exists() else None
            record["experiments"] = {**experiments(previous), "gradient_ratio": gradient_ratios(ch, data),
                                     "gradient_images": GRADIENT_IMAGES}
        torch.save({"model": weights, "info": record}, ROOT / "data" / target)
        checksums.register({target: {}})
        print(f"{run}: shipped, test accuracy {record['evaluation']['cifar10_test']['test_accuracy']:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("train", "ship", "runs"))
    parser.add_argument("run", nargs="?", help="a run of the table (train)")
    parser.add_argument("--source", help="local CIFAR-10 as JPEG bytes (npz); default: the official download")
    parser.add_argument("--limit", type=int, help="train on this many images only, save nothing (smoke test)")
    parser.add_argument("--epochs", type=int, help="train: epochs instead of the CFG's (a longer attempt)")
    add_device_arguments(parser)
    args = parser.parse_args()
    if args.action == "runs":
        for name, spec in run_table().items():
            print(f"{name:28} {spec}")
        return
    device = device_of(args)
    ch = chapter_namespace(device)
    data = load_data(args.source, args.limit)
    if args.action == "train":
        if args.run not in run_table():
            parser.error(f"unknown run {args.run!r}; see `runs`")
        train(ch, args.run, data, device, args.limit, args.epochs)
    else:
        ship(ch, data, device)


if __name__ == "__main__":
    main()
