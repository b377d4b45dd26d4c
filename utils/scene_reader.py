"""Read back what a picture of ``utils.captions`` shows: the judge of generated pictures (chapter 12).

A rendered picture is ``ink + (1 - ink) * tint``. The reader inverts that:
- the background colour is the palette tint nearest to the picture's median colour
  (the background covers most pixels);
- the ink follows per pixel from ``1 - x = (1 - ink) (1 - tint)`` by least squares over the channels;
- every digit is cut out of the ink, centred the way MNIST digits are (longer side
  20 px, centre of mass in the middle of 28x28) and classified by the course's
  MNIST classifier (``utils.metrics``); a two-digit picture is split at its middle;
- size and position of a single digit come from its ink's bounding box and centre.

Judging by reading back, rather than with a network trained on generated pictures,
keeps the judge independent of any generator; ``judge`` on real renders is its
own error rate (``tests/test_scene_reader.py`` bounds it).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import captions, metrics

INK_THRESHOLD = 0.5  # ink level that counts as a stroke for bounding boxes
BIG_MIN_SIDE = 17  # ink extent in pixels from which a digit reads as "большой" (renders: about 20 vs 11)


def palette() -> torch.Tensor:
    """The background tints of ``captions.COLOURS``, (n_colours, 3), in their order."""
    return torch.tensor([tint for _, tint in captions.COLOURS.values()])


def background(images: torch.Tensor) -> torch.Tensor:
    """Index into ``captions.COLOURS`` of each picture's background, (N,); ``images`` (N, 3, H, W) in [0, 1]."""
    median = images.flatten(2).median(dim=2).values  # (N, 3)
    return torch.cdist(median, palette()).argmin(1)


def ink(images: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """Ink level (N, H, W) in [0, 1] of each picture given its background colour index."""
    paper = 1 - palette()[colours].view(-1, 3, 1, 1)  # 1 - tint
    ground = ((1 - images.clamp(0, 1)) * paper).sum(1) / (paper ** 2).sum(1)  # least-squares 1 - ink
    return (1 - ground).clamp(0, 1)


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def mnist_crop(level: torch.Tensor) -> torch.Tensor:
    """A (H, W) ink map as an MNIST-style 28x28 digit: bounding box scaled to 20 px on its longer side, centre
    of mass moved to the middle. An empty map gives an empty digit."""
    out = torch.zeros(28, 28)
    box = _box((level > INK_THRESHOLD).numpy())
    if box is None:
        return out
    top, bottom, left, right = box
    patch = level[top:bottom, left:right]
    scale = 20 / max(patch.shape)
    h, w = max(1, round(patch.shape[0] * scale)), max(1, round(patch.shape[1] * scale))
    patch = F.interpolate(patch[None, None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0, 0]
    r0, c0 = (28 - h) // 2, (28 - w) // 2
    out[r0:r0 + h, c0:c0 + w] = patch
    mass = out.sum()
    rows, cols = torch.arange(28.0), torch.arange(28.0)
    dr = round(13.5 - float((out.sum(1) * rows).sum() / mass))
    dc = round(13.5 - float((out.sum(0) * cols).sum() / mass))
    return torch.roll(out, shifts=(dr, dc), dims=(0, 1))


def judge(images: torch.Tensor, scenes: list[captions.Scene]) -> dict[str, np.ndarray]:
    """Which requested facts each picture shows, as boolean arrays over the pictures.

    ``digit``: every requested digit is recognised where it should stand (for two digits: the left one on the
    left half, the right one on the right half, which also checks their order); ``colour``: the background;
    ``size`` and ``position``: of a single digit (True for two-digit scenes, which have neither);
    ``attributes``: colour, size and position together; ``all``: everything.
    """
    images = images.detach().float().cpu()
    colours = background(images)
    levels = ink(images, colours)
    side = images.shape[-1]
    crops, owners = [], []
    size_ok, position_ok = np.ones(len(scenes), bool), np.ones(len(scenes), bool)
    centres = {name: np.array(centre) * side for name, (_, centre) in captions.POSITIONS.items()}
    for i, scene in enumerate(scenes):
        level = levels[i]
        if scene.right is None:
            crops.append(mnist_crop(level))
            owners.append((i, scene.digit))
            box = _box((level > INK_THRESHOLD).numpy())
            if box is None:
                size_ok[i] = position_ok[i] = False
                continue
            extent = max(box[1] - box[0], box[3] - box[2])
            size_ok[i] = (extent >= BIG_MIN_SIDE) == (scene.size == "большой")
            mass = level.numpy() * (level.numpy() > INK_THRESHOLD)
            centre = np.array([(mass.sum(1) * np.arange(side)).sum(), (mass.sum(0) * np.arange(side)).sum()])
            centre = centre / mass.sum() + 0.5
            nearest = min(centres, key=lambda name: np.linalg.norm(centres[name] - centre))
            position_ok[i] = nearest == scene.position
        else:
            half = side // 2
            crops += [mnist_crop(level[:, :half]), mnist_crop(level[:, half:])]
            owners += [(i, scene.digit), (i, scene.right)]
    predicted = metrics.classifier_probabilities(torch.stack(crops).unsqueeze(1)).argmax(1)
    digit_ok = np.ones(len(scenes), bool)
    for (i, wanted), got in zip(owners, predicted, strict=True):
        digit_ok[i] &= bool(wanted == got)
    wanted_colours = np.array([list(captions.COLOURS).index(s.colour) for s in scenes])
    colour_ok = colours.numpy() == wanted_colours
    attributes = colour_ok & size_ok & position_ok
    return {"digit": digit_ok, "colour": colour_ok, "size": size_ok, "position": position_ok,
            "attributes": attributes, "all": digit_ok & attributes}


def describe(images: torch.Tensor) -> list[str]:
    """What the judge reads on each picture without knowing the caption, in Russian: the background colour and the
    digit(s). A picture whose ink lies in both halves (each with at least a tenth of it) with almost none in the
    four middle columns is read as two digits, left half and right half; otherwise as one. Used by the chapter 12
    app under each picture."""
    images = images.detach().float().cpu()
    colours = background(images)
    levels = ink(images, colours)
    half = images.shape[-1] // 2
    crops, counts = [], []
    for level in levels:
        mass = (level * (level > INK_THRESHOLD)).sum(0)
        total = float(mass.sum())
        apart = float(mass[half - 2:half + 2].sum()) <= 0.02 * total
        two = total > 0 and apart and min(float(mass[:half].sum()), float(mass[half:].sum())) >= total / 10
        crops += [mnist_crop(level[:, :half]), mnist_crop(level[:, half:])] if two else [mnist_crop(level)]
        counts.append(2 if two else 1)
    digits = metrics.classifier_probabilities(torch.stack(crops).unsqueeze(1)).argmax(1).tolist()
    names = list(captions.COLOURS)
    out, k = [], 0
    for colour, n in zip(colours.tolist(), counts, strict=True):
        read = " и ".join(str(d) for d in digits[k:k + n])
        out.append(f"фон: {names[colour]}; {'цифры' if n == 2 else 'цифра'}: {read}")
        k += n
    return out
