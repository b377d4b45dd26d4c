"""Chapter 12's text-to-image system as a ready tool for its web app (demo/text_to_image.py).

The chapter teaches and builds the system; the app must run where a student has only
``modules/``, ``utils`` and ``data/``, so it cannot import the chapter. This module is the
inference half of the chapter's code, with the same layer names so that the same weights load:
the latent denoiser (FiLM blocks, coordinate channels, attention to the text vector), the
decoder of the canvas autoencoder, DDIM in the latents with classifier-free guidance, and
ordering by the course CLIP. tests/test_course_text_to_image.py checks that it draws exactly
what the chapter's code draws from the same weights and noise.

``load_system`` reads a system the student's notebook saved (chapter 12, section 15: ``student_file()``,
in the student's home, since on a shared hub the course's ``data/`` is not theirs to write) or the course's
(``data/checkpoints/text_to_image_latent.pt``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .datasets import load_checkpoint

COURSE_FILE = "text_to_image_latent.pt"
STUDENT_FILE = "my_text_to_image.pt"
TIMESTEPS = 1000
LATENT_SIDE = 12


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-np.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def coordinates(batch: int, side: int, device) -> torch.Tensor:
    grid = torch.linspace(-1, 1, side, device=device)
    rows, cols = torch.meshgrid(grid, grid, indexing="ij")
    return torch.stack([rows, cols]).expand(batch, 2, side, side)


class ConditionalBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, cond_dim: int):
        super().__init__()
        self.film = nn.Linear(cond_dim, 2 * out_channels)
        self.norm1 = nn.GroupNorm(8, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x, c):
        h = self.conv1(F.silu(self.norm1(x)))
        gamma, beta = self.film(F.silu(c)).chunk(2, dim=1)
        h = self.norm2(h) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        return self.conv2(F.silu(h)) + self.skip(x)


class TextAttention(nn.Module):
    def __init__(self, channels: int, text_dim: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(8, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.text_kv = nn.Linear(text_dim, 2 * channels)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x, e):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)
        text_k, text_v = self.text_kv(e).unsqueeze(1).chunk(2, dim=2)
        k, v = torch.cat([k, text_k], 1), torch.cat([v, text_v], 1)

        def split(y):
            return y.view(b, -1, self.heads, c // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        return x + self.proj(out.transpose(1, 2).reshape(b, h * w, c).transpose(1, 2).view(b, c, h, w))


class LatentUNet(nn.Module):
    def __init__(self, channels=(64, 128), cond_dim: int = 128, text_dim: int = 128, latent: int = 4):
        super().__init__()
        c1, c2 = channels
        self.cond_dim = cond_dim
        self.time_mlp = nn.Sequential(nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.text_mlp = nn.Sequential(nn.Linear(text_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.null = nn.Parameter(torch.zeros(text_dim))
        self.inc = nn.Conv2d(latent + 2, c1, 3, padding=1)
        self.down1a, self.down1b = ConditionalBlock(c1, c1, cond_dim), ConditionalBlock(c1, c1, cond_dim)
        self.downsample = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.down2 = ConditionalBlock(c1, c2, cond_dim)
        self.attn2 = TextAttention(c2, text_dim)
        self.mid1, self.mid2 = ConditionalBlock(c2, c2, cond_dim), ConditionalBlock(c2, c2, cond_dim)
        self.mid_attn = TextAttention(c2, text_dim)
        self.up2 = ConditionalBlock(2 * c2, c2, cond_dim)
        self.up_attn = TextAttention(c2, text_dim)
        self.up1a, self.up1b = ConditionalBlock(c2 + c1, c1, cond_dim), ConditionalBlock(c1, c1, cond_dim)
        self.out = nn.Sequential(nn.GroupNorm(8, c1), nn.SiLU(), nn.Conv2d(c1, latent, 3, padding=1))

    def forward(self, x, t, e):
        c = self.time_mlp(sinusoidal_embedding(t, self.cond_dim)) + self.text_mlp(e)
        h = self.inc(torch.cat([x, coordinates(len(x), x.shape[-1], x.device)], 1))
        h1 = self.down1b(self.down1a(h, c), c)
        h2 = self.attn2(self.down2(self.downsample(h1), c), e)
        h = self.mid2(self.mid_attn(self.mid1(h2, c), e), c)
        h = self.up_attn(self.up2(torch.cat([h, h2], 1), c), e)
        h = self.up1b(self.up1a(torch.cat([F.interpolate(h, scale_factor=2.0), h1], 1), c), c)
        return self.out(h)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class Decoder(nn.Module):
    def __init__(self, width: int = 32, deep: int = 64, latent: int = 4):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent, deep, 3, padding=1), ResBlock(deep), ResBlock(deep),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(deep, width, 3, padding=1), ResBlock(width),
            ResBlock(width), nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, 12, 3, padding=1),
            nn.PixelShuffle(2))

    def forward(self, z):
        return self.net(z)


def cosine_alphas_cumprod(timesteps: int = TIMESTEPS, s: float = 0.008) -> torch.Tensor:
    steps = torch.arange(timesteps + 1, dtype=torch.float64)
    f = torch.cos((steps / timesteps + s) / (1 + s) * np.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, 0).float()


def _module(module: nn.Module, weights: dict) -> nn.Module:
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()})
    return module.eval()


def student_file() -> Path:
    """Where chapter 12 saves the student's system: ``$COURSE_USER_DIR`` if set, else ``~/.cache/dl-course-ru``."""
    folder = os.environ.get("COURSE_USER_DIR")
    return (Path(folder) if folder else Path.home() / ".cache" / "dl-course-ru") / STUDENT_FILE


