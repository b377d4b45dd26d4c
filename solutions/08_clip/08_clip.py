# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Глава 8. CLIP: картинки и тексты в одном пространстве
#
# {{badges}}
#
# **Цели главы.** После этой главы вы сможете:
# - объяснить, как контрастное обучение связывает две модальности — картинки и тексты — в одном пространстве;
# - написать симметричную функцию потерь CLIP (InfoNCE в обе стороны) с обучаемой температурой;
# - собрать маленький текстовый Transformer с масками паддинга и правильным усреднением по настоящим токенам;
# - классифицировать картинки **без обучающих примеров** (zero-shot) по текстовым описаниям классов и измерить,
#   что дают ансамбли подсказок;
# - искать картинки по текстовому запросу и оценивать поиск по Recall@k;
# - запустить маленькое веб-приложение поиска по галерее.
#
# **Что нужно знать заранее:** PyTorch, свёрточные сети, перекрёстная энтропия; механизм внимания в общих чертах
# (подробно он разобран в главе 10).
#
# **Время:** 3 часа. Быстрый режим (`FAST_MODE = True` в ячейке подготовки или `COURSE_FAST=1`) — около минуты на CPU: основная модель загружается готовой из
# `data/checkpoints/`, а с нуля обучается только короткая демонстрационная. Полный режим на GPU обучает модель
# заново (на двух ядрах CPU это обучение заняло 11 минут).

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
import re
import time
from collections import Counter

from sklearn.linear_model import LogisticRegression
from utils import captions as cap

CFG = dict(
    # данные: картинки 48×48 из цифр MNIST, подписи по-русски (utils.captions)
    train_pairs=utils.by_mode(8000, 30000),  # сцен для обучения (подпись каждой выбирается заново в каждом батче)
    gallery_size=utils.by_mode(500, 1000),  # отложенных картинок в галерее поиска
    zero_shot_images=utils.by_mode(500, 2000),  # картинок с одной цифрой для zero-shot, отложенных и знакомых
    recoloured_digits=utils.by_mode(500, 2000),  # цифр, каждая на всех шести фонах (откуда разница наборов)
    max_len=16,  # токенов в подписи, с паддингом
    # модель
    embed_dim=128,  # общее пространство картинок и текстов
    text_dim=128,
    text_heads=4,
    text_layers=2,
    init_temperature=0.07,  # как в CLIP: logit_scale = log(1 / 0.07)
    # обучение
    batch_size=256,
    lr=1e-3,
    weight_decay=0.01,
    steps=3000,  # полное обучение (так обучена модель в data/checkpoints)
    demo_steps=utils.by_mode(120, 600),  # короткое обучение с нуля, чтобы увидеть цикл
    demo_batch_size=128,
    probe_images=utils.by_mode(2000, 5000),  # картинок для обучения линейного классификатора
    temperature_steps=300,  # шагов обучения одной температуры (раздел 6)
    temperature_big_lr=0.1,  # скорость в 100 раз больше lr: где ломается τ без логарифма
    position_probe_images=utils.by_mode(1200, 2000),  # картинок для классификатора «где цифра» (раздел 7)
)
# Полный режим на GPU обучает модель с нуля; на двух ядрах CPU это заняло 11 минут, поэтому без GPU загружается
# модель курса, обученная тем же кодом этой главы.
TRAIN_CLIP = not FAST and device.type == "cuda"
CFG

# %% [markdown]
# ## 1. Идея: общее пространство для двух модальностей
#
# Классификатор из прошлых глав знает фиксированный список классов: «0», «1», …, «9». Чтобы добавить новый класс,
# нужны новые размеченные примеры и новое обучение. **CLIP** (Radford и др., 2021) учится иначе: на парах
# «картинка — её описание». Два кодировщика, картиночный и текстовый, переводят картинку и текст в векторы **одного
# пространства**, и обучение добивается, чтобы вектор картинки был близок к вектору её описания и далёк от описаний
# других картинок.
#
# Когда такое пространство выучено, классы задаются **словами**: чтобы узнать, какая цифра на картинке, достаточно
# закодировать тексты «ноль», «единица», …, «девятка» и выбрать ближайший. Это и есть **zero-shot**
# классификация — без единого обучающего примера для этой задачи. Тем же способом работает поиск картинок по
# запросу: закодировать запрос и взять ближайшие картинки галереи.
#
# Оригинальный CLIP обучен на 400 млн пар из интернета. У нас нет ни интернета, ни таких данных, поэтому мы соберём
# маленький мир, в котором всё можно проверить: картинки из цифр MNIST и подписи, сгенерированные по тому, что на
# картинке действительно есть.

# %% [markdown]
# ## 2. Данные: цифры на цветном фоне и подписи к ним
#
# Картинка 48×48 — одна цифра (большая или маленькая, в одной из пяти позиций) или две цифры рядом; белые чернила
# на цветном фоне одного из шести цветов. Подпись называет всё, что видно, и у каждого факта несколько
# формулировок: «маленькая тройка слева на синем фоне», «синий фон, в левой части маленькая тройка», «семёрка
# справа от двойки на сером фоне». Генератор лежит в `utils.captions`; подпись к картинке выбирается заново при
# каждом её появлении в батче.
#
# **Отложенные композиции.** Часть сочетаний в обучение не попадает никогда: у каждой цифры есть один «запретный»
# цвет фона (у нуля — красный, у единицы — зелёный, …), и 12 упорядоченных пар цифр из 90 тоже отложены. Слова
# этих подписей модель видела все, а целиком такие подписи и такие картинки — нет. Именно на них мы проверим, что
# модель понимает **составные части** подписи, а не запомнила пары целиком.

# %%
mnist_train_x, mnist_train_y = utils.load_mnist("train")
mnist_test_x, mnist_test_y = utils.load_mnist("test")
# Обучающие картинки рисуются из обучающих цифр MNIST, проверочные — из тестовых: почерк тоже новый.
train_images, train_texts, train_scenes = cap.make_pairs(mnist_train_x, mnist_train_y, CFG["train_pairs"],
                                                         held_out=False, seed=0)
gallery_images, gallery_texts, gallery_scenes = cap.make_pairs(mnist_test_x, mnist_test_y, CFG["gallery_size"],
                                                               held_out=True, seed=1)
print(f"обучение: {len(train_images)} картинок, {len(set(train_scenes))} разных сцен")
print(f"отложенная галерея: {len(gallery_images)} картинок, {len(set(gallery_scenes))} разных сцен, "
      f"ни одна не встречается в обучении: {not set(gallery_scenes) & set(train_scenes)}")
utils.show_images(train_images[:8], nrow=8, title="Обучающие картинки")
for text in train_texts[:8]:
    print("  ", text)
utils.show_images(gallery_images[:8], nrow=8, title="Отложенные композиции: таких в обучении не было")
for text in gallery_texts[:8]:
    print("  ", text)

# %% [markdown]
# **Токены.** Словарь наш маленький и закрытый, поэтому текст режем на слова (и запятые), а номера токенам даём по
# словарю обучающих подписей. Номер 0 — паддинг: короткие подписи добиваются им до общей длины батча; номер 1 —
# неизвестное слово.

# %%
PAD = 0  # паддинг
UNK = 1  # неизвестное слово


def words(text):
    """Слова ``text`` в нижнем регистре и запятые: токены закрытого словаря этой главы."""
    return re.findall(r"\w+|,", text.lower())


def build_vocab(scenes):
    """Токен -> id для каждого слова всех формулировок ``scenes``; 0 — паддинг, 1 — неизвестное слово."""
    tokens = sorted({w for scene in set(scenes) for text in cap.phrasings(scene) for w in words(text)})
    return {"<pad>": PAD, "<unk>": UNK, **{w: i + 2 for i, w in enumerate(tokens)}}


