"""Train, export and evaluate the diffusion checkpoint shipped with chapter 05_ddpm.

    python -m tools.artifacts.ddpm [--steps 11800] [--skip-eval] [--device cuda]
    python -m tools.artifacts.ddpm --base-channels 48 --half-weights --device cuda   # a wider network
    python -m tools.artifacts.ddpm --evaluate-only   # re-measure (and re-export) the shipped weights

Uses the chapter's own code (tools.artifacts.chapter_code), the full MNIST
training set when it is in data/cache/ (after `make data`) or else the
committed subset, and writes under data/checkpoints/:
- ddpm_mnist.pt: EMA weights of the chapter's UNet (state dict) and the
  checkpoint's record ("info": training settings, and the evaluation below),
  loadable into a UNet built as the chapter's table says with the recorded
  ``base_channels``; with --half-weights the weights are stored in float16
  and everything is evaluated and exported from the rounded weights, so the
  figures are those of what ships;
- ddpm_mnist.pt2: the same network as a torch.export program, which samples
  without any UNet class (for students whose architecture differs).
The evaluation samples 1000 images with DDPM (T steps) and DDIM (50 and 20
steps, deterministic with eta=0 and stochastic with eta=1), times each sampler
and scores the images with utils.metrics. The record is the one place these
figures live: the notebook prints them from it, docs/results.md and the
chapter text quote them through `make release`.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

import utils
from tools import records
from tools.artifacts import checksums
from tools.artifacts.chapter_code import load_chapter
from tools.course import ROOT

WEIGHTS = "checkpoints/ddpm_mnist.pt"
PROGRAM = "checkpoints/ddpm_mnist.pt2"


def round_to_storage(model, dtype: torch.dtype):
    """Round ``model``'s floating-point weights in place to ``dtype`` and back, so that the network that is
    evaluated and exported computes exactly what the stored (possibly float16) weights compute."""
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype))
    return model


def storage_state(model, dtype: torch.dtype) -> dict:
    """``model``'s state dict as saved: floating-point tensors in ``dtype``, contiguous.

    ``load_state_dict`` casts them back into a float32 UNet."""
    return {k: (v.to(dtype) if v.is_floating_point() else v).contiguous()
            for k, v in model.state_dict().items()}


def export_program(model, path: Path) -> None:
    """Save ``model`` as a torch.export program with a free batch size."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    example = (torch.randn(2, 1, 28, 28), torch.tensor([0, 1]))
    program = torch.export.export(model.eval(), example, dynamic_shapes={"x": {0: batch}, "t": {0: batch}})
    torch.export.save(program, path)


def standard_samplers(ch: dict, model, schedule) -> dict:
    """The samplers the chapter's tables compare: DDPM; DDIM with 50 and 20 steps at eta 0 and 1."""
    return {
        "ddpm": lambda shape: ch["sample"](model, shape, schedule),
        "ddim50": lambda shape: ch["ddim_sample"](model, shape, schedule, num_steps=50),
        "ddim20": lambda shape: ch["ddim_sample"](model, shape, schedule, num_steps=20),
        "ddim50_eta1": lambda shape: ch["ddim_sample"](model, shape, schedule, num_steps=50, eta=1.0),
        "ddim20_eta1": lambda shape: ch["ddim_sample"](model, shape, schedule, num_steps=20, eta=1.0),
    }


