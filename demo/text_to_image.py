"""Chapter 12's text-to-image app: a Russian caption in, a grid of generated pictures with their CLIP scores out.

    make text2image        (streamlit run demo/text_to_image.py on port 8502)
    utils.show_app("text_to_image", port=8502)      (from the chapter's notebook, also on Colab)

Needs only what a student has (utils, data/): the system is rebuilt by utils.course_text_to_image
from the weights the student's notebook saved (chapter 12, section 15: utils.course_text_to_image.student_file())
or, without them, from the course's (data/checkpoints/text_to_image_latent.pt); the caption's vector
and the ordering come from the course CLIP (utils.course_clip), and under each picture stands its
cosine and what the judge (utils.scene_reader.describe) reads on it. The form's button generates;
results are cached per caption and settings. Works offline; everything a user reads is Russian.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import streamlit as st
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demo.pictures import picture  # noqa: E402
from utils import captions as cap  # noqa: E402
from utils import course_text_to_image as t2i  # noqa: E402
from utils import scene_reader  # noqa: E402
from utils.course_clip import load_course_clip  # noqa: E402

EXAMPLES = ["большая тройка в центре на красном фоне", "маленькая семёрка слева на синем фоне",
            "двойка слева от восьмёрки на жёлтом фоне", "ноль на красном фоне"]


@st.cache_resource(show_spinner="Загружаем систему и CLIP…")
def load(prefer_student: bool):
    """The system (the student's or the course's), what it is, and the course CLIP (once per server and choice)."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    system, name = t2i.load_system(prefer_student)
    return system, name, load_course_clip()


@st.cache_data(show_spinner="Рисуем…", max_entries=64)
def draw(prefer_student: bool, prompt: str, w: float, count: int, steps: int, seed: int):
    """Pictures ordered by CLIP (best first), their cosines, the judge's readings and the seconds it took."""
    system, _, clip = load(prefer_student)
    start = time.perf_counter()
    images = t2i.generate(system, clip, [prompt] * count, w=w, steps=steps, seed=seed)
    best, scores = t2i.rank_by_clip(clip, images, prompt)
    seconds = time.perf_counter() - start
    return [picture(image) for image in best], scores.tolist(), scene_reader.describe(best), seconds


st.set_page_config(page_title="Картинка по тексту", layout="wide")
st.title("Картинка по тексту: итоговый проект курса")
has_own = t2i.student_file().exists()
prefer_student = has_own and st.radio("Система", ["курса", "ваша (из главы 12)"], horizontal=True) != "курса"
system, name, clip = load(prefer_student)
if system is None or clip is None:
    st.error("Нет весов системы или CLIP курса в data/checkpoints: " + (name if system is None else "clip_mnist.pt"))
    st.stop()
params = f"{sum(p.numel() for p in system['denoiser'].parameters()):,}".replace(",", " ")
st.caption(f"Сейчас рисует {name}: диффузия в латентах автокодировщика (U-Net с FiLM и вниманием к тексту, "
           f"{params} параметров) по вектору подписи из CLIP курса. Мир: цифры MNIST на цветном фоне; цвета — "
           + ", ".join(cap.COLOURS) + "; одна цифра (большая или маленькая; слева, справа, сверху, снизу, в центре) "
           "или две рядом («тройка слева от семёрки»).")
with st.form("caption"):
    prompt = st.text_input("Подпись", placeholder="например: " + EXAMPLES[0])
    left, middle, right = st.columns(3)
    guidance = left.slider("Сила guidance w (1 — без усиления)", 0.0, 6.0, 3.0, step=0.5)
    count = middle.slider("Сколько картинок сгенерировать", 4, 16, 8, step=4)
    steps = right.slider("Шагов DDIM", 5, 50, 25, step=5)
    seed = st.number_input("Начальное зерно", min_value=0, value=0, step=1)
    submitted = st.form_submit_button("Сгенерировать")
if prompt.strip():
    unknown = clip.unknown_words(prompt)
    if unknown:
        st.warning("Этих слов нет в словаре CLIP (для модели это «неизвестное слово»): " + ", ".join(unknown))
    pictures, scores, readings, seconds = draw(prefer_student, prompt, guidance, count, steps, int(seed))
    st.subheader(f"«{prompt}»")
    st.image(pictures, caption=[f"{s:.2f}" for s in scores], width=144)
    st.caption(f"{count} картинок за {seconds:.1f} с ({seconds / count:.2f} с на картинку, {steps} шагов DDIM); под "
               "картинкой — косинус CLIP с подписью, лучшие первыми.")
    st.markdown("**Что читает судья** (по порядку картинок): " + "; ".join(
        f"{i + 1}) {text}" for i, text in enumerate(readings)))
else:
    st.info("Введите подпись и нажмите «Сгенерировать» (или Enter). Примеры: "
            + "; ".join(f"«{e}»" for e in EXAMPLES) + ".")
