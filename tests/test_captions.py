"""utils.captions: captions say what the picture shows, and the held-out compositions are new as wholes only."""

from __future__ import annotations

import itertools

import pytest
import torch

from utils import captions
from utils.captions import COLOURS, POSITIONS, SIZES, Scene


def all_scenes() -> list[Scene]:
    singles = [Scene(d, c, s, p) for d, c, s, p in itertools.product(range(10), COLOURS, SIZES, POSITIONS)]
    pairs = [Scene(a, c, right=b) for a, b, c in itertools.product(range(10), range(10), COLOURS) if a != b]
    return singles + pairs


SCENES = all_scenes()
SEEN = [s for s in SCENES if not captions.is_held_out(s)]
HELD_OUT = [s for s in SCENES if captions.is_held_out(s)]


def words(texts) -> set[str]:
    return {w.strip(",") for t in texts for w in t.split()}


def test_every_digit_has_exactly_one_held_out_colour_and_all_its_others_seen():
    for digit in range(10):
        held = {c for c in COLOURS if captions.is_held_out(Scene(digit, c))}
        assert len(held) == 1
    assert 0 < sum(s.right is not None for s in HELD_OUT) < 0.25 * sum(s.right is not None for s in SCENES)


def test_held_out_captions_are_new_as_wholes_but_made_of_seen_words():
    seen_texts = {t for s in SEEN for t in captions.phrasings(s)}
    held_texts = {t for s in HELD_OUT for t in captions.phrasings(s)}
    assert not seen_texts & held_texts
    assert words(held_texts) <= words(seen_texts)


def test_each_phrasing_names_the_digits_and_the_colour():
    for scene in SCENES:
        texts = captions.phrasings(scene)
        assert len(texts) >= 4 and len(set(texts)) == len(texts)
        colour_forms = (scene.colour, COLOURS[scene.colour][0])
        for text in texts:
            assert any(form in text.split() or form + "," in text.split() for form in colour_forms), text
            for digit in {scene.digit, scene.right} - {None}:
                assert set(captions.DIGIT_WORDS[digit][:2]) & words([text]), text


def test_word_order_decides_which_digit_is_left():
    left_of = captions.phrasings(Scene(3, "синий", right=7))
    swapped = captions.phrasings(Scene(7, "синий", right=3))
    assert left_of[0] == "тройка слева от семёрки на синем фоне"
    assert swapped[0] == "семёрка слева от тройки на синем фоне"
    assert words(left_of) == words(swapped) and not set(left_of) & set(swapped)


def test_adjectives_agree_with_the_digit_noun():
    assert "большой ноль" in captions.phrasings(Scene(0, "серый"))[0]
    assert "маленькая девятка" in captions.phrasings(Scene(9, "серый", "маленький"))[0]


def ink_centre(picture: torch.Tensor, colour: str) -> tuple[float, float]:
    """Centre of mass of where the picture differs from the bare background."""
    tint = torch.tensor(COLOURS[colour][1]).view(3, 1, 1)
    ink = (picture - tint).abs().sum(0)
    rows, cols = torch.meshgrid(torch.arange(ink.shape[0]), torch.arange(ink.shape[1]), indexing="ij")
    return float((ink * rows).sum() / ink.sum()), float((ink * cols).sum() / ink.sum())


@pytest.fixture(scope="module")
def blob() -> torch.Tensor:
    glyph = torch.zeros(28, 28)
    glyph[6:22, 10:18] = 1.0
    return glyph


def test_render_puts_white_ink_where_the_caption_says(blob):
    for position, (_, (row, col)) in POSITIONS.items():
        picture = captions.render(Scene(1, "красный", "маленький", position), (blob,))
        assert picture.shape == (3, captions.CANVAS, captions.CANVAS)
        assert picture.min() >= 0 and picture.max() <= 1
        r, c = ink_centre(picture, "красный")
        assert abs(r - row * captions.CANVAS) < 2 and abs(c - col * captions.CANVAS) < 2, position
    big = captions.render(Scene(1, "красный", "большой"), (blob,))
    small = captions.render(Scene(1, "красный", "маленький"), (blob,))
    assert (big == 1).sum() > 2 * (small == 1).sum()
    corner = big[:, 0, 0]
    assert torch.allclose(corner, torch.tensor(COLOURS["красный"][1]))


def test_two_digits_are_rendered_left_and_right(blob):
    empty = torch.zeros(28, 28)
    left_only = captions.render(Scene(2, "синий", right=5), (blob, empty))
    right_only = captions.render(Scene(2, "синий", right=5), (empty, blob))
    assert ink_centre(left_only, "синий")[1] < captions.CANVAS / 2 < ink_centre(right_only, "синий")[1]


def test_make_pairs_keeps_the_split_and_is_reproducible():
    images = torch.rand(200, 1, 28, 28)
    labels = torch.arange(200) % 10
    pictures, texts, scenes = captions.make_pairs(images, labels, 64, held_out=False, seed=3)
    assert pictures.shape == (64, 3, captions.CANVAS, captions.CANVAS)
    assert not any(captions.is_held_out(s) for s in scenes)
    assert all(t in captions.phrasings(s) for t, s in zip(texts, scenes, strict=True))
    assert 10 < sum(s.right is not None for s in scenes) < 54
    _, _, held = captions.make_pairs(images, labels, 32, held_out=True, seed=3)
    assert all(captions.is_held_out(s) for s in held)
    again = captions.make_pairs(images, labels, 64, held_out=False, seed=3)
    assert torch.equal(again[0], pictures) and again[1] == texts