def evaluate(samplers: dict, n: int, batch: int, seed: int = 0) -> dict:
    """Sample ``n`` images with each sampler; seconds, FID-style score, feature spread and class coverage
    of each. The entry "real" is the score of ``n`` held-out test images: the floor at this ``n``."""
    results = {"real": {"fid": round(utils.metrics.real_image_score(n, seed=seed), 2)}}
    print(f"real: {results['real']}", flush=True)
    for name, run in samplers.items():
        torch.manual_seed(seed)
        start = time.perf_counter()
        chunks = [run((min(batch, n - i), 1, 28, 28)).cpu() for i in range(0, n, batch)]
        images = torch.cat(chunks).clamp(-1, 1)
        seconds = time.perf_counter() - start
        coverage = utils.metrics.class_coverage(images, value_range="-11")
        results[name] = {
            "seconds": round(seconds, 1),
            "fid": round(utils.metrics.fid_score(images, value_range="-11"), 2),
            "spread": round(utils.metrics.feature_spread(images, value_range="-11"), 3),
            "min_share": round(coverage["min_share"], 4),
            "confident_share": round(coverage["confident_share"], 4),
            "histogram": [round(float(h), 4) for h in coverage["histogram"]],
        }
        print(f"{name}: {results[name]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=11800)  # the shipped checkpoint's
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--timesteps", type=int, default=1000)
    parser.add_argument("--base-channels", type=int, default=32,
                        help="the UNet's base_channels (32, the chapter's default, for the shipped network)")
    parser.add_argument("--half-weights", action="store_true",
                        help="store the weights in float16 (half the .pt file; needed above base 40 to keep "
                             "both files under 10 MB) and evaluate and export the rounded weights")
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--device", default=None, help="default: utils.get_device() (CUDA when there)")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="re-evaluate the shipped weights instead of training new ones")
    args = parser.parse_args()

    ch = load_chapter("05_ddpm")
    device = utils.get_device(args.device)
    if args.evaluate_only:
        reevaluate(ch, args.n_eval, device)
        return
    utils.seed_everything(0)
    images, _ = utils.load_mnist("train", scale="-11", source="auto")
    schedule = ch["NoiseSchedule"](ch["linear_beta_schedule"](args.timesteps))
    # channels_last makes the CPU convolutions about 1.5x faster; the weights are the same.
    model = ch["UNet"](base_channels=args.base_channels).to(device, memory_format=torch.channels_last)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"training UNet ({n_params:,} parameters) on {len(images)} images for {args.steps} steps "
          f"on {records.machine(device)}", flush=True)
    start = time.perf_counter()
    ema, losses = ch["train_diffusion"](model, images, schedule, steps=args.steps,
                                        batch_size=args.batch_size, lr=args.lr)
    seconds = time.perf_counter() - start
    dtype = torch.float16 if args.half_weights else torch.float32
    ema = round_to_storage(ema.to("cpu", memory_format=torch.contiguous_format).eval(), dtype)
    info = {
        "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "ema_decay": 0.999,
        "timesteps": args.timesteps, "schedule": "linear", "n_train": len(images), "parameters": n_params,
        "base_channels": args.base_channels, "weights_dtype": str(dtype).removeprefix("torch."),
        "seconds": round(seconds, 1), "final_loss": round(sum(losses[-200:]) / len(losses[-200:]), 4),
        "device": records.machine(device), "torch": str(torch.__version__),
    }
    print(f"trained in {seconds / 60:.1f} min, final loss {info['final_loss']}", flush=True)
    if not args.skip_eval:
        fast = copy.deepcopy(ema).to(device, memory_format=torch.channels_last)
        info["evaluation"] = evaluate(standard_samplers(ch, fast, schedule), args.n_eval, batch=250)
        info["evaluation_device"] = records.machine(device)
    weights = ROOT / "data" / WEIGHTS
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": storage_state(ema, dtype), "info": info, "loss_curve": losses[::10]}, weights)
    export_program(ema, ROOT / "data" / PROGRAM)
    register()


def reevaluate(ch: dict, n_eval: int, device: torch.device) -> None:
    """Measure the shipped weights again on ``device`` and store the new figures in their record.

    The torch.export twin is written again from the weights, so that it matches
    this PyTorch version (weights trained elsewhere arrive without it). The
    figures of an evaluation on another kind of device (CPU and CUDA draw
    different random numbers) are kept under "evaluation_elsewhere"."""
    model, checkpoint, schedule = load_shipped(ch)
    info = checkpoint["info"]
    export_program(model, ROOT / "data" / PROGRAM)
    here, before = records.machine(device), info.get("evaluation_device")
    samplers = standard_samplers(ch, model.to(device, memory_format=torch.channels_last), schedule)
    utils.seed_everything(0)
    if "evaluation" in info and before and before != here:
        info.setdefault("evaluation_elsewhere", {})[before] = info["evaluation"]
    info["evaluation"] = evaluate(samplers, n_eval, batch=250)
    info["evaluation_device"] = here
    torch.save(checkpoint, ROOT / "data" / WEIGHTS)
    register()


def load_shipped(ch: dict):
    """The shipped EMA network (eval mode, on the CPU), its checkpoint and its noise schedule."""
    checkpoint = torch.load(ROOT / "data" / WEIGHTS, map_location="cpu", weights_only=True)
    schedule = ch["NoiseSchedule"](ch["linear_beta_schedule"](checkpoint["info"]["timesteps"]))
    model = ch["UNet"](base_channels=checkpoint["info"].get("base_channels", 32))
    model.load_state_dict(checkpoint["state_dict"])  # casts float16 weights back to float32
    return model.eval(), checkpoint, schedule


def register() -> None:
    """Register both files' checksums; their figures stay in the checkpoint's record."""
    checksums.register({WEIGHTS: {}, PROGRAM: {}})
    for relative in (WEIGHTS, PROGRAM):
        print(f"{relative}: {(ROOT / 'data' / relative).stat().st_size / 1e6:.2f} MB")
    print("run `make release` to update docs/results.md and the chapter text")


if __name__ == "__main__":
    main()
