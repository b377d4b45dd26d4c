"""Prototype of issue 37's first stage: an autoencoder of chapter 12's 48x48 canvases into a 12x12x4 latent grid.

Maintainer's prototype, before the design moves into the chapter's own code: it measures whether a small
KL-regularised autoencoder trained for minutes on a CPU keeps the digits readable (the gate: the judge
utils.scene_reader reads at least 97% of the digits on reconstructions of held-out canvases), and what the
patch-GAN term of its last part changes. Trains two variants from the same start (with and without the
adversarial term), saves state every few hundred steps and resumes.

    python -m tools.prototypes.latent_autoencoder train [--steps 3000] [--gan-from 2000] [--variant gan|plain]
    python -m tools.prototypes.latent_autoencoder evaluate
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import utils
from tools import records
from tools.course import ROOT
from utils import captions as cap
from utils import scene_reader

CACHE = ROOT / "data" / "cache" / "latent_t2i"
OUT = ROOT / "results" / "diagnostics" / "latent_autoencoder.json"
LATENT_CHANNELS = 4


def canvases(n: int, held_out: bool, seed: int) -> tuple[torch.Tensor, list]:
    """n rendered canvases (uint8, n x 3 x 48 x 48) and their scenes, cached: digits from MNIST train for the
    seen compositions, from MNIST test for the held-out ones."""
    path = CACHE / f"canvases_{n}_{'held' if held_out else 'seen'}_{seed}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=False)
        return saved["images"], saved["scenes"]
    x, y = utils.load_mnist("test" if held_out else "train")
    images, _, scenes = cap.make_pairs(x, y, n, held_out=held_out, seed=seed)
    images = (images * 255).round().to(torch.uint8)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save({"images": images, "scenes": scenes}, path)
    return images, scenes


def to_model(images: torch.Tensor) -> torch.Tensor:
    return images.float().div(127.5).sub(1)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class Encoder(nn.Module):
    """48x48x3 -> mean and log-variance of a 12x12xLATENT_CHANNELS grid; the first step is a lossless
    pixel_unshuffle so that no convolution runs at full resolution."""

    def __init__(self, width: int = 32, deep: int = 64, latent: int = LATENT_CHANNELS):
        super().__init__()
        self.net = nn.Sequential(
            nn.PixelUnshuffle(2), nn.Conv2d(12, width, 3, padding=1), ResBlock(width),
            nn.Conv2d(width, deep, 3, stride=2, padding=1), ResBlock(deep), ResBlock(deep),
            nn.GroupNorm(8, deep), nn.SiLU(), nn.Conv2d(deep, 2 * latent, 3, padding=1))

    def forward(self, x):
        mean, logvar = self.net(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30, 20)


class Decoder(nn.Module):
    def __init__(self, width: int = 32, deep: int = 64, latent: int = LATENT_CHANNELS):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent, deep, 3, padding=1), ResBlock(deep), ResBlock(deep),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(deep, width, 3, padding=1), ResBlock(width),
            ResBlock(width), nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, 12, 3, padding=1),
            nn.PixelShuffle(2))

    def forward(self, z):
        return self.net(z)


class PatchDiscriminator(nn.Module):
    """Real/fake logits for overlapping patches (a 6x6 grid of them) rather than for the whole picture."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.GroupNorm(8, 2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1), nn.GroupNorm(8, 2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, padding=1))

    def forward(self, x):
        return self.net(x)


def kl_per_element(mean, logvar):
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()


def ink_levels(images: torch.Tensor, scenes: list) -> torch.Tensor:
    """Ink level (N, 1, 48, 48) of rendered canvases, read back with their known background colours."""
    colours = torch.tensor([list(cap.COLOURS).index(s.colour) for s in scenes])
    return torch.cat([scene_reader.ink(images[i:i + 1000].float() / 255, colours[i:i + 1000])
                      for i in range(0, len(images), 1000)]).unsqueeze(1)


def build(config: dict) -> tuple[nn.Module, nn.Module]:
    shape = dict(width=config.get("width", 32), deep=config.get("deep", 64),
                 latent=config.get("latent", LATENT_CHANNELS))
    return Encoder(**shape), Decoder(**shape)


