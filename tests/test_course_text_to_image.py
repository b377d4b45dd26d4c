"""utils.course_text_to_image, the app's copy of chapter 12's inference code, against the chapter itself: the same
weights and noise must give the same pictures, and a system saved by the chapter's save_system must load."""

from __future__ import annotations

import pytest
import torch

from tools.artifacts.text_to_image import chapter_namespace
from utils import course_text_to_image as t2i
from utils.course_clip import load_course_clip

PROMPTS = ["большая тройка в центре на красном фоне", "двойка слева от восьмёрки на жёлтом фоне"]


@pytest.fixture(scope="module")
def chapter():
    return chapter_namespace(torch.device("cpu"))


@pytest.mark.parametrize("w", [1.0, 3.0])
def test_the_app_draws_what_the_chapter_draws(chapter, w, monkeypatch, tmp_path):
    monkeypatch.setattr(t2i, "student_file", lambda: tmp_path / "no such file")
    ours, name = t2i.load_system()
    assert name == "система курса"
    theirs, _ = chapter["load_course_generator"]()
    got = t2i.generate(ours, load_course_clip(), PROMPTS, w=w, steps=5, seed=7)
    want = chapter["generate"](theirs, PROMPTS, w=w, steps=5, seed=7)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_ranking_is_the_chapters_rerank(chapter):
    clip = load_course_clip()
    images = torch.rand(6, 3, 48, 48)
    ranked, scores = t2i.rank_by_clip(clip, images, PROMPTS[0])
    best, best_scores = chapter["rerank"](clip, images, PROMPTS[0], 6)
    torch.testing.assert_close(ranked, best)
    torch.testing.assert_close(scores, best_scores, atol=1e-5, rtol=0)


def test_a_system_saved_by_the_chapter_is_preferred(chapter, tmp_path, monkeypatch):
    system, _ = chapter["load_course_generator"]()
    path = chapter["save_system"](tmp_path / "mine.pt", system["denoiser"], system["decoder"], system["encoder"],
                                  system["scale"], note="проверка")
    monkeypatch.setattr(t2i, "student_file", lambda: path)
    mine, name = t2i.load_system()
    assert "ваша система" in name and "проверка" in name
    assert mine["scale"] == pytest.approx(system["scale"])
    course, name = t2i.load_system(prefer_student=False)
    assert name == "система курса"
    torch.save({"denoiser": {"wrong": torch.zeros(1)}, "decoder": {}, "scale": 1.0}, path)  # another architecture
    fallback, name = t2i.load_system()
    assert name == "система курса" and fallback is not None


def test_the_student_file_is_in_the_students_own_folder(monkeypatch, tmp_path):
    """On a shared hub the course's data/ belongs to the instructor: the saved system goes to the student's home."""
    monkeypatch.delenv("COURSE_USER_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert t2i.student_file().is_relative_to(tmp_path)
    monkeypatch.setenv("COURSE_USER_DIR", str(tmp_path / "mine"))
    assert t2i.student_file() == tmp_path / "mine" / t2i.STUDENT_FILE