def load_system(prefer_student: bool = True) -> tuple[dict | None, str]:
    """The system the student saved in chapter 12 (if any and ``prefer_student``), else the course's: a dict with
    ``denoiser``, ``decoder`` and ``scale``, and a Russian line naming which one it is; (None, reason) when neither
    can be loaded."""
    if prefer_student and student_file().exists():
        try:
            saved = torch.load(student_file(), map_location="cpu", weights_only=True)
            system = {"denoiser": _module(LatentUNet(), saved["denoiser"]),
                      "decoder": _module(Decoder(), saved["decoder"]), "scale": float(saved["scale"])}
            return system, f"ваша система из главы 12 ({saved.get('info', {}).get('note', str(student_file()))})"
        except (RuntimeError, KeyError) as error:
            print(f"ваша система не подходит к архитектуре курса ({type(error).__name__}); берём систему курса")
    checkpoint = load_checkpoint(COURSE_FILE)
    if checkpoint is None:
        return None, f"нет файла data/checkpoints/{COURSE_FILE}"
    system = {"denoiser": _module(LatentUNet(), checkpoint["denoiser"]),
              "decoder": _module(Decoder(), checkpoint["decoder"]), "scale": float(checkpoint["scale"]),
              "info": checkpoint["info"]}
    return system, "система курса"


@torch.no_grad()
def sample(system: dict, e: torch.Tensor, w: float = 3.0, steps: int = 25, seed: int = 0) -> torch.Tensor:
    """Pictures (B, 3, 48, 48) in [0, 1] for text vectors ``e`` (B, 128): DDIM in the latents with guidance w."""
    model = system["denoiser"]
    z = torch.randn(len(e), model.out[-1].out_channels, LATENT_SIDE, LATENT_SIDE,
                    generator=torch.Generator().manual_seed(seed))
    abar = cosine_alphas_cumprod()
    times = torch.linspace(TIMESTEPS - 1, 0, steps).round().long().tolist()
    for i, step in enumerate(times):
        t = torch.full((len(e),), step)
        if w == 1:
            v = model(z, t, e)
        else:
            both = model(torch.cat([z, z]), torch.cat([t, t]), torch.cat([e, model.null.expand_as(e)]))
            v_text, v_null = both.chunk(2)
            v = v_null + w * (v_text - v_null)
        a, a_next = abar[step], (abar[times[i + 1]] if i + 1 < len(times) else torch.tensor(1.0))
        z0 = a.sqrt() * z - (1 - a).sqrt() * v
        eps = (z - a.sqrt() * z0) / (1 - a).sqrt()
        z = a_next.sqrt() * z0 + (1 - a_next).sqrt() * eps
    return ((system["decoder"](z / system["scale"]) + 1) / 2).clamp(0, 1)


def generate(system: dict, clip, prompts: list[str], w: float = 3.0, steps: int = 25, seed: int = 0,
             batch_size: int = 100) -> torch.Tensor:
    """One picture per prompt, batches of ``batch_size`` with noise seeds seed, seed + 100, ... as in the chapter."""
    e = clip.encode_text(list(prompts))
    return torch.cat([sample(system, e[i:i + batch_size], w, steps, seed + i) for i in range(0, len(e), batch_size)])


def rank_by_clip(clip, images: torch.Tensor, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The pictures ordered by their CLIP cosine with the prompt, best first, and the cosines."""
    scores = clip.score(images, [prompt] * len(images))
    order = scores.argsort(descending=True)
    return images[order], scores[order]