def tokenize(texts, vocab, max_len=CFG["max_len"]):
    """id токенов (len(texts), L), добитые PAD до самого длинного текста (не больше ``max_len`` токенов)."""
    ids = [[vocab.get(w, UNK) for w in words(t)][:max_len] for t in texts]
    out = torch.full((len(ids), max(map(len, ids))), PAD, dtype=torch.long)
    for row, seq in enumerate(ids):
        out[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


vocab = build_vocab(train_scenes)
lengths = Counter(len(words(t)) for t in train_texts)
print(f"словарь: {len(vocab)} токенов; длина подписи в словах: от {min(lengths)} до {max(lengths)}")
print(tokenize(train_texts[:3], vocab))

# %% [markdown]
# ## 3. Функция потерь CLIP
#
# Возьмём батч из $B$ пар. Кодировщики дают векторы картинок $u_i$ и текстов $v_j$; нормируем их на единичную
# длину, и тогда $u_i^\top v_j$ — косинус угла между ними. Матрица логитов
#
# $$L_{ij} = s \cdot \cos(u_i, v_j), \qquad s = e^{t} = 1/\tau,$$
#
# где $\tau$ — **температура**, а $t$ — обучаемый параметр `logit_scale` (храним логарифм, чтобы $s$ был
# положительным при любом $t$). В строке $i$ правильный ответ — столбец $i$: описание именно этой картинки; в
# столбце $j$ правильный ответ — строка $j$. Потеря — среднее двух перекрёстных энтропий, по строкам
# (картинка → текст) и по столбцам (текст → картинка):
#
# $$\mathcal L = \tfrac12\Big[\tfrac1B\sum_i -\log \frac{e^{L_{ii}}}{\sum_j e^{L_{ij}}}
# + \tfrac1B\sum_j -\log \frac{e^{L_{jj}}}{\sum_i e^{L_{ij}}}\Big].$$
#
# Это **InfoNCE**: каждая пара — классификация «какая из $B$ — моя», где остальные $B-1$ элементов батча служат
# отрицательными примерами. В статье CLIP $\tau$ начинается с 0,07, а масштаб $s$ **ограничен сверху числом
# 100**: иначе температура уходит к нулю, и обучение становится неустойчивым.
#
# Если сделать температуру просто параметром `nn.Parameter(0.07)`, на который делятся логиты, то ничто не
# помешает ему стать отрицательным или нулём.

# %% [markdown]
# ### Упражнение 1: `clip_loss`
#
# Напишите `clip_loss(image_emb, text_emb, logit_scale)`:
# - `image_emb`, `text_emb` — тензоры `(B, D)`, строки с одинаковым номером — пара; **не нормированы**;
# - `logit_scale` — скалярный тензор $t$ (логарифм масштаба); масштаб $s = e^t$, ограниченный сверху числом 100;
# - верните скаляр — симметричную потерю из формулы выше (через `F.cross_entropy` или вручную).
#
# Потеря должна быть дифференцируема по всем трём аргументам.

# %% grade_id="clip_loss_impl" solution=true
def clip_loss(image_emb, text_emb, logit_scale):
    ### BEGIN SOLUTION
    image_emb = F.normalize(image_emb, dim=-1)
    text_emb = F.normalize(text_emb, dim=-1)
    logits = logit_scale.exp().clamp(max=100) * image_emb @ text_emb.T
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    ### END SOLUTION


# %% grade_id="clip_loss_tests" points=4
# Идеально согласованные ортогональные векторы: L = s·I, и потеря в обе стороны равна log(1 + (B − 1)·e^(−s)).
_t_eye = torch.eye(4, 6)
_t_loss = clip_loss(_t_eye, 3 * _t_eye, torch.tensor(np.log(5.0)))
assert _t_loss.ndim == 0, "потеря — скаляр"
utils.assert_close(_t_loss, np.log(1 + 3 * np.exp(-5.0)), "потеря для согласованных ортогональных векторов",
                   rtol=1e-5)
# Несимметричный случай (векторы разной длины): косинусы картинок с текстами — [[1, 1], [0, 0]], s = 2.
# Картинка → текст: обе строки дают log 2. Текст → картинка: log(1 + e^(−2)) и log(1 + e^2). Ответ — среднее сторон.
_t_u, _t_v = torch.tensor([[3.0, 0.0], [0.0, 0.5]]), torch.tensor([[2.0, 0.0], [0.1, 0.0]])
utils.assert_close(clip_loss(_t_u, _t_v, torch.tensor(np.log(2.0))),
                   (np.log(2) + (np.log(1 + np.exp(-2.0)) + np.log(1 + np.exp(2.0))) / 2) / 2,
                   "несимметричный случай: потеря в две стороны, усреднённая", rtol=1e-5)
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
def _t_loop_loss(u, v, t):
    """Потеря по определению: по одной паре за раз, в обе стороны."""
    u, v = u / u.norm(dim=1, keepdim=True), v / v.norm(dim=1, keepdim=True)
    s = min(float(np.exp(float(t))), 100.0)
    total = 0.0
    for i in range(len(u)):
        row = torch.stack([s * (u[i] @ v[j]) for j in range(len(v))])
        col = torch.stack([s * (u[j] @ v[i]) for j in range(len(u))])
        total += -torch.log_softmax(row, 0)[i] - torch.log_softmax(col, 0)[i]
    return total / (2 * len(u))


torch.manual_seed(1)
for _t_b, _t_d, _t_t in ((3, 4, 0.0), (7, 5, 1.5), (6, 16, 2.66)):
    _t_u, _t_v = 3 * torch.randn(_t_b, _t_d), torch.randn(_t_b, _t_d) + 1
    utils.assert_close(clip_loss(_t_u, _t_v, torch.tensor(_t_t)), _t_loop_loss(_t_u, _t_v, _t_t),
                       f"потеря при B = {_t_b}, t = {_t_t}", rtol=1e-5)
# Строки и столбцы: при обмене картинок и текстов симметричная потеря та же, а потеря в одну сторону — нет.
_t_u, _t_v = torch.randn(6, 4), torch.randn(6, 4)
utils.assert_close(clip_loss(_t_v, _t_u, torch.tensor(1.0)), clip_loss(_t_u, _t_v, torch.tensor(1.0)),
                   "потеря симметрична: поменяйте картинки и тексты местами", rtol=1e-5)
# Векторы нормируются внутри: масштаб строки ничего не меняет.
utils.assert_close(clip_loss(_t_u * torch.arange(1.0, 7.0).view(6, 1), _t_v * 10, torch.tensor(1.0)),
                   clip_loss(_t_u, _t_v, torch.tensor(1.0)), "нормируйте векторы: длина строк не должна влиять",
                   rtol=1e-5)
# Ограничение: s = e^t никогда не больше 100, и за этой границей потеря не меняется.
utils.assert_close(clip_loss(_t_u, _t_v, torch.tensor(np.log(1000.0))), _t_loop_loss(_t_u, _t_v, np.log(100.0)),
                   "масштаб e^t ограничен сверху числом 100", rtol=1e-5)
# Направление температуры: при большем t логиты резче, и у согласованных пар потеря меньше.
_t_aligned = [clip_loss(_t_eye, _t_eye, torch.tensor(t)).item() for t in (0.0, 1.0, 2.0, 3.0)]
assert (np.diff(_t_aligned) < 0).all(), (
    f"для согласованных пар потеря должна падать с ростом logit_scale, получено {np.round(_t_aligned, 4)}: "
    "масштаб s = e^t умножает косинусы")
# Потеря дифференцируема по всем трём аргументам.
_t_u, _t_v, _t_t = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True), torch.tensor(0.5,
                                                                                                        requires_grad=True)
clip_loss(_t_u, _t_v, _t_t).backward()
assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in (_t_u, _t_v, _t_t)), (
    "градиент должен доходить до обоих векторов и до logit_scale")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Текстовый кодировщик
#
# Текст — последовательность номеров токенов. Небольшой Transformer-кодировщик: вложения токенов плюс обучаемые
# вложения позиций (без них «тройка слева от семёрки» и «семёрка слева от тройки» неразличимы), несколько слоёв
# `nn.TransformerEncoderLayer`, и затем **пулинг** — один вектор на текст.
#
# **Паддинг.** Подписи в батче разной длины, короткие добиты токеном `PAD`. Паддинг не должен влиять на ответ:
# - слои внимания не должны смотреть на позиции паддинга — для этого `src_key_padding_mask` (`True` там, где
#   паддинг);
# - пулинг — среднее по **настоящим** токенам.
#
# Частая ошибка — брать вектор **последней позиции**: у короткой подписи это позиция паддинга, и вектор одной и
# той же подписи зависит от того, с какими подписями она попала в батч. Ниже мы это измерим.

# %% [markdown]
# ### Упражнение 2: `TextEncoder`
#
# Напишите модуль `TextEncoder(vocab_size, dim, n_heads=4, n_layers=2, max_len=16, pad_id=0)`:
# - `forward(ids)`: `ids` — `(B, L)` номера токенов, `L ≤ max_len`, паддинг — `pad_id` (в каждой строке есть хотя
#   бы один настоящий токен); верните `(B, dim)`;
# - вложения токенов и позиций, `n_layers` слоёв `nn.TransformerEncoderLayer(dim, n_heads, batch_first=True, ...)`
#   с маской паддинга, затем `nn.LayerNorm(dim)` и среднее по настоящим токенам;
# - назовите слои `tokens`, `positions` (`nn.Embedding`), `layers` (`nn.TransformerEncoder`, слои с
#   `dim_feedforward=4 * dim`, `dropout=0.0`, `norm_first=True`) и `norm`: тогда в ваш кодировщик загрузятся веса
#   модели курса (иначе глава возьмёт готовую программу `torch.export`);
# - в режиме `eval()` ответ не должен зависеть от того, сколько паддинга добавлено справа.

# %% grade_id="text_encoder_impl" solution=true
class TextEncoder(nn.Module):
    def __init__(self, vocab_size, dim, n_heads=4, n_layers=2, max_len=16, pad_id=0):
        super().__init__()
        self.pad_id = pad_id
        ### BEGIN SOLUTION
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(dim, n_heads, dim_feedforward=4 * dim, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        ### END SOLUTION

    def forward(self, ids):
        ### BEGIN SOLUTION
        padding = ids == self.pad_id
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))
        x = self.norm(self.layers(x, src_key_padding_mask=padding))
        real = (~padding).unsqueeze(-1).float()
        return (x * real).sum(1) / real.sum(1)
        ### END SOLUTION


# %% grade_id="text_encoder_tests" points=4
torch.manual_seed(0)
_t_enc = TextEncoder(20, 32).eval()
_t_ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
_t_out = _t_enc(_t_ids)
utils.assert_shape(_t_out, (2, 32), "вектор на каждый текст")
_t_longer = torch.cat([_t_ids, torch.zeros(2, 5, dtype=torch.long)], 1)
utils.assert_close(_t_enc(_t_longer), _t_out, "ответ не должен зависеть от паддинга справа", atol=1e-5)
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Паддинг любой длины; текст один и в батче с более длинным.
torch.manual_seed(1)
_t_enc = TextEncoder(30, 16, n_heads=2, n_layers=3, max_len=12).eval()
_t_text = torch.tensor([[3, 4, 5]])
_t_alone = _t_enc(_t_text)
for _t_pad in (1, 4, 9):
    utils.assert_close(_t_enc(F.pad(_t_text, (0, _t_pad))), _t_alone,
                       f"тот же текст с {_t_pad} токенами паддинга: маска внимания и среднее по настоящим токенам",
                       atol=1e-5)
_t_batch = torch.tensor([[3, 4, 5, 0, 0, 0], [7, 8, 9, 10, 11, 12]])
utils.assert_close(_t_enc(_t_batch)[0], _t_alone[0], "текст в батче с более длинным текстом", atol=1e-5)
# Другой pad_id.
_t_enc7 = TextEncoder(30, 16, pad_id=7).eval()
utils.assert_close(_t_enc7(torch.tensor([[3, 4, 7, 7]])), _t_enc7(torch.tensor([[3, 4]])), "паддинг с pad_id = 7",
                   atol=1e-5)
# Важен каждый настоящий токен и его место (порядок слов).
_t_base = _t_enc(torch.tensor([[3, 4, 5, 6]]))
assert not torch.allclose(_t_enc(torch.tensor([[3, 4, 5, 9]])), _t_base, atol=1e-4), (
    "последний настоящий токен не влияет на ответ")
assert not torch.allclose(_t_enc(torch.tensor([[9, 4, 5, 6]])), _t_base, atol=1e-4), (
    "первый токен не влияет на ответ")
assert not torch.allclose(_t_enc(torch.tensor([[6, 5, 4, 3]])), _t_base, atol=1e-4), (
    "порядок слов не влияет на ответ: нужны вложения позиций")
# Устройство, которое задаёт условие (иначе веса курса не загрузятся, а опыты главы пойдут на чужой сети).
_t_conf = TextEncoder(30, 16, n_heads=2, n_layers=3, max_len=12)
assert isinstance(_t_conf.tokens, nn.Embedding) and tuple(_t_conf.tokens.weight.shape) == (30, 16), (
    "tokens — nn.Embedding(vocab_size, dim)")
assert isinstance(_t_conf.positions, nn.Embedding) and tuple(_t_conf.positions.weight.shape) == (12, 16), (
    "positions — nn.Embedding(max_len, dim)")
assert isinstance(_t_conf.layers, nn.TransformerEncoder) and len(_t_conf.layers.layers) == 3, (
    "layers — nn.TransformerEncoder из n_layers слоёв")
