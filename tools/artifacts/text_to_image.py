"""Train, evaluate and ship the text-to-image system of chapter 12_text_to_image (Stable Diffusion in miniature).

    python -m tools.artifacts.text_to_image autoencoder [--steps 5000] [--variant ink4] [--gan-from N]
    python -m tools.artifacts.text_to_image denoiser [--steps 10000] [--variant ink4]
    python -m tools.artifacts.text_to_image evaluate [--prompts 300] [--variant ink4]
    python -m tools.artifacts.text_to_image export [--variant ink4]

Every stage runs the chapter's own code (tools.artifacts.chapter_code): its Encoder, Decoder and
PatchDiscriminator with its autoencoder_loss and ink_weights; its encode_latents, LatentUNet,
diffusion_loss and CaptionSampler; its ddim_generate and the judge utils.scene_reader. The loops
here differ from the chapter's train_autoencoder and train_generator only in what a long CPU
training needs: the whole state is saved every 250 steps under data/cache/text_to_image/ and a
later sitting resumes from it, adding up the time.

1. `autoencoder`: 30 000 canvases of the seen compositions (MNIST train digits), the ink-weighted
   L1 + KL, and the patch-GAN term from step --gan-from (default: never).
2. `denoiser`: the latents of 60 000 other canvases (the autoencoder's means, scaled to unit
   variance), v-prediction with condition dropout, AdamW one-cycle, EMA 0.999 from step 200.
3. `evaluate`: the fp16-rounded weights, --prompts seen and held-out captions per group, guidance
   w = 1 and the chapter's default, 25 DDIM steps: the judge's agreement by one and two digits.
4. `export`: data/checkpoints/text_to_image_latent.pt, fp16 encoder, decoder and the denoiser's
   EMA, the latent scale and the record (settings, times, machine, the evaluation; the comparison
   of autoencoder variants of the record it replaces is kept).

The shipped weights were trained by the prototype of this script (same architecture and losses,
written before the design moved into the chapter); its command is in the record.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from tools import records
from tools.artifacts import checksums
from tools.artifacts.chapter_code import add_device_arguments, device_of, load_chapter
from tools.course import ROOT

CHAPTER = "12_text_to_image"
CHECKPOINT = "checkpoints/text_to_image_latent.pt"
AUTOENCODER_CANVASES = 30000
DENOISER_CANVASES = 60000
SAVE_EVERY = 250


def chapter_namespace(device: torch.device) -> dict:
    return load_chapter(CHAPTER, names=("CFG", "ALPHAS_CUMPROD", "clip", "LATENT_SIDE"),
                        context={"device": device, "FAST": False})


def cache_dir() -> Path:
    return ROOT / "data" / "cache" / "text_to_image"


def canvases(ch: dict, n: int, held_out: bool, seed: int) -> tuple[torch.Tensor, list]:
    """n rendered canvases in [0, 1] and their scenes (seen compositions from MNIST train digits, held-out ones
    from MNIST test digits), cached as uint8."""
    path = cache_dir() / f"canvases_{n}_{'held' if held_out else 'seen'}_{seed}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=False)
        return saved["images"].float() / 255, saved["scenes"]
    x, y = ch["utils"].load_mnist("test" if held_out else "train")
    images, _, scenes = ch["cap"].make_pairs(x, y, n, held_out=held_out, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"images": (images * 255).round().to(torch.uint8), "scenes": scenes}, path)
    return images, scenes


def _save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def train_autoencoder(ch: dict, variant: str, steps: int, batch: int, gan_from: int | None,
                      n_canvases: int = AUTOENCODER_CANVASES) -> dict:
    cfg = ch["CFG"]
    images, scenes = canvases(ch, n_canvases, held_out=False, seed=0)
    weights = ch["ink_weights"](images, scenes)
    path = cache_dir() / f"autoencoder_{variant}.state.pt"
    torch.manual_seed(0)
    enc, dec, disc = ch["Encoder"](), ch["Decoder"](), ch["PatchDiscriminator"]()
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.9))
    log, start = {"step": [], "total": [], "reconstruction": [], "kl": [], "seconds": 0.0}, 0
    if path.exists():
        state = torch.load(path, weights_only=False)
        for module, key in ((enc, "encoder"), (dec, "decoder"), (disc, "discriminator"), (opt, "opt"),
                            (opt_d, "opt_d")):
            module.load_state_dict(state[key])
        log, start = state["log"], state["step"]
        torch.set_rng_state(state["rng"])
        print(f"autoencoder {variant}: resuming after step {start}", flush=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, steps) / steps)))
    with warnings.catch_warnings():  # fast-forwarding the schedule of a resumed run, without optimiser steps
        warnings.simplefilter("ignore")
        for _ in range(start):
            schedule.step()
    tick = time.perf_counter()
    for step in range(start, steps):
        items = torch.randint(len(images), (batch,))
        x = images[items] * 2 - 1
        mean, logvar = enc(x)
        out = dec(mean + (0.5 * logvar).exp() * torch.randn_like(mean))
        adversarial = gan_from is not None and step >= gan_from
        parts = ch["autoencoder_loss"](x, out, mean, logvar, weights[items], cfg["kl_weight"],
                                       disc(out) if adversarial else None, cfg["gan_weight"])
        opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        opt.step()
        schedule.step()
        if adversarial:
            d_loss = torch.relu(1 - disc(x)).mean() + torch.relu(1 + disc(out.detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        if step % 50 == 0 or step == steps - 1:
            for key in ("total", "reconstruction", "kl"):
                log[key].append(round(parts[key].item(), 5))
            log["step"].append(step)
            print(f"autoencoder {variant} step {step}: total {parts['total'].item():.4f} "
                  f"({time.perf_counter() - tick:.0f} s)", flush=True)
        if (step + 1) % SAVE_EVERY == 0 or step == steps - 1:
            log["seconds"] += time.perf_counter() - tick
            tick = time.perf_counter()
            _save(path, {"encoder": enc.state_dict(), "decoder": dec.state_dict(), "discriminator": disc.state_dict(),
                         "opt": opt.state_dict(), "opt_d": opt_d.state_dict(), "log": log, "step": step + 1,
                         "rng": torch.get_rng_state(), "gan_from": gan_from, "batch": batch,
                         "canvases": n_canvases, "machine": records.machine(torch.device("cpu"))})
    return log


def load_autoencoder(ch: dict, variant: str):
    """The variant's encoder and decoder with their weights rounded to fp16, as they ship."""
    state = torch.load(cache_dir() / f"autoencoder_{variant}.state.pt", weights_only=False)
    return (ch["load_half"](ch["Encoder"](), fp16(state["encoder"])),
            ch["load_half"](ch["Decoder"](), fp16(state["decoder"])))


