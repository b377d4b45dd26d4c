"""Prototype of issue 37's second stage: diffusion in the autoencoder's latent grid, conditioned on the course CLIP.

Maintainer's prototype (see tools/prototypes/latent_autoencoder.py for the first stage). Uses chapter 12's own
pieces where they exist (ConditionalBlock with FiLM, the caption table and sampler, condition dropout, the cosine
schedule, v-prediction, guided prediction) and adds what the latent design needs: a U-Net on the 12x12x4 latent
grid with coordinate channels and self-attention at 6x6 whose keys also see the text vector, latents scaled to unit
variance, and decoding through the autoencoder. Measures, with the judge, whether the requested digits appear.

    python -m tools.prototypes.latent_diffusion train [--steps 4000] [--autoencoder gan]
    python -m tools.prototypes.latent_diffusion evaluate [--prompts 200]
    python -m tools.prototypes.latent_diffusion export [--autoencoder ink4]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tools import records
from tools.artifacts.text_to_image import chapter_namespace
from tools.course import ROOT
from tools.prototypes import latent_autoencoder as ae

OUT = ROOT / "results" / "diagnostics" / "latent_diffusion.json"
TRAIN_CANVASES = 60000


def coordinates(batch: int, side: int, device) -> torch.Tensor:
    """Two channels with the row and column of each cell in [-1, 1]: where a convolution is, it cannot tell."""
    grid = torch.linspace(-1, 1, side, device=device)
    rows, cols = torch.meshgrid(grid, grid, indexing="ij")
    return torch.stack([rows, cols]).expand(batch, 2, side, side)


class TextAttention(nn.Module):
    """Self-attention over the cells of a grid whose keys and values also include the text vector as one more
    token, so that every cell can look up the caption, and cells can agree with each other (two digits)."""

    def __init__(self, channels: int, text_dim: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(8, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.text_kv = nn.Linear(text_dim, 2 * channels)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x, e):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)  # (B, HW, C) each
        tk, tv = self.text_kv(e).unsqueeze(1).chunk(2, dim=2)  # (B, 1, C)
        k, v = torch.cat([k, tk], 1), torch.cat([v, tv], 1)

        def split(t):
            return t.view(b, -1, self.heads, c // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        return x + self.proj(out.transpose(1, 2).reshape(b, h * w, c).transpose(1, 2).view(b, c, h, w))


class LatentUNet(nn.Module):
    """Predicts v of a latent x_t (B, 4, 12, 12) from the step t (B,) and a CLIP text vector e (B, 128)."""

    def __init__(self, block, embed, channels=(64, 128), cond_dim=128, text_dim=128, latent=ae.LATENT_CHANNELS):
        super().__init__()
        c1, c2 = channels
        self.embed, self.cond_dim = embed, cond_dim
        self.time_mlp = nn.Sequential(nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.text_mlp = nn.Sequential(nn.Linear(text_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.null = nn.Parameter(torch.zeros(text_dim))
        self.inc = nn.Conv2d(latent + 2, c1, 3, padding=1)
        self.down1a, self.down1b = block(c1, c1, cond_dim), block(c1, c1, cond_dim)
        self.downsample = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.down2 = block(c1, c2, cond_dim)
        self.attn2 = TextAttention(c2, text_dim)
        self.mid1, self.mid2 = block(c2, c2, cond_dim), block(c2, c2, cond_dim)
        self.mid_attn = TextAttention(c2, text_dim)
        self.up2 = block(2 * c2, c2, cond_dim)
        self.up_attn = TextAttention(c2, text_dim)
        self.up1a, self.up1b = block(c2 + c1, c1, cond_dim), block(c1, c1, cond_dim)
        self.out = nn.Sequential(nn.GroupNorm(8, c1), nn.SiLU(), nn.Conv2d(c1, latent, 3, padding=1))

    def forward(self, x, t, e):
        c = self.time_mlp(self.embed(t, self.cond_dim)) + self.text_mlp(e)
        h = self.inc(torch.cat([x, coordinates(len(x), x.shape[-1], x.device)], 1))
        h1 = self.down1b(self.down1a(h, c), c)
        h2 = self.attn2(self.down2(self.downsample(h1), c), e)
        h = self.mid2(self.mid_attn(self.mid1(h2, c), e), c)
        h = self.up_attn(self.up2(torch.cat([h, h2], 1), c), e)
        h = self.up1b(self.up1a(torch.cat([F.interpolate(h, scale_factor=2.0), h1], 1), c), c)
        return self.out(h)


def fp16(weights: dict) -> dict:
    """A state dict with its floating-point tensors in fp16: how the exported checkpoint stores them."""
    return {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}


def as_shipped(module: nn.Module) -> nn.Module:
    """The module with its weights rounded to fp16 and back, so that the evaluation measures the shipped weights."""
    module.load_state_dict(fp16(module.state_dict()))  # load_state_dict copies them back into the fp32 parameters
    return module


def load_autoencoder(variant: str):
    state = torch.load(ae.CACHE / f"autoencoder_{variant}.state.pt", weights_only=False)
    enc, dec = ae.build(state.get("config", {}))
    enc.load_state_dict(state["enc"])
    dec.load_state_dict(state["dec"])
    return as_shipped(enc.eval()), as_shipped(dec.eval())


@torch.no_grad()
def latents(variant: str) -> tuple[torch.Tensor, list, float]:
    path = ae.CACHE / f"latents_{variant}_{TRAIN_CANVASES}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=False)
        return saved["z"], saved["scenes"], saved["scale"]
    images, scenes = ae.canvases(TRAIN_CANVASES, held_out=False, seed=10)
    enc, _ = load_autoencoder(variant)
    z = torch.cat([enc(ae.to_model(images[i:i + 500]))[0] for i in range(0, len(images), 500)])
    scale = float(1 / z.std())
    torch.save({"z": z, "scenes": scenes, "scale": scale}, path)
    return z, scenes, scale


def train(variant: str, steps: int, batch: int, lr: float) -> None:
    ch = chapter_namespace(torch.device("cpu"))
    z, scenes, scale = latents(variant)
    z = z * scale
    captions_of = ch["CaptionSampler"](scenes)
    path = ae.CACHE / f"diffusion_{variant}.state.pt"
    torch.manual_seed(0)
    model = LatentUNet(ch["ConditionalBlock"], ch["sinusoidal_embedding"], latent=z.shape[1])
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
    print(f"parameters: {sum(p.numel() for p in model.parameters())}, latent scale {scale:.3f}", flush=True)
    tick, window = time.perf_counter(), []
    for step in range(start, steps):
        items = torch.randint(0, len(z), (batch,), generator=generator)
        loss = ch["diffusion_loss"](model, z[items], captions_of(items, generator), generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        decay = 0.999 if step >= 200 else 0.0
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
                p_ema.lerp_(p, 1 - decay)
        window.append(loss.item())
        if len(window) == 50:
            log["loss"].append(round(float(np.mean(window)), 5))
            window = []
            print(f"step {step + 1}: loss {log['loss'][-1]:.4f} ({time.perf_counter() - tick:.0f} s)", flush=True)
        if (step + 1) % 250 == 0 or step == steps - 1:
            log["seconds"] += time.perf_counter() - tick
            tick = time.perf_counter()
            torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                        "schedule": schedule.state_dict(), "log": log, "step": step + 1,
                        "generator": generator.get_state(), "scale": scale,
                        "machine": records.machine(torch.device("cpu"))}, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)


@torch.no_grad()
def sample(ch, model, dec, scale, e, w, steps, seed) -> torch.Tensor:
    """DDIM in the latent grid with guidance w, then the decoder: pictures (B, 3, 48, 48) in [0, 1]."""
    x = torch.randn(len(e), model.out[-1].out_channels, 12, 12, generator=torch.Generator().manual_seed(seed))
    abar = ch["ALPHAS_CUMPROD"]
    times = torch.linspace(len(abar) - 1, 0, steps).round().long().tolist()
    for i, step in enumerate(times):
        t = torch.full((len(e),), step)
        v = model(x, t, e) if w == 1 else ch["guided_prediction"](model, x, t, e, model.null, w)
        a, a_next = abar[step], (abar[times[i + 1]] if i + 1 < len(times) else torch.tensor(1.0))
        x0 = a.sqrt() * x - (1 - a).sqrt() * v
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
    return dec(x / scale).add(1).div(2).clamp(0, 1)


def evaluate(variant: str, prompts: int, ddim_steps: int) -> dict:
    ch = chapter_namespace(torch.device("cpu"))
    state = torch.load(ae.CACHE / f"diffusion_{variant}.state.pt", weights_only=False)
    latent = state["ema"]["inc.weight"].shape[1] - 2
    model = LatentUNet(ch["ConditionalBlock"], ch["sinusoidal_embedding"], latent=latent)
    model.load_state_dict(state["ema"])
    as_shipped(model.eval())
    _, dec = load_autoencoder(variant)
    out = {"autoencoder": variant, "steps": state["step"], "train_seconds": round(state["log"]["seconds"], 1),
           "parameters": sum(p.numel() for p in model.parameters()), "ddim_steps": ddim_steps,
           "final_loss": state["log"]["loss"][-1], "machine": records.machine(torch.device("cpu")),
           "weights": "fp16, as exported"}
    shown = []
    for held_out in (False, True):
        scenes, texts = ch["evaluation_prompts"](held_out, prompts, 22 if held_out else 21)
        two = np.array([s.right is not None for s in scenes])
        e = ch["clip"].encode_text(texts)
        for w in (1.0, 3.0):
            tick = time.perf_counter()
            images = torch.cat([sample(ch, model, dec, state["scale"], e[i:i + 100], w, ddim_steps, 100 + i)
                                for i in range(0, len(e), 100)])
            seconds = (time.perf_counter() - tick) / len(e)
            verdict = ch["scene_reader"].judge(images, scenes)
            key = f"{'held_out' if held_out else 'seen'}_w{w:g}"
            out[key] = {"digit_one": float(verdict["digit"][~two].mean()),
                        "digit_two": float(verdict["digit"][two].mean()),
                        "attributes": float(verdict["attributes"].mean()), "all": float(verdict["all"].mean()),
                        "seconds_per_image": round(seconds, 4)}
            print(key, out[key], flush=True)
            shown.append(images[:12])
    import matplotlib.pyplot as plt

    import utils
    utils.show_images(torch.cat(shown), nrow=12, title="seen w1, seen w3, held w1, held w3")
    plt.savefig(ae.CACHE / f"samples_{variant}_{state['step']}.png")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return out


def export(variant: str) -> Path:
    """Both stages' weights in fp16 (encoder, decoder, the denoiser's EMA) with their training record and the last
    evaluation, into data/checkpoints/text_to_image_latent.pt: the prototype's result survives a fresh checkout
    (the cache does not) and is what the chapter will load."""
    from tools.artifacts import checksums

    ae_state = torch.load(ae.CACHE / f"autoencoder_{variant}.state.pt", weights_only=False)
    state = torch.load(ae.CACHE / f"diffusion_{variant}.state.pt", weights_only=False)
    stages = (("encoder", ae_state["enc"]), ("decoder", ae_state["dec"]), ("denoiser", state["ema"]))
    half = {key: fp16(weights) for key, weights in stages}
    evaluation = json.loads(OUT.read_text(encoding="utf-8")) if OUT.exists() else {}
    autoencoder = json.loads(ae.OUT.read_text(encoding="utf-8")).get(variant, {}) if ae.OUT.exists() else {}
    record = {"autoencoder": {"config": ae_state.get("config", {}), "steps": ae_state["step"],
                              "train_seconds": round(ae_state["log"]["seconds"], 1), "evaluation": autoencoder},
              "denoiser": {"steps": state["step"], "train_seconds": round(state["log"]["seconds"], 1),
                           "train_canvases": TRAIN_CANVASES, "final_loss": state["log"]["loss"][-1],
                           "machine": state.get("machine")},
              "latent_scale": state["scale"], "evaluation": evaluation,
              **records.provenance(f"python -m tools.prototypes.latent_diffusion export --autoencoder {variant}")}
    path = ROOT / "data" / "checkpoints" / "text_to_image_latent.pt"
    torch.save({**half, "scale": state["scale"], "info": record}, path)
    checksums.register({"checkpoints/text_to_image_latent.pt": {}})
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("train", "evaluate", "export"))
    parser.add_argument("--autoencoder", default="gan", help="the autoencoder variant's name")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--ddim-steps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.action == "train":
        train(args.autoencoder, args.steps, args.batch, args.lr)
    elif args.action == "evaluate":
        evaluate(args.autoencoder, args.prompts, args.ddim_steps)
    else:
        export(args.autoencoder)


if __name__ == "__main__":
    main()
