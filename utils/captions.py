"""Image-caption pairs with Russian captions, built from MNIST digits (chapter 08, and the capstone).

Each picture is a small colour canvas showing one or two handwritten digits; its
caption states only what the picture really shows: which digit, how big and where
(one digit), or which digit is left of which (two digits), and the background
colour. Every fact has several phrasings, and the two-digit phrasings put the
digits in either order ("тройка слева от семёрки" = "семёрка справа от тройки"),
so a text encoder has to read words and their order, not a fixed template.

Some compositions never occur in training (``is_held_out``): one background
colour per digit, and some ordered pairs of digits. A zero-shot test on them asks
for captions never seen as a whole, made of words that were all seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

CANVAS = 48  # side of a picture, pixels

# Digit nouns: nominative, genitive, gender of the noun ("ноль" is masculine, the others feminine).
DIGIT_WORDS = (("ноль", "нуля", "m"), ("единица", "единицы", "f"), ("двойка", "двойки", "f"),
               ("тройка", "тройки", "f"), ("четвёрка", "четвёрки", "f"), ("пятёрка", "пятёрки", "f"),
               ("шестёрка", "шестёрки", "f"), ("семёрка", "семёрки", "f"), ("восьмёрка", "восьмёрки", "f"),
               ("девятка", "девятки", "f"))
# Background colours: nominative and prepositional of the adjective with "фон", and the RGB tint.
COLOURS = {"красный": ("красном", (0.85, 0.15, 0.15)), "зелёный": ("зелёном", (0.15, 0.65, 0.2)),
           "синий": ("синем", (0.15, 0.25, 0.85)), "жёлтый": ("жёлтом", (0.9, 0.8, 0.1)),
           "фиолетовый": ("фиолетовом", (0.55, 0.2, 0.75)), "серый": ("сером", (0.45, 0.45, 0.45))}
SIZES = {"большой": ("большой", "большая", 28), "маленький": ("маленький", "маленькая", 16)}
# Where one digit stands: two phrasings each, and the centre of the digit as (row, column) fractions.
POSITIONS = {"слева": (("слева", "в левой части"), (0.5, 0.27)), "справа": (("справа", "в правой части"), (0.5, 0.73)),
             "сверху": (("сверху", "вверху"), (0.27, 0.5)), "снизу": (("снизу", "внизу"), (0.73, 0.5)),
             "в центре": (("в центре", "посередине"), (0.5, 0.5))}
PAIR_SIZE = 22  # side of each digit of a two-digit picture


@dataclass(frozen=True)
class Scene:
    """What one picture shows. ``right`` is None for one digit; for two, ``size`` and ``position`` are unused."""

    digit: int
    colour: str
    size: str = "большой"
    position: str = "в центре"
    right: int | None = None


def is_held_out(scene: Scene) -> bool:
    """True for the compositions kept out of training: for every digit one background colour (its index in
    COLOURS equals the digit modulo the number of colours), and the ordered pairs (a, b) with (a + 2b) % 7 == 3."""
    colour_index = list(COLOURS).index(scene.colour)
    if scene.right is None:
        return colour_index == scene.digit % len(COLOURS)
    return (scene.digit + 2 * scene.right) % 7 == 3


def random_scene(rng: np.random.Generator, held_out: bool, two_digits: float = 0.5) -> Scene:
    """A scene drawn uniformly from the held-out compositions (``held_out=True``) or from the others."""
    while True:
        colour = str(rng.choice(list(COLOURS)))
        digit = int(rng.integers(10))
        if rng.random() < two_digits:
            right = int(rng.integers(10))
            if right == digit:
                continue
            scene = Scene(digit, colour, right=right)
        else:
            scene = Scene(digit, colour, str(rng.choice(list(SIZES))), str(rng.choice(list(POSITIONS))))
        if is_held_out(scene) == held_out:
            return scene


def phrasings(scene: Scene) -> list[str]:
    """Every caption of ``scene``: each one states all its facts, in different words and orders."""
    colour_nom, (colour_loc, _) = scene.colour, COLOURS[scene.colour]
    name, genitive, gender = DIGIT_WORDS[scene.digit]
    if scene.right is not None:
        right, right_genitive, _ = DIGIT_WORDS[scene.right]
        return [f"{name} слева от {right_genitive} на {colour_loc} фоне",
                f"{right} справа от {genitive} на {colour_loc} фоне",
                f"на {colour_loc} фоне {name} слева, {right} справа",
                f"слева {name}, справа {right}, фон {colour_nom}"]
    size = SIZES[scene.size][0 if gender == "m" else 1]
    captions = []
    for where in POSITIONS[scene.position][0]:
        captions += [f"{size} {name} {where} на {colour_loc} фоне",
                     f"на {colour_loc} фоне {where} {size} {name}",
                     f"{colour_nom} фон, {where} {size} {name}"]
    return captions


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """One of the scene's phrasings, chosen at random."""
    options = phrasings(scene)
    return options[int(rng.integers(len(options)))]


def _resized(glyph: torch.Tensor, side: int) -> torch.Tensor:
    return F.interpolate(glyph.view(1, 1, *glyph.shape[-2:]), size=(side, side), mode="bilinear",
                         align_corners=False, antialias=True).view(side, side)


def render(scene: Scene, glyphs: tuple[torch.Tensor, ...], canvas: int = CANVAS) -> torch.Tensor:
    """The picture of ``scene``, shape (3, canvas, canvas) in [0, 1]: white ink on the colour background.
    ``glyphs`` are 28x28 MNIST images in [0, 1] (ink = 1) of the digits, left to right."""
    ink = torch.zeros(canvas, canvas)
    if scene.right is None:
        side = SIZES[scene.size][2]
        row, col = POSITIONS[scene.position][1]
        places = [(round(row * canvas - side / 2), round(col * canvas - side / 2), side)]
    else:
        top, gap = (canvas - PAIR_SIZE) // 2, (canvas - 2 * PAIR_SIZE) // 3
        places = [(top, gap, PAIR_SIZE), (top, canvas - gap - PAIR_SIZE, PAIR_SIZE)]
    for glyph, (top, left, side) in zip(glyphs, places, strict=True):
        top, left = min(max(top, 0), canvas - side), min(max(left, 0), canvas - side)
        patch = ink[top:top + side, left:left + side]
        patch.copy_(torch.maximum(patch, _resized(glyph.float(), side).clamp(0, 1)))
    tint = torch.tensor(COLOURS[scene.colour][1]).view(3, 1, 1)
    return ink + (1 - ink) * tint


def make_pairs(images: torch.Tensor, labels: torch.Tensor, n: int, held_out: bool, seed: int = 0,
               two_digits: float = 0.5, canvas: int = CANVAS) -> tuple[torch.Tensor, list[str], list[Scene]]:
    """``n`` pictures (n, 3, canvas, canvas), a random caption of each, and their scenes, from the held-out
    compositions or from the others. Digits are drawn from ``images`` (n_images, 1, 28, 28) by their ``labels``."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    by_digit = [np.flatnonzero(labels == d) for d in range(10)]
    pictures, texts, scenes = [], [], []
    for _ in range(n):
        scene = random_scene(rng, held_out, two_digits)
        digits = (scene.digit,) if scene.right is None else (scene.digit, scene.right)
        glyphs = tuple(images[int(rng.choice(by_digit[d]))].squeeze(0) for d in digits)
        pictures.append(render(scene, glyphs, canvas))
        texts.append(caption(scene, rng))
        scenes.append(scene)
    return torch.stack(pictures), texts, scenes
