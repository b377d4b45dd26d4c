"""Chapter 08's search app: the course's small CLIP finds pictures of the held-out gallery by a typed query.

    make demo        (streamlit run demo/clip_search.py)
    utils.show_app("clip_search")   from a notebook (Colab included)

Needs only what a student has (utils and data/): the course's CLIP comes from utils.course_clip (the exported
text encoder and the image encoder's weights), the gallery of held-out compositions from utils.captions. The
search itself is the chapter's exercise: cosine similarity of the query's vector with every picture's vector,
the k best. Everything a user reads is Russian, as in the chapter.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import utils  # noqa: E402
from demo.pictures import picture  # noqa: E402
from utils import captions as cap  # noqa: E402
from utils.course_clip import load_course_clip  # noqa: E402

GALLERY_SIZE = 1000
EXAMPLES = ["тройка на жёлтом фоне", "двойка слева от четвёрки", "маленькая пятёрка справа", "большая семёрка вверху"]


@st.cache_resource(show_spinner="Загружаем модель и галерею…")
def load_search():
    """The course's CLIP, the gallery pictures and their unit vectors (once per server), or None without it."""
    torch.set_num_threads(1)
    clip = load_course_clip()
    if clip is None:
        return None
    test_x, test_y = utils.load_mnist("test")
    images, _, _ = cap.make_pairs(test_x, test_y, GALLERY_SIZE, held_out=True, seed=1)
    return clip, images, clip.encode_image(images)


def search(clip, index: torch.Tensor, query: str, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and cosines of the k gallery pictures closest to the query (all vectors are unit vectors)."""
    top = (index @ clip.encode_text([query])[0]).topk(k)
    return top.indices, top.values


st.set_page_config(page_title="Поиск картинок по тексту", layout="wide")
st.title("Поиск картинок по тексту: маленький CLIP курса")
loaded = load_search()
if loaded is None:
    st.error("Нет файла модели data/checkpoints/clip_mnist.pt: он входит в репозиторий курса, скачайте его заново.")
    st.stop()
clip, images, index = loaded
info = clip.info
recall_at_10 = info["evaluation"]["text_to_image"]["recall_at_10"]
colours = list(cap.COLOURS)
backgrounds = "; ".join(f"{', '.join(str(d) for d in range(10) if d % len(colours) == i)} — {colour}"
                        for i, colour in enumerate(colours))
st.caption(f"Галерея: {len(images)} картинок отложенных композиций — таких сочетаний модель при обучении не видела: "
           f"каждая цифра на своём фоне ({backgrounds}) и 12 пар цифр. "
           f"Модель: {info['config']['steps']} шагов обучения, Recall@10 = {recall_at_10:.2f}.")
query = st.text_input("Запрос", placeholder="например: " + EXAMPLES[0])
k = st.slider("Сколько картинок показать", 4, 32, 12, step=4)
if query.strip():
    unknown = clip.unknown_words(query)
    if unknown:
        st.warning("Этих слов нет в словаре модели (для неё это «неизвестное слово»): " + ", ".join(unknown))
    indices, scores = search(clip, index, query, k)
    st.subheader(f"«{query}»")
    st.image([picture(images[i]) for i in indices.tolist()], caption=[f"{s:.2f}" for s in scores.tolist()],
             width=144)
else:
    st.info("Введите запрос и нажмите Enter. Примеры: " + "; ".join(f"«{e}»" for e in EXAMPLES) + ".")
