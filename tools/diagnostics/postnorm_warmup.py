"""Post-norm without warm-up: does chapter 10's GPT train when LayerNorm sits after the residual sum? (issue 38 §3)

The chapter teaches the pre-norm block and says the original post-norm block needs a learning-rate warm-up
(Xiong et al., 2020: with post-norm the gradients of the last layers are large at initialisation, and a full step
size from the first step spoils the training). This script measures it with the chapter's own code at its full-mode
size: its TinyLM (GPT, causal), windows, lm_loss and validation_loss, its AdamW, weight decay and gradient
clipping; at the chapter's depth and at twice it. Two blocks x two schedules x two peak learning rates x two depths,
one seed each, same batches:

- pre-norm: the chapter's TransformerBlock; post-norm: the same block with forward x = norm1(x + attn(x)),
  x = norm2(x + mlp(x)) (the model's final LayerNorm is kept; after a post-norm block it changes little);
- warm-up: the learning rate rises linearly over the first 10% of the steps (the chapter's OneCycle has the same
  10%), then a cosine decay to zero; no warm-up: the same cosine decay from the peak at step 0;
- peak learning rate: the chapter's full-mode 1e-3 and 3e-3 (its fast-mode value).

Also the gradient norm of each block at initialisation (one batch), last over first. Writes
results/diagnostics/postnorm_warmup.json as a run record ({"full": {"values": ...}}) so that chapter text quotes it
through tokens and tests/test_pitfalls_are_measured.py checks that the pitfall differs from the correct run.

    python -m tools.diagnostics.postnorm_warmup [--steps 400] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from tools import records
from tools.artifacts.chapter_code import add_device_arguments, device_of
from tools.artifacts.lm import chapter_namespace

NAME = "diagnostics/postnorm_warmup"
WARMUP_SHARE = 0.1
PEAK_LRS = (1e-3, 3e-3)
DEPTH_FACTORS = (1, 2)  # the chapter's full-mode depth and twice it


def lr_name(lr: float) -> str:
    """A key part without a dot (record tokens split paths at dots): 1e-3 -> lr1e-3."""
    return f"lr{lr:.0e}".replace("e-0", "e-")


def post_norm_block(ch: dict):
    """The chapter's TransformerBlock with LayerNorm after each residual sum (the 2017 paper's order)."""

    class PostNormBlock(ch["TransformerBlock"]):
        def forward(self, x):
            mask = ch["causal_mask"](x.shape[1]).to(x.device) if self.causal else None
            x = self.norm1(x + self.attn(x, mask)[0])
            return self.norm2(x + self.mlp(x))

    return PostNormBlock


def build(ch: dict, post: bool, depth: int, device: torch.device) -> torch.nn.Module:
    cfg = ch["CFG"]
    torch.manual_seed(0)
    model = ch["tiny_lm"](True, {**cfg, "depth": depth})
    if post:
        block = post_norm_block(ch)
        torch.manual_seed(0)
        model.blocks = torch.nn.Sequential(*[block(cfg["dim"], cfg["heads"], cfg["mlp_dim"], True)
                                             for _ in range(depth)])
    return model.to(device)


def block_gradient_norms(ch: dict, model: torch.nn.Module) -> list[float]:
    """Gradient norm of each block's parameters on one training batch at initialisation."""
    generator = torch.Generator().manual_seed(123)
    model.zero_grad()
    ch["lm_loss"](model, ch["windows"](ch["train_ids"], ch["CFG"]["batch_size"], generator), generator).backward()
    norms = [math.sqrt(sum(float(p.grad.norm()) ** 2 for p in block.parameters())) for block in model.blocks]
    model.zero_grad()
    return norms


def schedule(step: int, steps: int, warmup: bool) -> float:
    """Share of the peak learning rate at ``step``: linear warm-up (or none), then cosine decay to zero."""
    rise = min(1.0, (step + 1) / (WARMUP_SHARE * steps)) if warmup else 1.0
    return rise * 0.5 * (1 + math.cos(math.pi * step / steps))


def train(ch: dict, model: torch.nn.Module, steps: int, lr: float, warmup: bool) -> dict:
    """The chapter's train_lm step (AdamW, weight decay, clipping at 1.0) under the given schedule."""
    cfg = ch["CFG"]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: schedule(s, steps, warmup))
    generator = torch.Generator().manual_seed(0)
    losses, start = [], time.perf_counter()
    model.train()
    for _ in range(steps):
        loss = ch["lm_loss"](model, ch["windows"](ch["train_ids"], cfg["batch_size"], generator), generator)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    every = max(1, steps // 30)
    curve = [round(sum(losses[i:i + every]) / len(losses[i:i + every]), 4) for i in range(0, steps, every)]
    return {"val_loss": round(ch["validation_loss"](model), 4), "train_curve": curve, "curve_every": every,
            "first_tenth_loss": round(sum(losses[:steps // 10]) / (steps // 10), 4),
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    add_device_arguments(parser)
    args = parser.parse_args()
    device = device_of(args)
    ch = chapter_namespace(device)
    values, runs = {}, {}
    depths = [factor * ch["CFG"]["depth"] for factor in DEPTH_FACTORS]
    for depth, post in ((d, p) for d in depths for p in (False, True)):
        norm = f"{'post' if post else 'pre'}_depth{depth}"
        grads = block_gradient_norms(ch, build(ch, post, depth, device))
        values[f"{norm}_grad_last_over_first"] = round(grads[-1] / grads[0], 3)
        runs[f"{norm}_init_grad_norms"] = [round(g, 4) for g in grads]
        for lr in PEAK_LRS:
            for warmup in (True, False):
                key = f"{norm}_{lr_name(lr)}_{'warm' if warmup else 'cold'}"
                run = train(ch, build(ch, post, depth, device), args.steps, lr, warmup)
                runs[key] = run
                values[f"{key}_val_loss"] = run["val_loss"]
                values[f"{key}_first_tenth_loss"] = run["first_tenth_loss"]
                print(f"{key}: validation loss {run['val_loss']:.4f}, first tenth {run['first_tenth_loss']:.4f}, "
                      f"{run['seconds']:.0f} s", flush=True)
    cfg = ch["CFG"]
    setup = {"steps": args.steps, "warmup_share": WARMUP_SHARE, "peak_lrs": list(PEAK_LRS), "depths": depths,
             **{k: cfg[k] for k in ("dim", "heads", "mlp_dim", "batch_size", "weight_decay")}}
    path = records.write(NAME, {"full": {"values": values, "runs": runs, "setup": setup,
                                         **records.provenance("python -m tools.diagnostics.postnorm_warmup "
                                                              + " ".join(sys.argv[1:]))}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
