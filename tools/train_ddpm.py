"""Train, export and evaluate the diffusion checkpoint shipped with chapter 05_ddpm.

    .venv/bin/python -m tools.train_ddpm [--steps 11800] [--skip-eval] [--device cuda]
    .venv/bin/python -m tools.train_ddpm --base-channels 48 --half-weights --device cuda   # a wider net
    .venv/bin/python -m tools.train_ddpm --evaluate-only   # re-measure (and re-export) the shipped weights
    .venv/bin/python -m tools.train_ddpm --evaluate-only --samplers ddim50_noise_low   # re-measure some
    .venv/bin/python -m tools.train_ddpm --ddim-sweep 50 100 --eta 0 0.5   # diagnostic, writes nothing
    .venv/bin/python -m tools.train_ddpm --ddim-sweep 50 --eta 1 --split 200 800   # where noise helps

Uses the chapter's own code (tools.chapter_code), the full MNIST training set
when it is in data/cache/ (after `make data`) or else the committed subset,
and writes under data/checkpoints/:
- ddpm_mnist.pt: EMA weights of the chapter's UNet (state dict) plus the
  training settings and figures, loadable into a UNet built as the chapter's
  table says with the recorded ``base_channels`` (32 unless trained wider);
  with --half-weights the weights are stored in float16 (a base-48 network
  keeps both files under the 10 MB data limit only so), and everything is
  evaluated and exported from the rounded weights, so the figures are those
  of what ships;
- ddpm_mnist.pt2: the same network as a torch.export program, which samples
  without any UNet class (for students whose architecture differs).
Then it samples 1000 images with DDPM (T steps) and DDIM (50 and 20 steps,
deterministic with eta=0 and stochastic with eta=1, and DDIM-50 with eta=1 on
only the low-noise or only the high-noise half of the steps), times each
sampler and scores the images with utils.metrics; every figure goes into
utils/checksums.json next to the files' sha256 and into the checkpoint's
metadata, where the notebook reads it.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import time
from pathlib import Path

import torch

import utils
from tools.build_data import update_readme
from tools.chapter_code import load_chapter
from utils.download import file_digest

ROOT = Path(__file__).resolve().parents[1]
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


@torch.no_grad()
def ddim_split_sample(model, shape, schedule, num_steps: int, eta: float, split: int, noisy: str):
    """DDIM that adds its eta-noise only on the steps with t < ``split`` (``noisy="low"``, the low-noise
    end of the trajectory) or t >= ``split`` (``noisy="high"``), and is deterministic on the others.

    A diagnostic, not chapter material: it locates where along the trajectory the fresh noise of
    stochastic DDIM pays off. The step is the chapter's ``ddim_sample`` step, and with every step on
    the noisy side it draws the same random numbers, so it returns exactly what ``ddim_sample`` returns
    (tests/test_ddpm_checkpoint.py checks both ends).
    """
    if noisy not in ("low", "high"):
        raise ValueError("noisy must be 'low' or 'high'")
    T = len(schedule.betas)
    steps = torch.linspace(0, T - 1, num_steps).round().long().tolist()
    x = torch.randn(shape, device=utils.model_device(model))
    for i in reversed(range(num_steps)):
        t = steps[i]
        eta_t = eta if (t < split) == (noisy == "low") else 0.0
        abar = float(schedule.alphas_cumprod[t])
        abar_prev = float(schedule.alphas_cumprod[steps[i - 1]]) if i > 0 else 1.0
        eps = model(x, torch.full((shape[0],), t, dtype=torch.long, device=x.device))
        x0_hat = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
        sigma = eta_t * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
        x = math.sqrt(abar_prev) * x0_hat + math.sqrt(max(1 - abar_prev - sigma ** 2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn_like(x)
    return x


def standard_samplers(ch: dict, model, schedule) -> dict:
    """The samplers the chapter's tables compare: DDPM; DDIM with 50 and 20 steps at eta 0 and 1; and
    DDIM-50 with eta=1 only below (``_noise_low``) or only above (``_noise_high``) the middle step T/2."""
    half = len(schedule.betas) // 2
    return {
        "ddpm": lambda shape: ch["sample"](model, shape, schedule),
        "ddim50": lambda shape: ch["ddim_sample"](model, shape, schedule, num_steps=50),
        "ddim20": lambda shape: ch["ddim_sample"](model, shape, schedule, num_steps=20),
        "ddim50_eta1": lambda shape: ch["ddim_sample"](model, shape, schedule, num_steps=50, eta=1.0),
        "ddim20_eta1": lambda shape: ch["ddim_sample"](model, shape, schedule, num_steps=20, eta=1.0),
        "ddim50_noise_low": lambda shape: ddim_split_sample(model, shape, schedule, 50, 1.0, half, "low"),
        "ddim50_noise_high": lambda shape: ddim_split_sample(model, shape, schedule, 50, 1.0, half, "high"),
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
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=11800)  # the shipped checkpoint: 4.9 min on an H100
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
    parser.add_argument("--samplers", nargs="+", metavar="NAME",
                        help="with --evaluate-only: re-measure only these samplers of the standard set and "
                             "keep the recorded figures of the others (each sampler is seeded on its own, "
                             "so the figures are those of a full run)")
    parser.add_argument("--ddim-sweep", type=int, nargs="+", metavar="STEPS",
                        help="diagnostic: score DDIM of the shipped weights at these step counts "
                             "(and each --eta); prints, writes nothing")
    parser.add_argument("--eta", type=float, nargs="+", default=[0.0], metavar="ETA",
                        help="the eta values --ddim-sweep tries (default: 0, deterministic)")
    parser.add_argument("--split", type=int, nargs="+", metavar="T",
                        help="with --ddim-sweep: instead of plain DDIM, add the eta-noise only below "
                             "or only above each of these steps (see ddim_split_sample)")
    args = parser.parse_args()

    ch = load_chapter("05_ddpm")
    device = utils.get_device(args.device)
    if args.ddim_sweep:
        model, _, schedule = load_shipped(ch)
        model = model.to(device, memory_format=torch.channels_last)
        utils.seed_everything(0)
        evaluate(sweep_samplers(ch, model, schedule, args.ddim_sweep, args.eta, args.split), args.n_eval,
                 batch=250)
        return
    if args.evaluate_only:
        reevaluate(ch, args.n_eval, device, only=args.samplers)
        return
    if args.samplers:
        parser.error("--samplers needs --evaluate-only")
    utils.seed_everything(0)
    images, _ = utils.load_mnist("train", scale="-11", source="auto")
    schedule = ch["NoiseSchedule"](ch["linear_beta_schedule"](args.timesteps))
    # channels_last makes the CPU convolutions about 1.5x faster; the weights are the same.
    model = ch["UNet"](base_channels=args.base_channels).to(device, memory_format=torch.channels_last)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"training UNet ({n_params:,} parameters) on {len(images)} images for {args.steps} steps "
          f"on {describe_device(device)}", flush=True)
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
        "device": describe_device(device),
        "torch": str(torch.__version__),
    }
    print(f"trained in {seconds / 60:.1f} min, final loss {info['final_loss']}", flush=True)
    if not args.skip_eval:
        fast = copy.deepcopy(ema).to(device, memory_format=torch.channels_last)
        info["evaluation"] = evaluate(standard_samplers(ch, fast, schedule), args.n_eval, batch=250)
        info["evaluation_device"] = describe_device(device)
    weights, program = ROOT / "data" / WEIGHTS, ROOT / "data" / PROGRAM
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": storage_state(ema, dtype), "info": info, "loss_curve": losses[::10]}, weights)
    export_program(ema, program)
    register(info)


def sweep_samplers(ch: dict, model, schedule, step_counts, etas, splits=None) -> dict:
    """The --ddim-sweep samplers: plain DDIM per step count and eta, or with ``splits`` its
    noise-below and noise-above variants at each split step."""
    if not splits:
        return {f"ddim{k}_eta{eta:g}": lambda shape, k=k, eta=eta: ch["ddim_sample"](
                    model, shape, schedule, num_steps=k, eta=eta)
                for k in step_counts for eta in etas}
    return {f"ddim{k}_eta{eta:g}_{noisy}{split}": lambda shape, k=k, eta=eta, split=split, noisy=noisy: (
                ddim_split_sample(model, shape, schedule, k, eta, split, noisy))
            for k in step_counts for eta in etas for split in splits for noisy in ("low", "high")}


def describe_device(device: torch.device) -> str:
    """Where training or sampling ran, in the words the README and the notebook quote."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads ({platform.processor() or platform.machine()})"