for _t_layer in _t_conf.layers.layers:
    assert _t_layer.norm_first, "слои с norm_first=True: LayerNorm перед вниманием и MLP (pre-norm)"
    assert _t_layer.linear1.out_features == 4 * 16, "ширина MLP в слоях: dim_feedforward=4 * dim"
    assert _t_layer.dropout.p == 0.0, "слои без прореживания: dropout=0.0"
    assert _t_layer.self_attn.num_heads == 2 and _t_layer.self_attn.batch_first, "n_heads голов, batch_first=True"
assert isinstance(_t_conf.norm, nn.LayerNorm) and _t_conf.norm.normalized_shape == (16,), "norm — nn.LayerNorm(dim)"
# Обучается целиком. Случайная проекция выхода, а не его сумма: у суммы выхода LayerNorm градиент ниже нормы — ноль.
_t_enc.train()
_t_out = _t_enc(_t_batch)
(_t_out * torch.randn(_t_out.shape, generator=torch.Generator().manual_seed(0))).sum().backward()
assert sum(p.grad is not None and p.grad.abs().sum() > 0 for p in _t_enc.parameters()) >= len(
    list(_t_enc.parameters())) // 2, "градиент не доходит до параметров кодировщика"
### END HIDDEN TESTS

# %% [markdown]
# **Почему не последняя позиция.** Сравним ваш кодировщик с таким же, но без маски и
# с вектором последней позиции, на одной подписи, добитой паддингом до разной длины, как
# бывает в батчах с подписями разной длины. Косинус между векторами одной и той же подписи должен быть равен 1.

# %%
class LastPositionEncoder(nn.Module):
    """Текстовый кодировщик без маски паддинга, с вектором последней позиции."""

    def __init__(self, vocab_size, dim, n_heads=4, n_layers=2, max_len=16):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab_size, dim), nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(dim, n_heads, 4 * dim, dropout=0.0, batch_first=True)
        self.layers, self.norm = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False), nn.LayerNorm(dim)

    def forward(self, ids):
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))
        return self.norm(self.layers(x)[:, -1])


@torch.no_grad()
def padding_sensitivity(encoder, ids, pad_lengths):
    """Косинус между вектором ``ids`` (1, L) и векторами тех же id с добавленным паддингом."""
    vectors = [encoder.eval()(F.pad(ids, (0, n), value=PAD))[0] for n in pad_lengths]
    return [F.cosine_similarity(vectors[0], v, dim=0).item() for v in vectors]


pad_lengths = (0, 2, 4, 8)
_demo_ids = tokenize(["маленькая тройка слева на синем фоне"], vocab)
torch.manual_seed(0)
ours_cos = padding_sensitivity(TextEncoder(len(vocab), CFG["text_dim"], max_len=24), _demo_ids, pad_lengths)
last_cos = padding_sensitivity(LastPositionEncoder(len(vocab), CFG["text_dim"], max_len=24), _demo_ids, pad_lengths)
print("паддинга добавлено:            ", "  ".join(f"{n:>5}" for n in pad_lengths))
print("TextEncoder (маска, среднее):  ", "  ".join(f"{c:5.3f}" for c in ours_cos))
print("последняя позиция, без маски: ", "  ".join(f"{c:5.3f}" for c in last_cos))

# %% [markdown]
# С последней позицией одна и та же подпись получает разные векторы в зависимости от длины соседей по батчу, а
# после двух токенов паддинга «последняя позиция» вообще описывает паддинг, а не текст. Среднее по настоящим
# токенам с маской внимания даёт один и тот же вектор.

# %% [markdown]
# ## 5. Модель целиком
#
# Картиночный кодировщик — три свёрточных блока с шагом 2 (48 → 24 → 12 → 6) и линейный слой. Глобальное
# усреднение по пространству здесь не годится: оно стирает, **где** стоит цифра, а подписи
# говорят «слева», «вверху». Оба кодировщика заканчиваются линейной проекцией в общее пространство размерности
# `embed_dim`; `logit_scale` начинается с $\log(1/0.07)$.

# %%
class ImageEncoder(nn.Module):
    """Три свёрточных блока с шагом 2 и линейный слой по всей карте 6x6: он помнит, где что стоит."""

    def __init__(self, dim, channels=(32, 64, 128), canvas=cap.CANVAS):
        super().__init__()
        blocks, c_in = [], 3
        for c_out in channels:
            blocks += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*blocks, nn.Flatten())
        side = canvas // 2 ** len(channels)
        self.head = nn.Linear(c_in * side * side, dim)

    def forward(self, images):
        return self.head(self.features(images))


class CLIP(nn.Module):
    """Картиночный и текстовый кодировщики с проекцией в общее пространство и обучаемым масштабом логитов, как в CLIP."""

    def __init__(self, vocab, embed_dim=CFG["embed_dim"], text_dim=CFG["text_dim"], text_heads=CFG["text_heads"],
                 text_layers=CFG["text_layers"], max_len=CFG["max_len"], init_temperature=CFG["init_temperature"]):
        super().__init__()
        self.vocab, self.max_len = dict(vocab), max_len
        self.image_encoder = ImageEncoder(embed_dim)
        self.text_encoder = TextEncoder(len(vocab), text_dim, text_heads, text_layers, max_len, pad_id=PAD)
        self.text_projection = nn.Linear(text_dim, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / init_temperature))))

    def encode_image(self, images):
        """Векторы картинок (B, embed_dim), не нормированные; ``images`` — (B, 3, 48, 48) в [0, 1]."""
        return self.image_encoder(images.to(self.logit_scale.device))

    def encode_text(self, texts):
        """Векторы текстов (len(texts), embed_dim), не нормированные; ``texts`` — список строк."""
        ids = tokenize(texts, self.vocab, self.max_len).to(self.logit_scale.device)
        return self.text_projection(self.text_encoder(ids))


@torch.no_grad()
def embed_in_batches(encode, items, batch_size=500):
    """Нормированные векторы ``items`` (картинок или текстов), по ``batch_size`` за раз в режиме eval."""
    return torch.cat([F.normalize(encode(items[i:i + batch_size]), dim=-1) for i in range(0, len(items), batch_size)])


torch.manual_seed(0)
print(f"параметров: {utils.grouped(sum(p.numel() for p in CLIP(vocab).parameters()))}")

# %% [markdown]
# ## 6. Обучение
#
# Цикл обычный: батч картинок, к каждой — **случайная** из её формулировок, `clip_loss`, шаг AdamW. В батче из 256
# картинок иногда встречаются две картинки одной сцены: их подписи подходят обеим, но функция потерь считает
# «правильной» только свою. Это **ложные отрицательные**; сколько их, сосчитаем ниже.

# %%
def train_clip(model, images, scenes, steps, batch_size=CFG["batch_size"], seed=0):
    """AdamW по clip_loss на случайных батчах (картинка, случайная формулировка её сцены); потеря и
    температура 1/s после каждого шага."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=CFG["lr"], weight_decay=CFG["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=CFG["lr"], total_steps=steps, pct_start=0.1)
    history = {"loss": [], "temperature": []}
    model.train()
    for _ in utils.progress(range(steps), desc="CLIP"):
        batch = rng.choice(len(images), size=batch_size, replace=False)
        texts = [cap.caption(scenes[i], rng) for i in batch]
        loss = clip_loss(model.encode_image(images[batch].to(device)), model.encode_text(texts), model.logit_scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history["loss"].append(loss.item())
        history["temperature"].append(1 / model.logit_scale.exp().clamp(max=100).item())
    model.eval()
    return history


def duplicate_share(scenes, batch_size, batches=200, seed=0):
    """Доля элементов батча, чья сцена повторяется в том же батче: для них есть ложные отрицательные примеры."""
    rng, shares = np.random.default_rng(seed), []
    for _ in range(batches):
        counts = Counter(scenes[i] for i in rng.choice(len(scenes), size=batch_size, replace=False))
        shares.append(sum(c for c in counts.values() if c > 1) / batch_size)
    return float(np.mean(shares))


@torch.no_grad()
def similarity(model, images, texts):
    model.eval()
    return (F.normalize(model.encode_image(images), dim=-1) @ F.normalize(model.encode_text(texts), dim=-1).T).cpu()


false_negative_share = duplicate_share(train_scenes, CFG["batch_size"])
print(f"доля картинок батча ({CFG['batch_size']}), у которых в том же батче есть картинка той же сцены: "
      f"{false_negative_share:.1%}")

# %% [markdown]
# Это заметная доля: в нашем маленьком мире всего около тысячи разных сцен. Для таких картинок цель «только своя
# подпись» неверна, и потеря не может опуститься до нуля. Модель всё равно учится — остальные отрицательные пары
# батча настоящие, — но это шум в целях; как его убрать, — домашнее задание 4.

# %% [markdown]
# Сначала — короткое обучение с нуля на глазах. Рядом с потерей нарисуем температуру $\tau = 1/s$: модель учит её
# сама. Матрица косинусов на 8 отложенных картинках и их подписях до и после обучения покажет, что произошло.

# %%
_sim_images, _sim_texts = gallery_images[:8], gallery_texts[:8]
torch.manual_seed(0)
demo = CLIP(vocab).to(device)
sim_before = similarity(demo, _sim_images, _sim_texts)
start = time.perf_counter()
demo_history = train_clip(demo, train_images, train_scenes, CFG["demo_steps"], batch_size=CFG["demo_batch_size"])
demo_seconds = time.perf_counter() - start
sim_after = similarity(demo, _sim_images, _sim_texts)
print(f"{CFG['demo_steps']} шагов по {CFG['demo_batch_size']} пар за {demo_seconds:.0f} с; "
      f"температура {CFG['init_temperature']} → {demo_history['temperature'][-1]:.3f}")


# %%
def plot_training(history, title):
    """Потеря и выученная температура после каждого шага, рядом."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    left.plot(history["loss"], lw=0.8)
    left.set(xlabel="шаг", ylabel="потеря", title="потеря на батче")
    right.plot(history["temperature"], color="C1")
    right.set(xlabel="шаг", ylabel="τ = 1 / s", title="температура")
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def plot_similarity(matrices, texts):
    """Матрицы косинусов рядом (строки — картинки, столбцы — их подписи в том же порядке)."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(5.2 * len(matrices), 4.6))
    for ax, (title, m) in zip(np.atleast_1d(axes), matrices.items(), strict=True):
        im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
        for (i, j), v in np.ndenumerate(m.numpy()):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_title(title)
        ax.set_xlabel("подпись №")
        ax.set_ylabel("картинка №")
    fig.colorbar(im, ax=axes, shrink=0.8, label="косинус")
    plt.show()
    for j, text in enumerate(texts):
        print(f"  подпись {j}: {text}")


plot_training(demo_history, "CLIP: короткое обучение с нуля")
plot_similarity({"до обучения": sim_before, f"после {CFG['demo_steps']} шагов": sim_after}, _sim_texts)

# %% [markdown]
# До обучения все косинусы почти одинаковы: случайные кодировщики не связаны. После обучения диагональ — картинка и
# её подпись — выделяется, хотя эти композиции модель не видела. Короткого обучения мало; модель курса обучена
# этим же кодом: {{result checkpoint:clip_mnist.pt config.steps}} шагов по
# {{result checkpoint:clip_mnist.pt config.batch_size}} пар, {{result checkpoint:clip_mnist.pt train_seconds .0f}} с
# на CPU (файл `data/checkpoints/clip_mnist.pt`); полный режим на GPU обучает её заново.

# %%
def state_under(state, prefix):
    """Записи state dict с префиксом ``prefix`` (веса одного подмодуля), префикс отрезан."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


