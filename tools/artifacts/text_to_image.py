"""Train and evaluate the text-to-image generator shipped with chapter 12_text_to_image.

    python -m tools.artifacts.text_to_image [--steps N] [--device cuda] [--threads 2]

Uses the chapter's own code and settings (tools.artifacts.chapter_code): its
TextToImageUNet, conditioned on the course CLIP's text vectors (utils.course_clip),
trained by its train_generator on the seen compositions of utils.captions. Writes
data/checkpoints/text_to_image.pt: the EMA weights in float16 and the record ("info":
the settings, the training time and machine, the loss every 10 steps, and a short
evaluation of the rounded weights by utils.scene_reader at w = 1 and the chapter's
default guidance). The chapter measures the shipped weights in full; this record is
the training's own account.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from tools import records
from tools.artifacts import checksums
from tools.artifacts.chapter_code import add_device_arguments, device_of, load_chapter, round_to_half
from tools.course import ROOT

CHAPTER = "12_text_to_image"
CHECKPOINT = "checkpoints/text_to_image.pt"
EVAL_PROMPTS = 200


def chapter_namespace(device: torch.device) -> dict:
    return load_chapter(CHAPTER, names=("CFG", "ALPHAS_CUMPROD", "clip"), context={"device": device, "FAST": False})


def evaluate(ch: dict, model: torch.nn.Module) -> dict:
    """Judge agreement on EVAL_PROMPTS seen and held-out captions at w = 1 and at the default guidance."""
    out = {}
    for held_out in (False, True):
        scenes, prompts = ch["evaluation_prompts"](held_out, EVAL_PROMPTS, 7)
        for w in (1.0, ch["CFG"]["guidance"]):
            verdict = ch["scene_reader"].judge(ch["generate"](model, prompts, w=w, seed=3), scenes)
            key = f"{'held_out' if held_out else 'seen'}_w{w:g}"
            out[key] = {k: round(float(v.mean()), 4) for k, v in verdict.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="training steps (default: the chapter's)")
    add_device_arguments(parser)
    args = parser.parse_args()
    device = device_of(args)
    ch = chapter_namespace(device)
    cfg = ch["CFG"]
    steps = args.steps or cfg["steps"]
    train_x, train_y = ch["utils"].load_mnist("train")
    images, _, scenes = ch["cap"].make_pairs(train_x, train_y, cfg["train_scenes"], held_out=False, seed=0)
    print(f"training the generator for {steps} steps on {records.machine(device)}", flush=True)
    torch.manual_seed(0)
    model = ch["TextToImageUNet"]().to(device)
    start = time.perf_counter()
    ema, losses = ch["train_generator"](model, images * 2 - 1, scenes, steps, cfg["batch_size"])
    seconds = time.perf_counter() - start
    state = round_to_half(ema)
    keys = ("channels", "cond_dim", "timesteps", "p_uncond", "train_scenes", "batch_size", "lr", "ema_decay")
    info = {
        "config": {"steps": steps, **{k: cfg[k] for k in keys}},
        "params": sum(p.numel() for p in ema.parameters()),
        "train_seconds": round(seconds, 1),
        "history": {"loss": [round(float(np.mean(losses[i:i + 10])), 5) for i in range(0, len(losses), 10)],
                    "every": 10},
        "evaluation": evaluate(ch, ema.eval()),
        "machine": records.machine(device),
        "torch": str(torch.__version__),
        "date": records.provenance("")["date"],
        "command": "python -m tools.artifacts.text_to_image " + " ".join(sys.argv[1:]),
        "weights": "float16 EMA weights (loaded into float32 modules; the evaluation is of the rounded weights)",
    }
    print({k: v for k, v in info.items() if k != "history"}, flush=True)
    torch.save({"state_dict": state, "info": info}, ROOT / "data" / CHECKPOINT)
    checksums.register({CHECKPOINT: {}})


if __name__ == "__main__":
    main()
