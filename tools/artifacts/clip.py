"""Train and evaluate the small CLIP shipped with chapter 08_clip.

    python -m tools.artifacts.clip [--steps N] [--device cuda] [--threads 2]

Uses the chapter's own code and full-mode settings (tools.artifacts.chapter_code)
and writes under data/checkpoints/:
- clip_mnist.pt: the state dict of the chapter's CLIP in float16, its vocabulary and its
  record ("info": the settings, the training time and machine, the loss and
  temperature after every step, and the evaluation below);
- clip_mnist_text.pt2: its text encoder as a torch.export program (token ids to
  vectors), which the chapter loads when a student's TextEncoder names its
  layers otherwise.
The evaluation is the chapter's, on the full-mode sets: zero-shot digit accuracy
on seen and held-out compositions for each kind of prompt, word order on held-out
pairs, a linear probe, text-to-image Recall@1/5/10 and scene accuracy on the
held-out gallery, and image-to-text scene accuracy, all of the float16-rounded
weights that ship. The record is the one place
these figures live; the chapter's text and docs/results.md quote it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from tools import records
from tools.artifacts import checksums
from tools.artifacts.chapter_code import add_device_arguments, device_of, load_chapter, round_to_half
from tools.course import ROOT

CHAPTER = "08_clip"
CHECKPOINT = "checkpoints/clip_mnist.pt"
TEXT_PROGRAM = "checkpoints/clip_mnist_text.pt2"


def chapter_namespace(device: torch.device) -> dict:
    """The chapter's definitions and full-mode CFG, with the data its functions read as globals."""
    os.environ.pop("COURSE_FAST", None)
    ch = load_chapter(CHAPTER, names=("CFG", "PAD", "UNK"), context={"device": device, "FAST": False})
    cap, cfg = ch["cap"], ch["CFG"]
    ch["mnist_train_x"], ch["mnist_train_y"] = ch["utils"].load_mnist("train")
    ch["mnist_test_x"], ch["mnist_test_y"] = ch["utils"].load_mnist("test")
    ch["train_images"], _, ch["train_scenes"] = cap.make_pairs(ch["mnist_train_x"], ch["mnist_train_y"],
                                                               cfg["train_pairs"], held_out=False, seed=0)
    ch["gallery_images"], ch["gallery_texts"], ch["gallery_scenes"] = cap.make_pairs(
        ch["mnist_test_x"], ch["mnist_test_y"], cfg["gallery_size"], held_out=True, seed=1)
    return ch


def evaluate(ch: dict, model: torch.nn.Module) -> dict:
    """The chapter's measurements of ``model`` on its full-mode evaluation sets, one row per measurement."""
    cfg = ch["CFG"]
    n = cfg["zero_shot_images"]
    sets = ch["zero_shot_sets"](n)
    zero_shot = ch["zero_shot_table"](model, sets)
    recall, scene_at_1 = ch["recall_at_k"](model, ch["gallery_images"], ch["gallery_texts"], ch["gallery_scenes"])
    probe = ch["linear_probe"](model, cfg["probe_images"], sets)
    image_to_text = ch["image_to_text_accuracy"](model, ch["gallery_images"], ch["gallery_scenes"])
    prompts = {"слово": "one_word", "шаблон": "one_template", "ансамбль": "ensemble"}
    row = {name: {**{english: round(zero_shot[(kind, name)], 4) for kind, english in prompts.items()}, "images": n}
           for name in sets}
    return {
        "zero_shot_seen": row["знакомые"],
        "zero_shot_held_out": row["отложенные"],
        "linear_probe": {"seen": round(probe["знакомые"], 4), "held_out": round(probe["отложенные"], 4),
                         "train_images": cfg["probe_images"]},
        "pair_order_held_out": {"accuracy": round(ch["pair_order_accuracy"](model, n // 2), 4), "images": n // 2},
        "text_to_image": {**{f"recall_at_{k}": round(v, 4) for k, v in recall.items()},
                          "scene_at_1": round(scene_at_1, 4), "gallery": len(ch["gallery_images"])},
        "image_to_text": {"scene_at_1": round(image_to_text, 4), "gallery": len(ch["gallery_images"])},
    }


def export_text_encoder(model: torch.nn.Module, max_len: int) -> torch.export.ExportedProgram:
    """The text encoder as a program over token ids of any batch size and length up to ``max_len``."""
    encoder = model.text_encoder.cpu().eval()
    example = torch.tensor([[2, 3, 4, 0], [5, 6, 7, 8]])
    dims = {"ids": {0: torch.export.Dim("batch", min=1), 1: torch.export.Dim("length", min=1, max=max_len)}}
    return torch.export.export(encoder, (example,), dynamic_shapes=dims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="training steps (default: the chapter's)")
    parser.add_argument("--reevaluate", action="store_true",
                        help="keep the shipped weights, measure them again with the chapter's current code")
    add_device_arguments(parser)
    args = parser.parse_args()
    device = device_of(args)
    ch = chapter_namespace(device)
    cfg, path = ch["CFG"], ROOT / "data" / CHECKPOINT
    if args.reevaluate:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = ch["CLIP"](checkpoint["vocab"])
        model.load_state_dict(checkpoint["state_dict"])
        model, vocab, info = model.to(device).eval(), checkpoint["vocab"], checkpoint["info"]
        state = round_to_half(model)
        info["evaluation"] = evaluate(ch, model)
        info["evaluation_command"] = "python -m tools.artifacts.clip " + " ".join(sys.argv[1:])
    else:
        steps = args.steps or cfg["steps"]
        print(f"training CLIP for {steps} steps on {records.machine(device)}", flush=True)
        torch.manual_seed(0)
        vocab = ch["build_vocab"](ch["train_scenes"])
        model = ch["CLIP"](vocab).to(device)
        start = time.perf_counter()
        history = ch["train_clip"](model, ch["train_images"], ch["train_scenes"], steps)
        seconds = time.perf_counter() - start
        state = round_to_half(model)
        keys = ("train_pairs", "max_len", "embed_dim", "text_dim", "text_heads", "text_layers", "init_temperature",
                "batch_size", "lr", "weight_decay")
        info = {
            "config": {"steps": steps, **{k: cfg[k] for k in keys}},
            "train_seconds": round(seconds, 1),
            "history": {k: [round(v, 5) for v in vs] for k, vs in history.items()},
            "temperature": round(history["temperature"][-1], 5),
            "evaluation": evaluate(ch, model),
            "machine": records.machine(device),
            "torch": str(torch.__version__),
            "date": records.provenance("")["date"],
            "command": "python -m tools.artifacts.clip " + " ".join(sys.argv[1:]),
        }
    print({k: v for k, v in info.items() if k != "history"}, flush=True)
    info["weights"] = "float16 (loaded into float32 modules; every figure above is of the rounded weights)"
    torch.save({"state_dict": state, "vocab": vocab, "info": info}, path)
    torch.export.save(export_text_encoder(model, cfg["max_len"]), ROOT / "data" / TEXT_PROGRAM)
    checksums.register({CHECKPOINT: {}, TEXT_PROGRAM: {}})


if __name__ == "__main__":
    main()