class ExportedTextEncoder(nn.Module):
    """Текстовый кодировщик курса как программа torch.export — для TextEncoder, слои которого названы иначе.
    Программа хранится вне дерева модулей: экспортированные программы не принимают train() и eval()."""

    def __init__(self, program):
        super().__init__()
        self.program = [program]

    def forward(self, ids):
        return self.program[0](ids)


def load_course_clip(name="clip_mnist"):
    """CLIP курса и запись о его обучении или (None, None), если файла нет. Веса загружаются в ваш
    TextEncoder, если его слои названы, как в упражнении 2, и он считает то же, что кодировщик курса; иначе берётся
    экспортированный текстовый кодировщик курса."""
    checkpoint = utils.load_checkpoint(f"{name}.pt")
    if checkpoint is None:
        return None, None
    model, state = CLIP(checkpoint["vocab"]), checkpoint["state_dict"]
    program = torch.export.load(utils.datasets.subset_file(f"checkpoints/{name}_text.pt2")).module()
    try:
        model.load_state_dict(state)
        # Имена слоёв совпали, но считает ли ваш кодировщик то же самое (например, LayerNorm до подслоя, а не
        # после; среднее по настоящим токенам)? Сравним с программой курса на нескольких подписях.
        ids = tokenize(["маленькая тройка слева на синем фоне", "семёрка справа от двойки", "большая девятка"],
                       checkpoint["vocab"])
        with torch.no_grad():
            same = torch.allclose(model.text_encoder.eval()(ids), program(ids), atol=1e-3)
        if not same:
            print("Веса курса загрузились в ваш TextEncoder, но он считает не то же, что кодировщик курса (порядок "
                  "LayerNorm и подслоёв или усреднение отличаются от упражнения 2): берём программу torch.export "
                  "курса.")
    except (RuntimeError, TypeError):
        same = False
        print("Ваш TextEncoder устроен не так, как в упражнении 2: текстовый кодировщик курса загружается как "
              "программа torch.export.")
    if not same:
        model.text_encoder = ExportedTextEncoder(program.to(device))
        model.image_encoder.load_state_dict(state_under(state, "image_encoder."))
        model.text_projection.load_state_dict(state_under(state, "text_projection."))
        model.logit_scale.data.copy_(state["logit_scale"])
    return model.to(device).eval(), checkpoint["info"]


model, clip_info = (None, None) if TRAIN_CLIP else load_course_clip()
if model is None:
    torch.manual_seed(0)
    model = CLIP(vocab).to(device)
    start = time.perf_counter()
    history = train_clip(model, train_images, train_scenes, CFG["steps"])
    print(f"обучено за {time.perf_counter() - start:.0f} с")
else:
    history = clip_info["history"]
    print(f"загружена модель курса: {clip_info['config']['steps']} шагов, {clip_info['train_seconds'] / 60:.0f} мин "
          f"обучения на {utils.machine_words(clip_info['machine'])}")
temperature = 1 / model.logit_scale.exp().clamp(max=100).item()
print(f"выученная температура τ = {temperature:.4f} (масштаб s = {1 / temperature:.1f}; начало: τ = 0.07, s = 14.3)")
plot_training(history, "CLIP: модель курса")
plot_similarity({"модель курса": similarity(model, _sim_images, _sim_texts)}, _sim_texts)

# %% [markdown]
# **Почему хранят логарифм масштаба.** Adam сдвигает каждый параметр за шаг примерно на величину скорости обучения,
# как бы ни был велик градиент. Если параметр — сама температура $\tau$, шаг, сравнимый с $\tau$, перелетает через
# ноль; если параметр — $t = \log s$, тот же шаг меняет $\tau$ лишь в $e^{\text{lr}}$ раз. Проверим на векторах модели
# курса: заморозим векторы 256 отложенных картинок и их подписей и будем учить **одну только температуру** в двух
# параметризациях — со скоростью обучения главы и со скоростью в 100 раз большей.

# %%
def fit_temperature_only(image_emb, text_emb, log_scale, lr, steps=CFG["temperature_steps"]):
    """Учит только температуру при замороженных векторах. Возвращает τ и потерю после обучения и первый шаг,
    на котором τ стала неположительной (None, если такого не было)."""
    start = np.log(1 / CFG["init_temperature"]) if log_scale else CFG["init_temperature"]
    parameter = nn.Parameter(torch.tensor(float(start)))
    optimizer = torch.optim.Adam([parameter], lr=lr)
    cosines, target = image_emb @ text_emb.T, torch.arange(len(image_emb))

    def tau():
        return 1 / parameter.exp().clamp(max=100) if log_scale else parameter

    def loss():
        logits = cosines / tau()
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2

    first_non_positive = None
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
        if first_non_positive is None and tau().item() <= 0:
            first_non_positive = step
    with torch.no_grad():
        return tau().item(), loss().item(), first_non_positive


with torch.no_grad():
    _u = F.normalize(model.encode_image(gallery_images[:256].to(device)), dim=-1).cpu()
    _v = F.normalize(model.encode_text(gallery_texts[:256]), dim=-1).cpu()
temperature_runs = {}
for lr in (CFG["lr"], CFG["temperature_big_lr"]):
    for log_scale, kind in ((False, "plain"), (True, "log")):
        temperature_runs[kind, lr] = fit_temperature_only(_u, _v, log_scale, lr)
        final_tau, final_loss, first = temperature_runs[kind, lr]
        print(f"lr {lr:g}, {'t = log s' if log_scale else 'τ напрямую':>10}: после {CFG['temperature_steps']} шагов "
              f"τ = {final_tau:.4f}, потеря {final_loss:.3f}"
              + (f"; τ ≤ 0 впервые на шаге {first}" if first else ""))
for (kind, lr), (final_tau, final_loss, _) in temperature_runs.items():
    size = "small" if lr == CFG["lr"] else "big"
    utils.record(f"temperature_{kind}_{size}_lr_tau", final_tau)
    utils.record(f"temperature_{kind}_{size}_lr_loss", final_loss)
utils.record("temperature_plain_big_lr_first_non_positive", temperature_runs["plain", CFG["temperature_big_lr"]][2] or 0)

# %% [markdown]
# У такой потери на замороженных векторах есть лучшая конечная температура:
# {{result 08_clip fast.values.temperature_plain_small_lr_tau .4f}} (модель курса выучила близкую). Со скоростью главы
# температура напрямую приходит к ней за отведённые шаги, а через логарифм идёт медленнее и останавливается на
# {{result 08_clip fast.values.temperature_log_small_lr_tau .4f}}: шаг меняет $\tau$ лишь в $e^{\text{lr}}$ раз. Со
# скоростью в 100 раз большей логарифм приходит к той же
# {{result 08_clip fast.values.temperature_log_big_lr_tau .4f}}, а температура напрямую становится отрицательной уже на
# шаге {{result 08_clip fast.values.temperature_plain_big_lr_first_non_positive}} и назад не возвращается: после
# обучения $\tau$ = {{result 08_clip fast.values.temperature_plain_big_lr_tau .3f}}, потеря
# {{result 08_clip fast.values.temperature_plain_big_lr_loss .2f}} против
# {{result 08_clip fast.values.temperature_log_big_lr_loss .3f}} у логарифма. При отрицательной температуре чем меньше
# косинус, тем больше логит: модель учится ставить рядом несовпадающие пары. Логарифм не даёт $\tau$ стать
# отрицательной при любой скорости, а ограничение $s \le 100$ — уйти к нулю.

# %% [markdown]
# ## 7. Zero-shot классификация
#
# Чтобы классифицировать картинки без обучения, каждый класс описываем текстом — **подсказкой** (prompt), —
# кодируем подсказки текстовым кодировщиком и для каждой картинки берём softmax масштабированных косинусов со
# всеми классами. У класса может быть несколько подсказок: CLIP усредняет их нормированные векторы и снова
# нормирует — это **ансамбль подсказок**. Ансамбль сглаживает случайности одной формулировки: в статье CLIP ансамбль
# из 80 шаблонов вроде «a photo of a {}» добавил на ImageNet 3,5 пункта к одной подсказке, а вместе с подбором
# шаблона — почти пять.

# %% [markdown]
# ### Упражнение 3: `zero_shot_classify`
#
# Напишите `zero_shot_classify(model, images, class_prompts)`:
# - `model` умеет `encode_image(images)` и `encode_text(list_of_strings)` (векторы **не нормированы**) и хранит
#   `model.logit_scale` (как в `clip_loss`: масштаб $e^t$, не больше 100);
# - `class_prompts` — список по классам; элемент — строка (одна подсказка) или список строк (ансамбль);
# - вектор класса — среднее нормированных векторов его подсказок, снова нормированное;
# - верните вероятности `(len(images), len(class_prompts))`: softmax масштабированных косинусов, без градиентов.

# %% grade_id="zero_shot_impl" solution=true
@torch.no_grad()
def zero_shot_classify(model, images, class_prompts):
    ### BEGIN SOLUTION
    image_emb = F.normalize(model.encode_image(images), dim=-1)
    classes = []
    for prompts in class_prompts:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        classes.append(F.normalize(F.normalize(model.encode_text(prompts), dim=-1).mean(0), dim=0))
    logits = model.logit_scale.exp().clamp(max=100) * image_emb @ torch.stack(classes).T
    return logits.softmax(dim=-1)
    ### END SOLUTION


# %% grade_id="zero_shot_tests" points=3
class _TToyModel(nn.Module):
    """Картинки — уже векторы; текст — сохранённый для него вектор."""

    def __init__(self, text_vectors, logit_scale):
        super().__init__()
        self.text_vectors, self.logit_scale = text_vectors, torch.tensor(float(logit_scale))

    def encode_image(self, images):
        return images.float()

    def encode_text(self, texts):
        return torch.stack([self.text_vectors[t] for t in texts])


