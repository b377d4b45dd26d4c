"""utils.scene_reader, the judge of chapter 12: on real renders of utils.captions it reads back what was drawn,
and it says no to pictures that show something else."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import utils
from utils import captions as cap
from utils import scene_reader


@pytest.fixture(scope="module")
def renders():
    x, y = utils.load_mnist("test")
    images, _, scenes = cap.make_pairs(x, y, 400, held_out=True, seed=3)
    return images, scenes


def test_background_and_ink_invert_the_render():
    glyph = torch.zeros(28, 28)
    glyph[6:22, 12:16] = 1.0
    for colour in cap.COLOURS:
        picture = cap.render(cap.Scene(1, colour), (glyph,))
        index = scene_reader.background(picture[None])
        assert list(cap.COLOURS)[int(index)] == colour
        level = scene_reader.ink(picture[None], index)[0]
        ink = torch.zeros(48, 48)
        side = cap.SIZES["большой"][2]
        top = round(0.5 * 48 - side / 2)
        ink[top:top + side, top:top + side] = torch.nn.functional.interpolate(
            glyph[None, None], size=(side, side), mode="bilinear", align_corners=False, antialias=True)[0, 0]
        utils.assert_close(level, ink.clamp(0, 1), f"ink on the {colour} background", atol=1e-4)


def test_mnist_crop_centres_and_scales_like_mnist():
    level = torch.zeros(48, 48)
    level[5:15, 30:34] = 1.0  # a 10x4 bar in a corner
    crop = scene_reader.mnist_crop(level)
    rows, cols = torch.nonzero(crop > 0.5, as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == 20  # the longer side scaled to 20 px
    mass = crop / crop.sum()
    centre = ((mass.sum(1) * torch.arange(28.0)).sum(), (mass.sum(0) * torch.arange(28.0)).sum())
    assert all(abs(float(c) - 13.5) <= 1.0 for c in centre)
    assert float(scene_reader.mnist_crop(torch.zeros(48, 48)).abs().sum()) == 0


def test_judge_reads_real_renders_back(renders):
    images, scenes = renders
    verdict = scene_reader.judge(images, scenes)
    assert set(verdict) == {"digit", "colour", "size", "position", "attributes", "all"}
    assert verdict["colour"].mean() == 1.0
    assert verdict["attributes"].mean() >= 0.99
    assert verdict["digit"].mean() >= 0.95  # the course's MNIST classifier on re-cut digits


def test_judge_rejects_pictures_of_other_scenes(renders):
    images, scenes = renders
    wrong = []
    for s in scenes:
        colours = list(cap.COLOURS)
        other_colour = colours[(colours.index(s.colour) + 1) % len(colours)]
        wrong.append(cap.Scene(s.digit, other_colour, s.size, s.position, s.right))
    assert scene_reader.judge(images, wrong)["colour"].mean() == 0.0
    swapped = [cap.Scene(s.right, s.colour, right=s.digit) if s.right is not None else
               cap.Scene((s.digit + 1) % 10, s.colour, s.size, s.position) for s in scenes]
    assert scene_reader.judge(images, swapped)["digit"].mean() <= 0.05
    moved = [cap.Scene(s.digit, s.colour, "маленький" if s.size == "большой" else "большой",
                       "слева" if s.position != "слева" else "справа") if s.right is None else s for s in scenes]
    single = np.array([s.right is None for s in scenes])
    verdict = scene_reader.judge(images, moved)
    assert verdict["size"][single].mean() <= 0.02 and verdict["position"][single].mean() <= 0.02


def test_a_blank_picture_shows_no_digit():
    blank = cap.render(cap.Scene(3, "синий"), (torch.zeros(28, 28),))[None]
    verdict = scene_reader.judge(blank, [cap.Scene(3, "синий")])
    assert verdict["colour"].all() and not verdict["size"].any() and not verdict["all"].any()


def test_describe_reads_real_canvases_without_their_captions():
    """What the chapter 12 app writes under a picture: right (colour and every digit, one or two) on nearly every
    real canvas, as often as the judge that knows the caption."""
    x, y = utils.load_mnist("test")
    images, _, scenes = cap.make_pairs(x, y, 500, held_out=False, seed=3)
    read = scene_reader.describe(images)
    right = [text == f"фон: {s.colour}; " + (f"цифры: {s.digit} и {s.right}" if s.right is not None
                                              else f"цифра: {s.digit}") for text, s in zip(read, scenes, strict=True)]
    judged = scene_reader.judge(images, scenes)["all"].mean()
    print(f"describe right on {np.mean(right):.1%}, the judge on {judged:.1%}")
    assert np.mean(right) >= judged - 0.02
