"""Chapter 08's search app: the course's small CLIP finds pictures of the held-out gallery by a typed query.

    make demo        (streamlit run demo/clip_search.py)

Loads the trained model of data/checkpoints/clip_mnist.pt with the chapter's own
code (its CLIP class, tokenizer and `search`), builds the gallery of held-out
compositions the chapter evaluates on, and shows the top-k pictures with their
cosine scores. Everything a user reads is Russian, as in the chapter.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demo.pictures import picture  # noqa: E402
from tools.artifacts.chapter_code import load_chapter  # noqa: E402

GALLERY_SIZE = 1000
EXAMPLES = ["тройка на жёлтом фоне", "двойка слева от четвёрки", "маленькая пятёрка справа", "большая семёрка вверху"]


@st.cache_resource(show_spinner="Загружаем модель и галерею…")
def load_search():
    """The chapter's namespace, the course's model, the gallery pictures and their index (once per server)."""
    torch.set_num_threads(1)
    ch = load_chapter("08_clip", names=("CFG", "PAD", "UNK"), context={"device": torch.device("cpu"), "FAST": True})
    model, info = ch["load_course_clip"]()
    if model is None:
        return None
    test_x, test_y = ch["utils"].load_mnist("test")
    images, _, _ = ch["cap"].make_pairs(test_x, test_y, GALLERY_SIZE, held_out=True, seed=1)
    index = ch["embed_in_batches"](model.encode_image, images)
    return ch, model, images, index, info



st.set_page_config(page_title="Поиск картинок по тексту", layout="wide")
st.title("Поиск картинок по тексту: маленький CLIP курса")
loaded = load_search()
if loaded is None:
    st.error("Нет файла модели data/checkpoints/clip_mnist.pt: обучите её командой `python -m tools.artifacts.clip`.")
    st.stop()
ch, model, images, index, info = loaded
recall_at_10 = info["evaluation"]["text_to_image"]["recall_at_10"]
colours = list(ch["cap"].COLOURS)
backgrounds = "; ".join(f"{', '.join(str(d) for d in range(10) if d % len(colours) == i)} — {colour}"
                        for i, colour in enumerate(colours))
st.caption(f"Галерея: {len(images)} картинок отложенных композиций — таких сочетаний модель при обучении не видела: "
           f"каждая цифра на своём фоне ({backgrounds}) и 12 пар цифр. "
           f"Модель: {info['config']['steps']} шагов обучения, Recall@10 = {recall_at_10:.2f}.")
query = st.text_input("Запрос", placeholder="например: " + EXAMPLES[0])
k = st.slider("Сколько картинок показать", 4, 32, 12, step=4)
if query.strip():
    unknown = sorted({w for w in ch["words"](query) if w not in model.vocab})
    if unknown:
        st.warning("Этих слов нет в словаре модели (для неё это «неизвестное слово»): " + ", ".join(unknown))
    indices, scores = ch["search"](model, index, query, k)
    st.subheader(f"«{query}»")
    st.image([picture(images[i]) for i in indices.tolist()], caption=[f"{s:.2f}" for s in scores.tolist()],
             width=144)
else:
    st.info("Введите запрос и нажмите Enter. Примеры: " + "; ".join(f"«{e}»" for e in EXAMPLES) + ".")
