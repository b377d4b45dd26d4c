"""The course's trained CLIP of chapter 08 as a ready tool for later chapters (the text-to-image project).

Chapter 08 teaches and trains it (``tools/artifacts/clip.py``); later chapters only use
it: to turn a Russian prompt into a vector and to score how well a picture matches a
prompt. So that they need none of chapter 08's graded code, the text side runs the
shipped ``torch.export`` program of its text encoder, and the image side is rebuilt
from the weights' shapes (stride-2 convolution blocks and a linear head).
"""

from __future__ import annotations

import functools
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from .datasets import load_checkpoint, subset_file

NAME = "clip_mnist"
PAD, UNK = 0, 1


def words(text: str) -> list[str]:
    """Lower-case words and commas: the tokens of chapter 08's closed vocabulary."""
    return re.findall(r"\w+|,", text.lower())


def _image_encoder(state: dict) -> nn.Module:
    """Chapter 08's image encoder rebuilt from its state dict: conv (stride 2), batch norm, ReLU blocks, a head."""
    layers, i = [], 0
    while f"features.{i}.weight" in state:
        out_c, in_c = state[f"features.{i}.weight"].shape[:2]
        layers += [nn.Conv2d(in_c, out_c, 3, stride=2, padding=1), nn.BatchNorm2d(out_c), nn.ReLU()]
        i += 3
    head = state["head.weight"]
    model = nn.ModuleDict({"features": nn.Sequential(*layers, nn.Flatten()),
                           "head": nn.Linear(head.shape[1], head.shape[0])})
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


class CourseCLIP:
    """Normalised text and image vectors of the course's CLIP, on the CPU, without gradients."""

    def __init__(self, checkpoint: dict, text_program):
        state = checkpoint["state_dict"]
        self.vocab, self.info = checkpoint["vocab"], checkpoint["info"]
        self.max_len = self.info["config"]["max_len"]
        self.image_encoder = _image_encoder({k[len("image_encoder."):]: v for k, v in state.items()
                                             if k.startswith("image_encoder.")})
        self.text_program = text_program
        self.text_projection = state["text_projection.weight"].float()
        self.logit_scale = float(state["logit_scale"].float().exp().clamp(max=100))

    def unknown_words(self, text: str) -> list[str]:
        """Words of ``text`` outside the vocabulary (the model reads each of them as one unknown token)."""
        return sorted({w for w in words(text) if w not in self.vocab})

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids (len(texts), L), padded with PAD to the longest text of at most ``max_len`` tokens."""
        ids = [[self.vocab.get(w, UNK) for w in words(t)][:self.max_len] or [UNK] for t in texts]
        out = torch.full((len(ids), max(map(len, ids))), PAD, dtype=torch.long)
        for row, seq in enumerate(ids):
            out[row, :len(seq)] = torch.tensor(seq)
        return out

    @torch.no_grad()
    def encode_text(self, texts: list[str], batch_size: int = 500) -> torch.Tensor:
        """Unit vectors (len(texts), 128) of the texts."""
        parts = [self.text_program(self.tokenize(texts[i:i + batch_size])).float() @ self.text_projection.T
                 for i in range(0, len(texts), batch_size)]
        return F.normalize(torch.cat(parts), dim=-1)

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Unit vectors (N, 128) of pictures (N, 3, 48, 48) in [0, 1]."""
        encoder = self.image_encoder
        parts = [encoder["head"](encoder["features"](images[i:i + batch_size].float().cpu()))
                 for i in range(0, len(images), batch_size)]
        return F.normalize(torch.cat(parts), dim=-1)

    def score(self, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Cosine (N,) between each picture and its text (one text for all, or one per picture)."""
        text = self.encode_text(texts)
        return (self.encode_image(images) * text).sum(-1)


@functools.cache
def load_course_clip() -> CourseCLIP | None:
    """The shipped CLIP of ``data/checkpoints/clip_mnist.pt``, or None where the data folder lacks it."""
    checkpoint = load_checkpoint(f"{NAME}.pt")
    if checkpoint is None:
        return None
    program = torch.export.load(subset_file(f"checkpoints/{NAME}_text.pt2")).module()
    return CourseCLIP(checkpoint, program)