_t_toy = _TToyModel({"a": torch.tensor([2.0, 0.0]), "b": torch.tensor([0.0, 5.0])}, np.log(10.0))
_t_imgs = torch.tensor([[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
_t_p = zero_shot_classify(_t_toy, _t_imgs, ["a", "b"])
utils.assert_shape(_t_p, (3, 2), "вероятности: картинки × классы")
utils.assert_close(_t_p.sum(1), torch.ones(3), "вероятности по классам в сумме дают 1", atol=1e-6)
utils.assert_close(_t_p[0], torch.softmax(torch.tensor([10.0, 0.0]), 0), "первая картинка", atol=1e-6)
utils.assert_close(_t_p[2], torch.tensor([0.5, 0.5]), "картинка посередине между классами", atol=1e-6)
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
torch.manual_seed(0)
_t_vectors = {f"t{i}": torch.randn(6) * (i + 1) for i in range(7)}
_t_toy = _TToyModel(_t_vectors, 1.7)
_t_imgs = torch.randn(9, 6) * 4
_t_groups = [["t0", "t1", "t2"], "t3", ["t4", "t5"], ["t6"]]


def _t_reference(model, images, groups, scale):
    u = images / images.norm(dim=1, keepdim=True)
    rows = []
    for g in groups:
        g = [g] if isinstance(g, str) else g
        v = torch.stack([model.text_vectors[t] / model.text_vectors[t].norm() for t in g]).mean(0)
        rows.append(v / v.norm())
    return torch.softmax(min(scale, 100.0) * u @ torch.stack(rows).T, dim=1)


with utils.checking("zero_shot_classify, где класс — одна строка-подсказка или список подсказок"):
    _t_p_groups = zero_shot_classify(_t_toy, _t_imgs, _t_groups)
utils.assert_close(_t_p_groups, _t_reference(_t_toy, _t_imgs, _t_groups, np.exp(1.7)),
                   "вероятности при ансамблях подсказок (нормированные векторы подсказок, среднее, снова нормировка)",
                   atol=1e-5)
_t_toy_big = _TToyModel(_t_vectors, np.log(1e4))
utils.assert_close(zero_shot_classify(_t_toy_big, _t_imgs, _t_groups), _t_reference(_t_toy_big, _t_imgs, _t_groups,
                                                                                    100.0),
                   "масштаб e^logit_scale не больше 100", atol=1e-5)
# Более длинный вектор текста не должен делать свой класс вероятнее: подсказки нормируются до усреднения.
_t_toy2 = _TToyModel({"x": torch.tensor([1.0, 0.0]), "y": torch.tensor([0.0, 100.0]), "z": torch.tensor([1.0, 0.1])},
                     np.log(10.0))
_t_p = zero_shot_classify(_t_toy2, torch.tensor([[1.0, 1.0]]), [["x", "y"], "z"])
_t_ref = _t_reference(_t_toy2, torch.tensor([[1.0, 1.0]]), [["x", "y"], "z"], 10.0)
utils.assert_close(_t_p, _t_ref, "нормируйте векторы подсказок до усреднения", atol=1e-5)
# Без градиентов.
_t_learned = _TToyModel(_t_vectors, 1.0)
_t_learned.logit_scale.requires_grad_(True)
assert not zero_shot_classify(_t_learned, _t_imgs, _t_groups).requires_grad, "классификация — без градиентов"
### END HIDDEN TESTS

# %% [markdown]
# **Какие подсказки.** Сравним три способа описать класс «тройка»:
# - **одно слово**: «тройка» — такой подписи в обучении не было (там всегда есть цвет фона и место);
# - **один шаблон**: «большая тройка в центре на сером фоне» — подпись из обучения, но цвет, размер и место могут не
#   совпасть с картинкой;
# - **ансамбль**: все формулировки всех сочетаний цвета, размера и места с этой цифрой (360 подписей на класс).
#
# Проверяем на картинках с одной цифрой: знакомые композиции и отложенные (цифра на своём «запретном» фоне —
# таких картинок модель не видела, а подписи к ним — тоже). Случайное угадывание — 10%.

# %%
def digit_prompts(kind):
    """Промпты для десяти цифр: одно слово, один шаблон в стиле обучающих подписей или ансамбль всех формулировок
    со всеми цветами, размерами и положениями."""
    prompts = []
    for d in range(10):
        name = cap.DIGIT_WORDS[d][0]
        if kind == "слово":
            prompts.append(name)
        elif kind == "шаблон":
            prompts.append(cap.phrasings(cap.Scene(d, "серый"))[0])
        else:
            prompts.append([text for colour in cap.COLOURS for size in cap.SIZES for position in cap.POSITIONS
                            for text in cap.phrasings(cap.Scene(d, colour, size, position))])
    return prompts


def zero_shot_accuracy(model, images, labels, prompts):
    """Доля ``images``, у которых самый вероятный класс — их метка; один вызов, чтобы промпты кодировались один раз."""
    probs = zero_shot_classify(model, images.to(device), prompts).cpu()
    return (probs.argmax(1) == torch.as_tensor(labels)).float().mean().item()


def zero_shot_sets(n, seed=2):
    """Картинки с одной цифрой из тестовых цифр MNIST и их цифры: знакомые сочетания и отложенные."""
    sets = {}
    for i, (name, held_out) in enumerate((("знакомые", False), ("отложенные", True))):
        images, _, scenes = cap.make_pairs(mnist_test_x, mnist_test_y, n, held_out, seed=seed + i, two_digits=0.0)
        sets[name] = (images, [s.digit for s in scenes])
    return sets


def zero_shot_table(model, sets, kinds=("слово", "шаблон", "ансамбль")):
    """Точность zero-shot для каждого вида промптов и каждого набора картинок: {(kind, имя набора): точность}."""
    return {(kind, name): zero_shot_accuracy(model, *sets[name], digit_prompts(kind)) for kind in kinds for name in sets}


zs_sets = zero_shot_sets(CFG["zero_shot_images"])
zero_shot = zero_shot_table(model, zs_sets)
demo_zero_shot = zero_shot_accuracy(demo, *zs_sets["отложенные"], digit_prompts("ансамбль"))
print(f"{'подсказки':<12}{'знакомые':>12}{'отложенные':>12}   (случайно: 10%)")
for kind in ("слово", "шаблон", "ансамбль"):
    print(f"{kind:<12}{zero_shot[(kind, 'знакомые')]:>12.1%}{zero_shot[(kind, 'отложенные')]:>12.1%}")
print(f"короткое обучение ({CFG['demo_steps']} шагов), ансамбль, отложенные: {demo_zero_shot:.1%}")

# %% [markdown]
# **Откуда разница между наборами?** Знакомые и отложенные картинки различаются сочетаниями цифры и фона, но
# ещё и почерком, размерами и местами: это разные случайные выборки. Уберём всё, кроме фона: возьмём одни и те же
# цифры MNIST с одними и теми же размером и местом и нарисуем каждую на всех шести фонах. Тогда любая разница в
# точности — от цвета фона. Отдельно посчитаем «запретный» фон каждой цифры (на нём она в обучении не встречалась)
# и пять остальных.

# %%
def recoloured(n, seed=4):
    """n цифр из тестовых цифр MNIST, каждая на всех фонах с тем же размером и местом: картинки (n·6, 3, 48, 48),
    их цифры и номера цветов фона."""
    rng = np.random.default_rng(seed)
    images, digits, colour_ids = [], [], []
    for i in rng.choice(len(mnist_test_y), n, replace=False):
        digit, glyph = int(mnist_test_y[i]), mnist_test_x[i].squeeze(0)
        size, position = str(rng.choice(list(cap.SIZES))), str(rng.choice(list(cap.POSITIONS)))
        for c, colour in enumerate(cap.COLOURS):
            images.append(cap.render(cap.Scene(digit, colour, size, position), (glyph,)))
            digits.append(digit)
            colour_ids.append(c)
    return torch.stack(images), torch.tensor(digits), torch.tensor(colour_ids)


rc_images, rc_digits, rc_colours = recoloured(CFG["recoloured_digits"])
rc_guess = zero_shot_classify(model, rc_images.to(device), digit_prompts("ансамбль")).argmax(1).cpu()
rc_right = (rc_guess == rc_digits).float()
rc_forbidden = rc_colours == rc_digits % len(cap.COLOURS)  # то же правило, что в cap.is_held_out
by_digit_colour = torch.zeros(10, len(cap.COLOURS))
for d in range(10):
    for c in range(len(cap.COLOURS)):
        by_digit_colour[d, c] = rc_right[(rc_digits == d) & (rc_colours == c)].mean()
# у скольких цифр запретный фон не хуже ни одного другого (равенство считаем: в клетке всего около n/10 картинок)
best_is_forbidden = sum(bool(by_digit_colour[d, d % len(cap.COLOURS)] >= by_digit_colour[d].max()) for d in range(10))
mistakes = Counter(zip(rc_digits[rc_right == 0].tolist(), rc_guess[rc_right == 0].tolist(), strict=True))
print(f"{CFG['recoloured_digits']} цифр, каждая на шести фонах: точность на запретном фоне "
      f"{rc_right[rc_forbidden].mean():.1%}, на пяти обучающих {rc_right[~rc_forbidden].mean():.1%}")
print(f"запретный фон не хуже остальных пяти у {best_is_forbidden} цифр из 10")
print("частые ошибки (цифра → ответ: сколько раз):",
      ", ".join(f"{a} → {b}: {k}" for (a, b), k in mistakes.most_common(4)))
utils.record("recoloured_digits", CFG["recoloured_digits"])
utils.record("recoloured_forbidden_accuracy", rc_right[rc_forbidden].mean().item())
utils.record("recoloured_training_colours_accuracy", rc_right[~rc_forbidden].mean().item())
utils.record("recoloured_best_is_forbidden", best_is_forbidden)
(top_digit, top_answer), top_count = mistakes.most_common(1)[0]
utils.record("recoloured_top_mistake_digit", top_digit)
utils.record("recoloured_top_mistake_answer", top_answer)
utils.record("recoloured_top_mistake_count", top_count)

fig, ax = plt.subplots(figsize=(5.5, 5))
im = ax.imshow(by_digit_colour.numpy(), vmin=float(by_digit_colour.min()), vmax=1, cmap="viridis")
for d in range(10):
    ax.add_patch(plt.Rectangle((d % len(cap.COLOURS) - 0.5, d - 0.5), 1, 1, fill=False, color="red", lw=2))
ax.set_xticks(range(len(cap.COLOURS)), list(cap.COLOURS), rotation=45)
ax.set_yticks(range(10))
ax.set_xlabel("цвет фона")
ax.set_ylabel("цифра")
ax.set_title("Точность zero-shot (ансамбль); красная рамка — запретный фон")
fig.colorbar(im, ax=ax, shrink=0.8)
plt.show()


# %% [markdown]
# **Что видно.** По оценке, записанной при обучении модели курса (на {{result checkpoint:clip_mnist.pt evaluation.zero_shot_seen.images}} картинках каждого набора; таблица выше в
# быстром режиме считается на меньшем числе картинок, и числа в ней немного другие), модель угадывает
# цифру на отложенных композициях в {{result checkpoint:clip_mnist.pt evaluation.zero_shot_held_out.ensemble .1%}} случаев, на знакомых — в
# {{result checkpoint:clip_mnist.pt evaluation.zero_shot_seen.ensemble .1%}}: новое сочетание цифры и фона ей не мешает. Фон здесь — просто
# цвет под белыми чернилами, и форму цифры кодировщик картинок узнаёт и на незнакомом фоне.
# То, что на знакомых точность даже ниже, вряд ли случайность выборки: стандартная ошибка разности двух таких
# долей на наборах этого размера — меньше процентного пункта, а разница в несколько раз больше. Опыт с
# перекрашиванием показывает, откуда она берётся: одни и те же цифры с теми же размером и местом модель угадывает на
# запретном фоне в {{result 08_clip fast.values.recoloured_forbidden_accuracy .1%}} случаев, на пяти обучающих —
# в {{result 08_clip fast.values.recoloured_training_colours_accuracy .1%}} (наш запуск в быстром режиме,
# {{result 08_clip fast.values.recoloured_digits}} цифр на каждом из шести фонов). Почерк, размеры и места тут одинаковы, а
# разница того же размера, что между наборами, так что её, по-видимому, почти целиком объясняет сочетание цифры с
# фоном. Запретный фон не хуже ни одного другого (с учётом равенств) у
# {{result 08_clip fast.values.recoloured_best_is_forbidden}} цифр из 10; в клетке карты около пятидесяти картинок, и у
# лёгких цифр многие клетки равны, так что порядок цветов у отдельной цифры — грубая оценка. Самая частая ошибка — цифра
# {{result 08_clip fast.values.recoloured_top_mistake_digit}}, принятая за
# {{result 08_clip fast.values.recoloured_top_mistake_answer}}
# ({{result 08_clip fast.values.recoloured_top_mistake_count}} раз). Почему цифру легче узнать на фоне, с которым
# она в обучении не встречалась, этот опыт не объясняет: то ли дело в самих этих цветах для этих цифр, то ли в том,
# что фон запретный. Различить эти причины может только модель, обученная с другим правилом отложенных сочетаний; в
# главе такого замера нет.
#
# Ансамбль подсказок в нашем маленьком мире ничего заметного не даёт: на отложенных
# {{result checkpoint:clip_mnist.pt evaluation.zero_shot_held_out.one_word .1%}} с одним словом,
# {{result checkpoint:clip_mnist.pt evaluation.zero_shot_held_out.one_template .1%}} с одним шаблоном и
# {{result checkpoint:clip_mnist.pt evaluation.zero_shot_held_out.ensemble .1%}} с ансамблем, на знакомых —
# {{result checkpoint:clip_mnist.pt evaluation.zero_shot_seen.one_word .1%}}, {{result checkpoint:clip_mnist.pt evaluation.zero_shot_seen.one_template .1%}} и
# {{result checkpoint:clip_mnist.pt evaluation.zero_shot_seen.ensemble .1%}}: от одного слова ансамбль отличается на доли пункта, а на
# знакомых он даже чуть хуже. Подписи сгенерированы по шести образцам, у каждой цифры одно название, и, по-видимому,
# вектор одного слова уже достаточно близок к векторам полных подписей с этой цифрой. В статье CLIP ансамбль
# помогает, потому что настоящие подписи разнообразны, а одно слово бывает многозначным; здесь этого нет. У
# короткого обучения zero-shot точность заметно ниже, но уже в несколько раз выше случайной.

# %% [markdown]
# **Порядок слов.** Отложенные пары цифр проверяют, читает ли текстовый кодировщик порядок: для картинки «$a$ слева,
# $b$ справа» сравним подсказки «$a$ слева от $b$» и «$b$ слева от $a$» (ансамбль всех формулировок и цветов).
# Мешок слов без позиций дал бы здесь 50%.

# %%
def pair_prompts(a, b):
    return [t for colour in cap.COLOURS for t in cap.phrasings(cap.Scene(a, colour, right=b))]


@torch.no_grad()
def pair_order_accuracy(model, n, seed=4):
    """Доля отложенных картинок с двумя цифрами, где «a слева от b» побеждает «b слева от a» (ансамбли формулировок)."""
    images, _, scenes = cap.make_pairs(mnist_test_x, mnist_test_y, n, True, seed=seed, two_digits=1.0)
    image_emb = embed_in_batches(model.encode_image, images.to(device))
    orders = {(s.digit, s.right) for s in scenes} | {(s.right, s.digit) for s in scenes}
    vectors = {o: F.normalize(embed_in_batches(model.encode_text, pair_prompts(*o)).mean(0), dim=0) for o in orders}
    correct = [bool(emb @ vectors[(s.digit, s.right)] >= emb @ vectors[(s.right, s.digit)])
               for emb, s in zip(image_emb, scenes, strict=True)]
    return float(np.mean(correct))


pair_order = pair_order_accuracy(model, CFG["zero_shot_images"] // 2)
print(f"порядок цифр на отложенных парах: {pair_order:.1%} верно (случайно: 50%)")

# %% [markdown]
# **Линейный классификатор на векторах.** Насколько хорошо векторы картинок вообще разделяют цифры? Обучим на них логистическую регрессию
# (scikit-learn) по настоящим меткам обучающих картинок с одной цифрой — знакомых композиций — и проверим на тех же
# наборах, что и zero-shot. Классификатор видел размеченные примеры, zero-shot — ни одного.

# %%
def linear_probe(model, n, sets, seed=5):
    """Точность на ``sets`` логистической регрессии, обученной на векторах ``n`` размеченных обучающих
    картинок с одной цифрой."""
    images, _, scenes = cap.make_pairs(mnist_train_x, mnist_train_y, n, False, seed=seed, two_digits=0.0)
    features = embed_in_batches(model.encode_image, images.to(device)).cpu().numpy()
    classifier = LogisticRegression(max_iter=2000).fit(features, [s.digit for s in scenes])
    return {name: classifier.score(embed_in_batches(model.encode_image, x.to(device)).cpu().numpy(), y)
            for name, (x, y) in sets.items()}


linear_probe_accuracy = linear_probe(model, CFG["probe_images"], zs_sets)
print(f"линейный классификатор ({CFG['probe_images']} размеченных картинок): знакомые {linear_probe_accuracy['знакомые']:.1%}, "
      f"отложенные {linear_probe_accuracy['отложенные']:.1%}")

# %% [markdown]
# На знакомых композициях классификатор и zero-shot почти равны, а на отложенных классификатор заметно хуже (у модели курса
# {{result checkpoint:clip_mnist.pt evaluation.linear_probe.held_out .1%}} против
# {{result checkpoint:clip_mnist.pt evaluation.zero_shot_held_out.ensemble .1%}} у zero-shot). Вероятное
# объяснение: в обучающих картинках каждая цифра ни разу не стоит на одном из фонов, и классификатор, подгоняясь под метки,
# выучивает и это — «на красном фоне нуля не бывает». Разметка учит классификатор всему, что коррелирует с меткой в
# обучающих данных, а текстовое описание класса говорит только о самой цифре.

# %% [markdown]
# **Почему картиночный кодировщик не усредняет по пространству.** В разделе 5 он заканчивается линейным слоем по всей
# карте 6×6. Проверим, что стёрло бы глобальное усреднение: возьмём карты признаков кодировщика модели курса
# (128 каналов × 6 × 6) для картинок с одной цифрой и научим логистическую регрессию угадывать, где стоит цифра (одно
# из пяти мест), по всей карте и по её среднему по пространству.

# %%
def position_probe(model, n, seed=6):
    """Точность угадывания места цифры (из пяти) по карте признаков целиком и по её среднему по пространству:
    логистическая регрессия обучается на трёх четвертях картинок и проверяется на остальных."""
    images, _, scenes = cap.make_pairs(mnist_train_x, mnist_train_y, n, False, seed=seed, two_digits=0.0)
    trunk = model.image_encoder.features[:-1]  # всё, кроме Flatten: карты (N, 128, 6, 6)
    with torch.no_grad():
        maps = torch.cat([trunk(images[i:i + 500].to(device)) for i in range(0, n, 500)]).cpu()
    places, split = np.array([list(cap.POSITIONS).index(s.position) for s in scenes]), n * 3 // 4
    return {name: LogisticRegression(max_iter=2000).fit(f[:split], places[:split]).score(f[split:], places[split:])
            for name, f in (("вся карта", maps.flatten(1).numpy()), ("среднее", maps.mean((2, 3)).numpy()))}


position_accuracy = position_probe(model, CFG["position_probe_images"])
print(f"где стоит цифра (5 мест, случайно 20%): по всей карте {position_accuracy['вся карта']:.1%}, "
      f"по среднему по пространству {position_accuracy['среднее']:.1%}")
utils.record("position_probe_full_map", position_accuracy["вся карта"])
utils.record("position_probe_pooled", position_accuracy["среднее"])

# %% [markdown]
# По всей карте место цифры угадывается в {{result 08_clip fast.values.position_probe_full_map .1%}} случаев, по
# среднему — в {{result 08_clip fast.values.position_probe_pooled .1%}}. Усреднение стирает большую часть сведений о
# месте. Остаток выше случайных 20% возможен потому, что нули паддинга делают признаки у краёв карты иными, и
# среднее немного зависит от того, у какого края цифра. Оговорка: этот кодировщик учился с линейным слоем по всей
# карте, и его признаки не готовились к усреднению; кодировщик, обученный с усреднением, мог бы сильнее опереться на
# края, но сведения о месте и у него прошли бы только через среднее.

# %% [markdown]
# ## 8. Поиск картинок по тексту
#
# Галерея кодируется один раз: **индекс** — нормированные векторы всех её картинок. Запрос кодируется текстовым
# кодировщиком, и ответ — картинки с наибольшим косинусом.

# %% [markdown]
# ### Упражнение 4: `search`
#
# Напишите `search(model, image_index, query, k)`:
# - `image_index` — тензор `(N, D)` векторов картинок галереи (могут быть не нормированы), `query` — строка;
# - верните `(indices, scores)`: номера `k` картинок с **наибольшим** косинусом между запросом и картинкой, по
#   убыванию, и сами косинусы (тензоры длины `k`), без градиентов.

# %% grade_id="search_impl" solution=true
@torch.no_grad()
def search(model, image_index, query, k):
    ### BEGIN SOLUTION
    query_emb = F.normalize(model.encode_text([query]), dim=-1)[0]
    scores = F.normalize(image_index, dim=-1) @ query_emb
    top = scores.topk(k)
    return top.indices, top.values
    ### END SOLUTION


# %% grade_id="search_tests" points=3
class _TQueries:
    """Модель с сохранёнными векторами текстов: encode_text просто находит их."""

    def __init__(self, text_vectors):
        self.text_vectors = text_vectors

    def encode_text(self, texts):
        return torch.stack([self.text_vectors[t] for t in texts])


_t_toy = _TQueries({"вправо": torch.tensor([2.0, 0.0])})
_t_index = torch.tensor([[0.0, 1.0], [5.0, 0.1], [1.0, 1.0], [-3.0, 0.0]])
_t_idx, _t_scores = search(_t_toy, _t_index, "вправо", 2)
assert [int(i) for i in _t_idx] == [1, 2], f"ближайшие к запросу картинки — 1 и 2, получено {_t_idx.tolist()}"
utils.assert_close(_t_scores, torch.tensor([5 / np.hypot(5, 0.1), 1 / np.sqrt(2)]), "косинусы лучших картинок",
                   atol=1e-6)
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
torch.manual_seed(3)
_t_vectors = {"q1": torch.randn(8), "q2": torch.randn(8) * 10}
_t_toy = _TQueries(_t_vectors)
_t_index = torch.randn(50, 8) * torch.rand(50, 1) * 5
for _t_q, _t_k in (("q1", 5), ("q2", 12), ("q1", 1)):
    _t_cos = torch.tensor([float(_t_index[i] @ _t_vectors[_t_q] / (_t_index[i].norm() * _t_vectors[_t_q].norm()))
                           for i in range(50)])
    _t_order = sorted(range(50), key=lambda i, c=_t_cos: -c[i])[:_t_k]
    _t_idx, _t_scores = search(_t_toy, _t_index, _t_q, _t_k)
    assert len(_t_idx) == _t_k and len(_t_scores) == _t_k, f"верните k = {_t_k} номеров и косинусов"
    assert [int(i) for i in _t_idx] == _t_order, (
        f"запрос {_t_q}, k = {_t_k}: ожидались картинки {_t_order}, получено {[int(i) for i in _t_idx]} "
        "(наибольший косинус, по убыванию)")
    utils.assert_close(torch.as_tensor(_t_scores, dtype=torch.float32), _t_cos[_t_order], "косинусы найденных картинок",
                       atol=1e-5)
_t_learned = _TQueries({"q": torch.randn(8, requires_grad=True)})
assert not search(_t_learned, _t_index, "q", 3)[1].requires_grad, "поиск — без градиентов"
### END HIDDEN TESTS

# %% [markdown]
# **Recall@k.** Каждая подпись отложенной галереи — запрос; её собственная картинка должна оказаться среди первых
# $k$ найденных. Но в галерее есть и другие картинки той же сцены (та же цифра, тот же фон и место, другой
# почерк), и найти их тоже правильно; поэтому посчитаем и **точность сцены@1**: показывает ли первая найденная
# картинка то, что сказано в запросе. Случайный поиск дал бы Recall@10 = 10 / N для галереи из N картинок.

# %%
def recall_at_k(model, images, texts, scenes, ks=(1, 5, 10)):
    """Recall@k поиска картинок по тексту (своя картинка подписи среди первых k) и доля запросов, у которых
    первая картинка показывает сцену запроса."""
    image_index = embed_in_batches(model.encode_image, images.to(device))
    ranks, scene_hits = [], []
    for i, text in enumerate(texts):
        idx, _ = search(model, image_index, text, max(ks))
        idx = idx.tolist()
        ranks.append(idx.index(i) if i in idx else max(ks))
        scene_hits.append(scenes[idx[0]] == scenes[i])
    ranks = np.array(ranks)
    return {k: float((ranks < k).mean()) for k in ks}, float(np.mean(scene_hits))


recall, scene_at_1 = recall_at_k(model, gallery_images, gallery_texts, gallery_scenes)
demo_recall, _ = recall_at_k(demo, gallery_images, gallery_texts, gallery_scenes)
print(f"текст → картинка, {len(gallery_images)} отложенных картинок: " +
      ", ".join(f"Recall@{k} = {v:.2f}" for k, v in recall.items()) + f"; точность сцены@1 = {scene_at_1:.2f}")
print(f"короткое обучение ({CFG['demo_steps']} шагов): Recall@10 = {demo_recall[10]:.2f}; "
      f"случайно: {10 / len(gallery_images):.2f}")

# %% [markdown]
# На полной галерее из {{result checkpoint:clip_mnist.pt evaluation.text_to_image.gallery}} отложенных картинок
# модель курса находит картинку запроса первой в
# {{result checkpoint:clip_mnist.pt evaluation.text_to_image.recall_at_1 .0%}} случаев, среди первых десяти — в
# {{result checkpoint:clip_mnist.pt evaluation.text_to_image.recall_at_10 .0%}}, а первая найденная картинка
# показывает сцену запроса в {{result checkpoint:clip_mnist.pt evaluation.text_to_image.scene_at_1 .0%}} случаев.
# Recall@1 невелик не потому, что поиск ошибается: у каждой сцены в галерее несколько картинок, и подпись не
# говорит, каким почерком написана цифра, — любая из них верный ответ.

# %% [markdown]
# Запросы можно писать и свои, любыми словами словаря. В галерее только отложенные композиции: каждая цифра — на
# своём единственном фоне (тройка — на жёлтом, семёрка — на зелёном, шестёрка и ноль — на красном), и 12 пар цифр
# вроде «двойка слева от четвёрки». Вот первые восемь найденных картинок для нескольких запросов (в заголовке
# строки — запрос, под картинкой — косинус).

# %%
gallery_index = embed_in_batches(model.encode_image, gallery_images.to(device))
queries = ["тройка на жёлтом фоне", "большая семёрка вверху на зелёном фоне", "двойка слева от четвёрки",
           "маленькая пятёрка справа", "на красном фоне шестёрка"]
def plot_search(model, image_index, images, queries, k=8):
    """Первые ``k`` картинок каждого запроса, по строке на запрос, под каждой картинкой — косинус."""
    fig, axes = plt.subplots(len(queries), k, figsize=(1.2 * k, 1.6 * len(queries)), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.95, bottom=0.03, hspace=0.6, wspace=0.08)
    for row, query in zip(axes, queries, strict=True):
        idx, scores = search(model, image_index, query, k)
        for ax, i, score in zip(row, idx.tolist(), scores.tolist(), strict=True):
            ax.imshow(images[i].permute(1, 2, 0).cpu().numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"{score:.2f}", fontsize=8, labelpad=2)
        row[0].text(0, 1.06, f"«{query}»", transform=row[0].transAxes, fontsize=10, ha="left", va="bottom")
    plt.show()


plot_search(model, gallery_index, gallery_images, queries)

# %% [markdown]
# **Обратно: картинка → текст.** Кандидаты — все формулировки всех отложенных сцен; для картинки печатаем три
# ближайшие подписи. Точность здесь — доля картинок, у которых первая подпись описывает их сцену.

# %%
def caption_candidates(scenes):
    """Все формулировки каждой различной сцены из ``scenes`` и сцена, которую описывает каждая из них."""
    distinct = sorted(set(scenes), key=repr)
    return [t for s in distinct for t in cap.phrasings(s)], [s for s in distinct for _ in cap.phrasings(s)]


def nearest_caption_accuracy(image_vectors, text_vectors, owners, scenes):
    """Доля картинок, ближайшая подпись которых (строки ``text_vectors``, описывающие ``owners``) показывает их сцену."""
    best = (image_vectors @ text_vectors.T).argmax(1).tolist()
    return float(np.mean([owners[j] == scenes[i] for i, j in enumerate(best)]))


def image_to_text_accuracy(model, images, scenes):
    """Доля ``images``, у которых ближайшая подпись среди всех формулировок их сцен описывает их собственную сцену."""
    texts, owners = caption_candidates(scenes)
    return nearest_caption_accuracy(embed_in_batches(model.encode_image, images.to(device)),
                                    embed_in_batches(model.encode_text, texts), owners, scenes)


candidate_texts, candidate_owners = caption_candidates(gallery_scenes)
text_index = embed_in_batches(model.encode_text, candidate_texts)
image_to_text = nearest_caption_accuracy(gallery_index, text_index, candidate_owners, gallery_scenes)
print(f"картинка → текст: у {image_to_text:.1%} картинок первая из {len(candidate_texts)} подписей описывает их сцену")
utils.show_images(gallery_images[:6], nrow=6, labels=list(range(6)), title="Картинки и их ближайшие подписи")
plt.show()
for i in range(6):
    top = (gallery_index[i] @ text_index.T).topk(3)
    print(f"{i}: " + " | ".join(f"{candidate_texts[j]} ({s:.2f})" for s, j in zip(top.values.tolist(),
                                                                                    top.indices.tolist(),
                                                                                    strict=True)))

# %% [markdown]
# ## 9. Веб-приложение поиска
#
# Поиск, который вы написали в упражнении, можно отдать человеку как приложение: поле для запроса и найденные
# картинки. Маленькое приложение на Streamlit лежит в папке курса, `demo/clip_search.py` (около 80 строк): оно
# загружает модель курса, кодирует отложенную галерею из 1000 картинок и для набранного запроса показывает
# ближайшие по косинусу — тот же расчёт, что в вашей `search`. Ячейка ниже запускает его и показывает прямо под
# собой — и на своём компьютере, и в Colab (там адрес открывается через прокси Colab). Прочитайте код приложения и
# измените его: например, добавьте свои примеры запросов или покажите рядом с каждой картинкой её подпись; после
# правки нажмите в приложении «Rerun». На своём компьютере его можно запустить и из терминала, из папки курса:
# `streamlit run demo/clip_search.py`.
#
# Здесь CLIP только **находит** готовые картинки. Обратная задача — **нарисовать** картинку по тексту, как DALL-E, —
# тема итогового проекта (глава 12): там тот же CLIP курса даёт генератору вектор подписи и выбирает лучший из
# нарисованных вариантов.

# %%
if FAST or utils.is_autograding():
    print('В быстром режиме приложение не запускается: чтобы открыть его, выполните utils.show_app("clip_search").')
else:
    utils.show_app("clip_search")

# %% [markdown]
# ## 10. Настоящий CLIP (только с интернетом)
#
# Предобученный `openai/clip-vit-base-patch32` из библиотеки `transformers` умеет то же на фотографиях и английских
# текстах. Раздел выполняется, только если доступен Hugging Face Hub, и не в быстром режиме: веса — около 600 МБ.

# %%
def pooled(features):
    """Спроецированные признаки из get_image_features / get_text_features: в transformers 4 это тензор,
    в transformers 5 — объект, где они лежат в ``pooler_output``."""
    return features if isinstance(features, torch.Tensor) else features.pooler_output


@torch.no_grad()
def pretrained_search(hf_model, hf_processor, images, queries, k=8):
    """Сетки top-k из ``images`` (n, 3, H, W) в [0, 1] для английских ``queries`` по предобученному CLIP с Hugging Face."""
    pixels = hf_processor(images=list((images * 255).byte().permute(0, 2, 3, 1).numpy()), return_tensors="pt")
    index = F.normalize(pooled(hf_model.get_image_features(pixel_values=pixels["pixel_values"].to(device))), dim=-1)
    for query in queries:
        tokens = hf_processor(text=[query], return_tensors="pt", padding=True).to(device)
        q = F.normalize(pooled(hf_model.get_text_features(input_ids=tokens["input_ids"],
                                                          attention_mask=tokens["attention_mask"])), dim=-1)
        top = (index @ q[0]).topk(k)
        utils.show_images(images[top.indices.cpu()], nrow=k, labels=[f"{v:.2f}" for v in top.values.tolist()],
                          title=f"openai/clip-vit-base-patch32: «{query}»")
        plt.show()


if FAST or not utils.hub_reachable():
    print("Раздел пропущен: быстрый режим или нет доступа к huggingface.co.")
else:
    from transformers import CLIPModel, CLIPProcessor

    hf_model = CLIPModel.from_pretrained("openai/clip-vit-base-patch32").to(device).eval()
    hf_processor = CLIPProcessor.from_pretrained("openai/clip-vit-base-patch32")
    # Те же отложенные картинки (процессор сам увеличит их до 224×224); запросы — по-английски, как учили эту модель.
    pretrained_search(hf_model, hf_processor, gallery_images[:200],
                      ["a handwritten digit three on a yellow background", "the digit seven on a green background"])

# %% [markdown]
# ## 11. Итоги эксперимента

# %%
print("режим:", "быстрый" if FAST else "полный", "| модель:", "курса" if clip_info else "обучена здесь")
rows = [
    ("zero_shot_held_out", "zero-shot, отложенные композиции (ансамбль)", zero_shot[("ансамбль", "отложенные")], ".1%"),
    ("zero_shot_seen", "zero-shot, знакомые композиции (ансамбль)", zero_shot[("ансамбль", "знакомые")], ".1%"),
    ("zero_shot_held_out_template", "zero-shot, отложенные, один шаблон", zero_shot[("шаблон", "отложенные")], ".1%"),
    ("zero_shot_held_out_word", "zero-shot, отложенные, одно слово", zero_shot[("слово", "отложенные")], ".1%"),
    ("zero_shot_seen_template", "zero-shot, знакомые, один шаблон", zero_shot[("шаблон", "знакомые")], ".1%"),
    ("pair_order_held_out", "порядок цифр, отложенные пары", pair_order, ".1%"),
    ("linear_probe_held_out", "линейный классификатор, отложенные", linear_probe_accuracy["отложенные"], ".1%"),
    ("linear_probe_seen", "линейный классификатор, знакомые", linear_probe_accuracy["знакомые"], ".1%"),
    ("recall_at_1", "текст → картинка, Recall@1", recall[1], ".2f"),
    ("recall_at_5", "текст → картинка, Recall@5", recall[5], ".2f"),
    ("recall_at_10", "текст → картинка, Recall@10", recall[10], ".2f"),
    ("scene_at_1", "текст → картинка, точность сцены@1", scene_at_1, ".2f"),
    ("image_to_text_scene_at_1", "картинка → текст, точность сцены@1", image_to_text, ".2f"),
    ("temperature", "выученная температура τ", temperature, ".4f"),
    ("false_negative_share", "доля картинок батча с «двойником»", false_negative_share, ".1%"),
    ("demo_zero_shot_held_out", "короткое обучение: zero-shot, отложенные", demo_zero_shot, ".1%"),
    ("demo_recall_at_10", "короткое обучение: Recall@10", demo_recall[10], ".2f"),
    ("demo_seconds", "короткое обучение: секунд", demo_seconds, ".1f"),
]
utils.summary(rows)
utils.record("gallery_size", len(gallery_images))

# %% [markdown]
# ## 12. Вопросы (проверяет преподаватель)
#
# **Вопрос 1.** Почему CLIP учат контрастно — «найди свою пару среди чужих», — а не предсказывать подпись к
# картинке слово за словом? Что дают отрицательные примеры и почему важен размер батча?

# %% [markdown] grade_id="q_why_contrastive" points=2 solution=true
# ### BEGIN SOLUTION
# Предсказывать подпись дословно — трудная и избыточная задача: у картинки много верных формулировок, и модель
# тратит силы на порядок слов и стиль, а не на соответствие. Контрастной задаче достаточно, чтобы своя подпись
# была ближе чужих, — это прямо то, что нужно для поиска и zero-shot, и в статье CLIP такое обучение было в
# несколько раз эффективнее по данным, чем предсказание слов. Отрицательные примеры — остальные элементы батча:
# без них векторы могли бы совпасть у всех картинок и текстов (коллапс). Чем больше батч, тем больше и труднее
# отрицательные, тем точнее оценка InfoNCE и тем тоньше различия, которые модель выучивает (CLIP — 32 768 пар в
# батче). Цена — ложные отрицательные: две пары одной сцены в батче считаются «чужими».
# ### END SOLUTION

# %% [markdown]
# **Вопрос 2.** Что делает температура $\tau$ (масштаб $s = 1/\tau$)? Что произойдёт при очень большой и очень
# маленькой температуре, зачем её учат и зачем ограничивают масштаб числом 100? Что показал замер в этой главе?

# %% [markdown] grade_id="q_temperature" points=2 solution=true
# ### BEGIN SOLUTION
# Косинусы лежат в [−1, 1]; без масштаба softmax по ним почти равномерный, и даже идеальная модель получала бы
# большую потерю. Масштаб s решает, насколько резко softmax выделяет лучшую пару. При большой τ (малом s) все
# вероятности близки, градиенты слабые и одинаковые для трудных и лёгких отрицательных; при очень маленькой τ
# softmax почти жёсткий: градиент идёт только от самого трудного отрицательного, потеря и градиенты скачут, и
# ошибочные пары (ложные отрицательные) штрафуются очень сильно. Подобрать τ руками трудно, поэтому её учат
# вместе с моделью (через логарифм, чтобы s > 0); ограничение s ≤ 100 не даёт ей уйти к нулю и сделать обучение
# неустойчивым. В главе τ уменьшилась с 0,07 до {{result checkpoint:clip_mnist.pt temperature .3f}}: по мере обучения модель становится
# увереннее, и выгоднее более резкий softmax.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 3.** Что нужно, чтобы zero-shot классификация работала? Сравните по таблице раздела 7 точность на
# знакомых и отложенных композициях, точность с одним словом и с ансамблем подсказок и опыт с перекрашиванием. Что
# эти цифры говорят о модели и чего из них заключить нельзя?

# %% [markdown] grade_id="q_zero_shot" points=2 solution=true
# ### BEGIN SOLUTION
# Нужно, чтобы классы можно было назвать словами, которые модель видела в обучении, и чтобы их признаки
# встречались в обучающих картинках: тогда векторы текста класса и картинок класса уже рядом. Понятие, которого
# не было в подписях (или которое нельзя увидеть на картинке), zero-shot не распознать.
#
# Отложенные композиции — цифра на фоне, с которым она в обучении не встречалась. Модель курса узнаёт их даже
# чаще, чем знакомые: {{result checkpoint:clip_mnist.pt evaluation.zero_shot_held_out.ensemble .1%}} против
# {{result checkpoint:clip_mnist.pt evaluation.zero_shot_seen.ensemble .1%}} (ансамбль, по {{result checkpoint:clip_mnist.pt evaluation.zero_shot_seen.images}} картинок).
# Значит, новое сочетание модели не мешает. Разница между наборами в несколько раз больше стандартной ошибки (на
# таком числе картинок она меньше процентного пункта), так что это вряд ли шум. Опыт с перекрашиванием находит её
# источник: те же цифры с теми же размером и местом угадываются на запретном фоне в
# {{result 08_clip fast.values.recoloured_forbidden_accuracy .1%}} случаев, на обучающих — в
# {{result 08_clip fast.values.recoloured_training_colours_accuracy .1%}}: разница того же размера, так что её,
# по-видимому, почти целиком объясняет сочетание цифры с фоном, а не почерк или места. Цифра и фон влияют на ответ
# не независимо: точность одной и той же цифры зависит от фона, и запретный фон для неё не хуже остальных. Чего
# заключить нельзя: почему запретный фон помогает — из-за самих этих цветов (например, контраста белых чернил) или
# из-за того, что он запретный; для этого нужна модель, обученная с другим правилом отложенных сочетаний.
#
# Ансамбль подсказок здесь почти ничего не меняет: на отложенных {{result checkpoint:clip_mnist.pt evaluation.zero_shot_held_out.one_word .1%}}
# с одним словом и {{result checkpoint:clip_mnist.pt evaluation.zero_shot_held_out.ensemble .1%}} с ансамблем, на знакомых
# {{result checkpoint:clip_mnist.pt evaluation.zero_shot_seen.one_word .1%}} и {{result checkpoint:clip_mnist.pt evaluation.zero_shot_seen.ensemble .1%}} — доли пункта в
# разные стороны. Так что «ансамбль помогает» по этим цифрам утверждать нельзя. Его идея: одна подсказка задаёт
# лишние атрибуты (цвет, место), которые могут не совпасть с картинкой, или не похожа на обучающие подписи;
# среднее по многим формулировкам оставляет в векторе общее — цифру. В статье CLIP это даёт прирост, потому что
# настоящие подписи разнообразны, а слова многозначны; в нашем мире подписи строятся по нескольким образцам и у
# цифры одно название, и выигрывать ансамблю, видимо, не на чем.
# ### END SOLUTION

# %% [markdown]
# ## 13. Что дальше
#
# **Мы узнали:** контрастную функцию потерь CLIP и роль температуры, текстовый Transformer с масками паддинга,
# zero-shot классификацию с ансамблями подсказок и её проверку на отложенных композициях, поиск по тексту и его
# оценку Recall@k.
#
# **Дальше:** в главе 10 — Transformer с нуля: то самое внимание, на котором построен текстовый кодировщик CLIP.
#
# **Домашнее задание:**
# 1. Замените в `train_clip` обучаемую температуру фиксированной (τ = 0,07 и τ = 1) и сравните Recall@10.
# 2. Обучите модель с пулингом последней позиции вместо среднего: что стало с zero-shot точностью?
# 3. Добавьте в `utils.captions` новый атрибут (например, толщину линий) и проверьте, находит ли поиск «толстую
#    тройку».
# 4. Сделайте обучение с «мягкими» целями: пары одной сцены в батче считаются правильными обе. Помогает ли это?
