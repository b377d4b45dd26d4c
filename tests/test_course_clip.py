"""utils.course_clip: chapter 08's shipped CLIP for later chapters gives the same vectors as the chapter's own
model loaded from the same checkpoint, with no code of chapter 08's exercises."""

from __future__ import annotations

import pytest
import torch

import utils
from tools.artifacts.clip import chapter_namespace
from utils import captions as cap
from utils.course_clip import load_course_clip


@pytest.fixture(scope="module")
def both():
    ch = chapter_namespace(torch.device("cpu"))
    model, _ = ch["load_course_clip"]()
    return ch, model, load_course_clip()


def test_vectors_equal_the_chapter_model(both):
    ch, model, clip = both
    texts = ["тройка на жёлтом фоне", "маленькая пятёрка справа на синем фоне", "ноль", "двойка слева от семёрки"]
    utils.assert_close(clip.encode_text(texts), ch["embed_in_batches"](model.encode_text, texts), "text vectors",
                       atol=1e-5)
    x, y = utils.load_mnist("test")
    images, _, _ = cap.make_pairs(x, y, 16, held_out=True, seed=2)
    utils.assert_close(clip.encode_image(images), ch["embed_in_batches"](model.encode_image, images),
                       "image vectors", atol=1e-5)
    assert torch.allclose(clip.encode_text(texts).norm(dim=1), torch.ones(4), atol=1e-5)


def test_scores_and_unknown_words(both):
    _, _, clip = both
    x, y = utils.load_mnist("test")
    images, texts, _ = cap.make_pairs(x, y, 32, held_out=False, seed=4)
    own = clip.score(images, texts)
    shuffled = clip.score(images, texts[1:] + texts[:1])
    assert own.shape == (32,) and float(own.mean()) > float(shuffled.mean()) + 0.2
    assert clip.unknown_words("тройка на бирюзовом фоне") == ["бирюзовом"]
    assert clip.tokenize(["", "тройка"]).shape == (2, 1)  # an empty text reads as one unknown token