def fp16(weights: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}


def latents(ch: dict, variant: str, n_canvases: int = DENOISER_CANVASES) -> tuple[torch.Tensor, list, float]:
    """Unscaled latents of the denoiser's training canvases, their scenes and the scale 1 / std."""
    path = cache_dir() / f"latents_{variant}_{n_canvases}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=False)
        return saved["z"], saved["scenes"], saved["scale"]
    images, scenes = canvases(ch, n_canvases, held_out=False, seed=10)
    enc, _ = load_autoencoder(ch, variant)
    z = torch.cat([ch["encode_latents"](enc, images[i:i + 500], 1.0) for i in range(0, len(images), 500)])
    scale = float(1 / z.std())
    _save(path, {"z": z, "scenes": scenes, "scale": scale})
    return z, scenes, scale


def train_denoiser(ch: dict, variant: str, steps: int, batch: int, lr: float,
                   n_canvases: int = DENOISER_CANVASES) -> dict:
    z, scenes, scale = latents(ch, variant, n_canvases)
    z = z * scale
    captions_of = ch["CaptionSampler"](scenes)
    path = cache_dir() / f"denoiser_{variant}.state.pt"
    torch.manual_seed(0)
    model = ch["LatentUNet"]()
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.05)
    log, start = {"loss": [], "seconds": 0.0}, 0
    generator = torch.Generator().manual_seed(0)
    if path.exists():
        state = torch.load(path, weights_only=False)
        for module, key in ((model, "model"), (ema, "ema"), (opt, "opt"), (schedule, "schedule")):
            module.load_state_dict(state[key])
        log, start = state["log"], state["step"]
        generator.set_state(state["generator"])
        print(f"denoiser {variant}: resuming after step {start}", flush=True)
    tick, window = time.perf_counter(), []
    for step in range(start, steps):
        items = torch.randint(0, len(z), (batch,), generator=generator)
        loss = ch["diffusion_loss"](model, z[items], captions_of(items, generator), generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        decay = ch["CFG"]["ema_decay"] if step >= 200 else 0.0
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
                p_ema.lerp_(p, 1 - decay)
        window.append(loss.item())
        if len(window) == 50 or step == steps - 1:
            log["loss"].append(round(float(np.mean(window)), 5))
            window = []
            print(f"denoiser {variant} step {step + 1}: loss {log['loss'][-1]:.4f} "
                  f"({time.perf_counter() - tick:.0f} s)", flush=True)
        if (step + 1) % SAVE_EVERY == 0 or step == steps - 1:
            log["seconds"] += time.perf_counter() - tick
            tick = time.perf_counter()
            _save(path, {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                         "schedule": schedule.state_dict(), "log": log, "step": step + 1,
                         "generator": generator.get_state(), "scale": scale, "batch": batch, "lr": lr,
                         "canvases": n_canvases, "machine": records.machine(torch.device("cpu"))})
    return log


def system_of(ch: dict, variant: str) -> dict:
    """The variant's whole system as the chapter's load_course_generator returns it (fp16-rounded weights)."""
    state = torch.load(cache_dir() / f"denoiser_{variant}.state.pt", weights_only=False)
    encoder, decoder = load_autoencoder(ch, variant)
    return {"denoiser": ch["load_half"](ch["LatentUNet"](), fp16(state["ema"])), "decoder": decoder,
            "encoder": encoder, "scale": state["scale"]}


def evaluate(ch: dict, variant: str, prompts: int, ddim_steps: int = 25) -> dict:
    """The judge's agreement with the captions, by group and guidance: seen and held-out prompts of the chapter's
    evaluation_prompts (seeds 21 and 22, as its sweep), one picture each, noise seeds 100 + batch start."""
    system = system_of(ch, variant)
    out = {"prompts_per_group": prompts, "ddim_steps": ddim_steps, "weights": "fp16, as exported",
           "machine": records.machine(torch.device("cpu")), "threads": torch.get_num_threads()}
    for held_out in (False, True):
        scenes, texts = ch["evaluation_prompts"](held_out, prompts, 22 if held_out else 21)
        two = np.array([s.right is not None for s in scenes])
        for w in (1.0, ch["CFG"]["guidance"]):
            tick = time.perf_counter()
            images = ch["generate"](system, texts, w=w, steps=ddim_steps, seed=100)
            seconds = (time.perf_counter() - tick) / len(texts)
            verdict = ch["scene_reader"].judge(images, scenes)
            key = f"{'held_out' if held_out else 'seen'}_w{w:g}"
            out[key] = {"digit_one": float(verdict["digit"][~two].mean()),
                        "digit_two": float(verdict["digit"][two].mean()),
                        "attributes": float(verdict["attributes"].mean()), "all": float(verdict["all"].mean()),
                        "seconds_per_image": round(seconds, 4)}
            print(key, out[key], flush=True)
    _save(cache_dir() / f"evaluation_{variant}.pt", out)
    return out


def export(ch: dict, variant: str, target: Path | None = None) -> Path:
    """Both stages in fp16 with their record into ``target`` (default: the shipped checkpoint), registered."""
    ae_state = torch.load(cache_dir() / f"autoencoder_{variant}.state.pt", weights_only=False)
    state = torch.load(cache_dir() / f"denoiser_{variant}.state.pt", weights_only=False)
    evaluation_path = cache_dir() / f"evaluation_{variant}.pt"
    path = target or ROOT / "data" / CHECKPOINT
    previous = torch.load(path, weights_only=False)["info"] if path.exists() else {}
    cfg = ch["CFG"]
    record = {
        "autoencoder": {"config": {"latent": cfg["latent_channels"], "ink_weight": cfg["ink_weight"],
                                   "width": cfg["ae_width"], "deep": cfg["ae_deep"], "kl_weight": cfg["kl_weight"]},
                        "steps": ae_state["step"], "batch": ae_state["batch"], "canvases": ae_state["canvases"],
                        "gan_from": ae_state["gan_from"], "train_seconds": round(ae_state["log"]["seconds"], 1),
                        "machine": ae_state["machine"],
                        "variants": previous.get("autoencoder", {}).get("variants", {})},
        "denoiser": {"steps": state["step"], "batch": state["batch"], "lr": state["lr"],
                     "train_canvases": state["canvases"], "train_seconds": round(state["log"]["seconds"], 1),
                     "final_loss": state["log"]["loss"][-1], "machine": state["machine"]},
        "latent_scale": state["scale"],
        "evaluation": torch.load(evaluation_path, weights_only=False) if evaluation_path.exists() else {},
        **records.provenance(f"python -m tools.artifacts.text_to_image export --variant {variant}"),
    }
    half = {"encoder": fp16(ae_state["encoder"]), "decoder": fp16(ae_state["decoder"]), "denoiser": fp16(state["ema"])}
    torch.save({**half, "scale": state["scale"], "info": record}, path)
    if target is None:
        checksums.register({CHECKPOINT: {}})
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("autoencoder", "denoiser", "evaluate", "export"))
    parser.add_argument("--variant", default="ink4", help="a name: the state files are *_NAME.state.pt")
    parser.add_argument("--steps", type=int, help="default: 5000 (autoencoder), 10 000 (denoiser)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--gan-from", type=int, help="autoencoder: the adversarial term from this step on")
    parser.add_argument("--lr", type=float, default=1e-3, help="denoiser's peak learning rate")
    parser.add_argument("--prompts", type=int, default=300)
    add_device_arguments(parser)
    args = parser.parse_args()
    ch = chapter_namespace(device_of(args))
    if args.action == "autoencoder":
        train_autoencoder(ch, args.variant, args.steps or 5000, args.batch, args.gan_from)
    elif args.action == "denoiser":
        train_denoiser(ch, args.variant, args.steps or 10000, args.batch, args.lr)
    elif args.action == "evaluate":
        print(json.dumps(evaluate(ch, args.variant, args.prompts), indent=1))
    else:
        export(ch, args.variant)


if __name__ == "__main__":
    main()