def reevaluate(ch: dict, n_eval: int, device: torch.device, only: list[str] | None = None) -> None:
    """Measure the shipped weights again on ``device`` and store the new figures.

    With ``only``, just those samplers are measured and merged into the recorded
    evaluation, which must come from the same kind of device (CPU and CUDA draw
    different random numbers), and without their seconds: a machine's speed
    changes between runs (a 2-core CPU sampled DDIM-50 in 66 s in one session and
    140 s in another), so only timings of one run are compared. Otherwise the
    torch.export twin is written again from the weights, so that it matches this
    PyTorch version (weights trained elsewhere arrive without it)."""
    model, checkpoint, schedule = load_shipped(ch)
    info = checkpoint["info"]
    if not only:
        export_program(model, ROOT / "data" / PROGRAM)
    here, before = describe_device(device), info.get("evaluation_device")
    samplers = standard_samplers(ch, model.to(device, memory_format=torch.channels_last), schedule)
    if only:
        unknown = sorted(set(only) - set(samplers))
        if unknown:
            raise SystemExit(f"unknown samplers {unknown}; the standard set is {sorted(samplers)}")
        if before != here:
            raise SystemExit(f"the recorded evaluation ran on {before!r}, not here ({here!r}): "
                             "its random numbers differ, so re-measure everything instead")
        utils.seed_everything(0)
        measured = evaluate({name: samplers[name] for name in only}, n_eval, batch=250)
        if measured["real"] != info["evaluation"]["real"]:
            raise SystemExit("the real-image floor differs from the recorded one: not the same evaluation")
        for name in only:
            del measured[name]["seconds"]
            info["evaluation"][name] = measured[name]
    else:
        utils.seed_everything(0)
        if "evaluation" in info and before and before != here:  # keep e.g. the training run's GPU figures
            info.setdefault("evaluation_elsewhere", {})[before] = info["evaluation"]
        info["evaluation"] = evaluate(samplers, n_eval, batch=250)
        info["evaluation_device"] = here
    torch.save(checkpoint, ROOT / "data" / WEIGHTS)
    register(info)