def train(variant: str, steps: int, gan_from: int, batch: int, kl_weight: float, gan_weight: float,
          config: dict | None = None) -> dict:
    """``config``: width, deep, latent (channels) and ink_weight (the reconstruction error of a pixel is weighted
    1 + ink_weight * its ink level: strokes are 2-8% of a canvas, and a digit is only its strokes)."""
    config = config or {}
    images, scenes = canvases(30000, held_out=False, seed=0)
    weights = 1 + config.get("ink_weight", 0.0) * ink_levels(images, scenes)
    path = CACHE / f"autoencoder_{variant}.state.pt"
    torch.manual_seed(0)
    (enc, dec), disc = build(config), PatchDiscriminator()
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.9))
    log = {"step": [], "rec": [], "kl": [], "gen": [], "disc": [], "seconds": 0.0}
    start_step = 0
    if path.exists():
        state = torch.load(path, weights_only=False)
        for module, key in ((enc, "enc"), (dec, "dec"), (disc, "disc"), (opt, "opt"), (opt_d, "opt_d")):
            module.load_state_dict(state[key])
        log, start_step = state["log"], state["step"]
        torch.set_rng_state(state["rng"])
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, steps) / steps)))
    for _ in range(start_step):
        schedule.step()
    tick = time.perf_counter()
    for step in range(start_step, steps):
        items = torch.randint(len(images), (batch,))
        x = to_model(images[items])
        mean, logvar = enc(x)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        out = dec(z)
        rec = ((out - x).abs() * weights[items]).mean()
        kl = kl_per_element(mean, logvar)
        loss = rec + kl_weight * kl
        adversarial = step >= gan_from
        gen = torch.zeros(())
        if adversarial:
            gen = -disc(out).mean()
            loss = loss + gan_weight * gen
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        d_loss = torch.zeros(())
        if adversarial:
            d_loss = F.relu(1 - disc(x)).mean() + F.relu(1 + disc(out.detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        if step % 50 == 0 or step == steps - 1:
            for key, value in (("step", step), ("rec", rec.item()), ("kl", kl.item()), ("gen", gen.item()),
                               ("disc", d_loss.item())):
                log[key].append(round(value, 5) if isinstance(value, float) else value)
            print(f"{variant} step {step}: rec {rec.item():.4f} kl {kl.item():.3f} gen {gen.item():.3f} "
                  f"disc {d_loss.item():.3f} ({time.perf_counter() - tick:.0f} s)", flush=True)
        if (step + 1) % 250 == 0 or step == steps - 1 or step + 1 == gan_from:
            log["seconds"] += time.perf_counter() - tick
            tick = time.perf_counter()
            torch.save({"enc": enc.state_dict(), "dec": dec.state_dict(), "disc": disc.state_dict(),
                        "opt": opt.state_dict(), "opt_d": opt_d.state_dict(), "log": log, "step": step + 1,
                        "rng": torch.get_rng_state(), "config": config,
                        "machine": records.machine(torch.device("cpu"))}, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
            if step + 1 == gan_from:  # a variant without the adversarial term can branch off here: same start
                (CACHE / f"autoencoder_{variant}_at{gan_from}.state.pt").write_bytes(path.read_bytes())
    return log


@torch.no_grad()
def reconstruct(enc, dec, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    outs, means = [], []
    for i in range(0, len(images), 200):
        mean, _ = enc(to_model(images[i:i + 200]))
        means.append(mean)
        outs.append(dec(mean).add(1).div(2).clamp(0, 1))
    return torch.cat(outs), torch.cat(means)


def evaluate() -> dict:
    held, held_scenes = canvases(1000, held_out=True, seed=1)
    two = np.array([s.right is not None for s in held_scenes])
    # Variants whose state is no longer in the cache keep their earlier entries (a fresh checkout has no cache).
    result = json.loads(OUT.read_text(encoding="utf-8")) if OUT.exists() else {}
    result["held_out_canvases"] = len(held_scenes)
    real = scene_reader.judge(held.float() / 255, held_scenes)
    result["real"] = {"digit_one": float(real["digit"][~two].mean()), "digit_two": float(real["digit"][two].mean()),
                      "attributes": float(real["attributes"].mean())}
    for path in sorted(CACHE.glob("autoencoder_*.state.pt")):
        variant = path.name.removeprefix("autoencoder_").removesuffix(".state.pt")
        state = torch.load(path, weights_only=False)
        enc, dec = build(state.get("config", {}))
        enc.load_state_dict(state["enc"])
        dec.load_state_dict(state["dec"])
        enc.eval(), dec.eval()
        rec, means = reconstruct(enc, dec, held)
        verdict = scene_reader.judge(rec, held_scenes)
        result[variant] = {
            "steps": state["step"], "train_seconds": round(state["log"]["seconds"], 1),
            "digit_one": float(verdict["digit"][~two].mean()), "digit_two": float(verdict["digit"][two].mean()),
            "attributes": float(verdict["attributes"].mean()),
            "l1": float((rec - held.float() / 255).abs().mean()),
            "latent_std": float(means.std()), "parameters": sum(p.numel() for m in (enc, dec) for p in m.parameters()),
            "machine": state.get("machine", records.machine(torch.device("cpu"))),
        }
        print(variant, result[variant], flush=True)
        utils.show_images(torch.cat([held[:8].float() / 255, rec[:8]]), nrow=8, title=variant)
        import matplotlib.pyplot as plt
        plt.savefig(CACHE / f"reconstructions_{variant}.png")
        plt.close("all")
    result["machine"] = records.machine(torch.device("cpu"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("train", "evaluate"))
    parser.add_argument("--variant", default="gan", help="a name: the state file is autoencoder_NAME.state.pt")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--gan-from", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--kl-weight", type=float, default=1e-4)
    parser.add_argument("--gan-weight", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latent", type=int, default=LATENT_CHANNELS)
    parser.add_argument("--ink-weight", type=float, default=0.0)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--deep", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.action == "train":
        train(args.variant, args.steps, args.gan_from, args.batch, args.kl_weight, args.gan_weight,
              dict(latent=args.latent, ink_weight=args.ink_weight, width=args.width, deep=args.deep))
    else:
        evaluate()


if __name__ == "__main__":
    main()
