"""Chapter 12's text-to-image app: a Russian caption in, a grid of generated pictures with their CLIP scores out.

    make text2image        (streamlit run demo/text_to_image.py on port 8502)

Loads the shipped system (data/checkpoints/text_to_image_latent.pt: autoencoder and latent
denoiser) and the course CLIP with the chapter's own code (its LatentUNet and Decoder, DDIM
sampler in the latents with guidance, and `rerank`), generates the requested number of candidates, orders them by their
cosine with the caption and shows them. Works offline; everything a user reads is
Russian, as in the chapter.
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
from tools.artifacts.chapter_code import load_chapter  # noqa: E402

EXAMPLES = ["большая тройка в центре на красном фоне", "маленькая семёрка слева на синем фоне",
            "двойка слева от восьмёрки на жёлтом фоне", "ноль на красном фоне"]


@st.cache_resource(show_spinner="Загружаем генератор и CLIP…")
def load_system():
    """The chapter's namespace and the course's generator with its record (once per server)."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    ch = load_chapter("12_text_to_image", names=("CFG", "ALPHAS_CUMPROD", "clip"),
                      context={"device": torch.device("cpu"), "FAST": True})
    model, info = ch["load_course_generator"]()
    return (ch, model, info) if model is not None else None



st.set_page_config(page_title="Картинка по тексту", layout="wide")
st.title("Картинка по тексту: итоговый проект курса")
loaded = load_system()
if loaded is None:
    st.error("Нет файла системы курса data/checkpoints/text_to_image_latent.pt.")
    st.stop()
ch, model, info = loaded
clip, cap = ch["clip"], ch["cap"]
params = f"{sum(p.numel() for p in model['denoiser'].parameters()):,}".replace(",", " ")
st.caption(f"Диффузия в латентах автокодировщика (U-Net с FiLM и вниманием к тексту, {params} параметров, "
           f"{info['denoiser']['steps']} шагов обучения) по вектору подписи из CLIP курса. Мир: цифры MNIST на "
           "цветном фоне; цвета — " + ", ".join(cap.COLOURS) + "; одна цифра (большая или маленькая; слева, справа, "
           "сверху, снизу, в центре) или две рядом («тройка слева от семёрки»).")
prompt = st.text_input("Подпись", placeholder="например: " + EXAMPLES[0])
left, right = st.columns(2)
guidance = left.slider("Сила guidance w (1 — без усиления)", 0.0, 6.0, float(ch["CFG"]["guidance"]), step=0.5)
count = right.slider("Сколько картинок сгенерировать", 4, 16, 8, step=4)
seed = st.number_input("Начальное зерно", min_value=0, value=0, step=1)
if prompt.strip():
    unknown = clip.unknown_words(prompt)
    if unknown:
        st.warning("Этих слов нет в словаре CLIP (для модели это «неизвестное слово»): " + ", ".join(unknown))
    start = time.perf_counter()
    images = ch["generate"](model, [prompt] * count, w=guidance, seed=int(seed))
    best, scores = ch["rerank"](clip, images, prompt, count)
    seconds = time.perf_counter() - start
    st.subheader(f"«{prompt}»")
    st.image([picture(image) for image in best], caption=[f"{s:.2f}" for s in scores.tolist()], width=144)
    st.caption(f"{count} картинок за {seconds:.1f} с ({seconds / count:.2f} с на картинку); под картинкой — косинус "
               "CLIP с подписью, лучшие первыми.")
else:
    st.info("Введите подпись и нажмите Enter. Примеры: " + "; ".join(f"«{e}»" for e in EXAMPLES) + ".")