def load_shipped(ch: dict):
    """The shipped EMA network (eval mode, on the CPU), its checkpoint and its noise schedule."""
    checkpoint = torch.load(ROOT / "data" / WEIGHTS, map_location="cpu", weights_only=True)
    schedule = ch["NoiseSchedule"](ch["linear_beta_schedule"](checkpoint["info"]["timesteps"]))
    model = ch["UNet"](base_channels=checkpoint["info"].get("base_channels", 32))
    model.load_state_dict(checkpoint["state_dict"])  # casts float16 weights back to float32
    return model.eval(), checkpoint, schedule


def register(info: dict) -> None:
    """Record both files' sha256, size, training settings and evaluation in utils/checksums.json."""
    checksums_path = ROOT / "utils" / "checksums.json"
    checksums = json.loads(checksums_path.read_text())
    for relative in (WEIGHTS, PROGRAM):
        file = ROOT / "data" / relative
        checksums[relative] = {"sha256": file_digest(file), "bytes": file.stat().st_size,
                               "trained": {k: v for k, v in info.items() if not k.startswith("evaluation")}}
        print(f"{relative}: {file.stat().st_size / 1e6:.2f} MB")
    if "evaluation" in info:
        checksums[WEIGHTS]["evaluation"] = {k: {m: v for m, v in r.items() if m != "histogram"}
                                            for k, r in info["evaluation"].items()}
        checksums[WEIGHTS]["evaluation_device"] = info.get("evaluation_device", "CPU")
    checksums_path.write_text(json.dumps(checksums, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    update_readme()


if __name__ == "__main__":
    main()
