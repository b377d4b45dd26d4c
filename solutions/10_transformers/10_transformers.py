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
# # Глава 10. Transformer: внимание с нуля, BERT и GPT
#
# {{badges}}
#
# **Цели главы.** После этой главы вы сможете:
# - написать scaled dot-product attention и многоголовое внимание и проверить их по `F.scaled_dot_product_attention`
#   и `nn.MultiheadAttention`;
# - собрать блок Transformer (pre-LayerNorm, остаточные связи) в двух вариантах: двунаправленный и причинный;
# - обучить маленькие GPT (следующий токен) и BERT (маскированные токены) на одном русском корпусе и сравнить,
#   что они умеют;
# - генерировать текст с температурой и top-k и понимать, чем top-p лучше top-k;
# - обучить символьный токенизатор библиотекой Hugging Face `tokenizers` и собрать ту же GPT из `transformers`.
#
# **Нужно знать:** PyTorch и обучение сетей (главы 1–4), векторы и softmax; главу 8 (CLIP), где текстовый
# Transformer уже встречался как готовый блок.
#
# **Время:** около 2 часов. Быстрый режим (`FAST_MODE = True` в ячейке подготовки или `COURSE_FAST=1`) — около минуты на CPU: модели курса загружаются
# готовыми из `data/checkpoints`, а с нуля учатся модели поменьше.

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
import math
import time

CFG = dict(
    block_size=64,  # символов в окне модели (пословица в среднем — 36 символов)
    dim=utils.by_mode(64, 128),
    depth=utils.by_mode(2, 4),
    heads=4,
    mlp_dim=utils.by_mode(256, 512),
    dropout=0.1,  # на вложениях
    batch_size=utils.by_mode(24, 64),
    steps=utils.by_mode(200, 3000),
    lr=utils.by_mode(3e-3, 1e-3),
    weight_decay=0.1,
    mask_p=0.15,  # доля символов, которые BERT учится восстанавливать
    eval_points=utils.by_mode(5, 20),  # сколько раз за обучение считать проверочную потерю
    eval_batches=utils.by_mode(10, 50),
    hf_steps=utils.by_mode(40, 600),  # обучение GPT-2 и BERT из transformers в разделе 8
    leak_steps=utils.by_mode(200, 600),  # частая ошибка раздела 5: GPT без причинной маски и с ней
    mask_rule_steps=utils.by_mode(200, 600),  # BERT с правилом 80/10/10 и со 100% масок
    finetune_labels=utils.by_mode(128, 512),  # размеченных примеров для дообучения BERT (раздел 6)
    finetune_steps=utils.by_mode(30, 200),
    finetune_batch=utils.by_mode(16, 32),
    finetune_lr=1e-3,
    finetune_test=utils.by_mode(300, 2000),  # проверочных примеров из отложенных пословиц
)
# Полный режим на GPU обучает обе модели заново; иначе разделы 6-7 берут модели курса из data/checkpoints.
TRAIN_LM = not FAST and device.type == "cuda"

# %% [markdown]
# ## 1. Внимание
#
# Каждый токен задаёт **запрос** $q$, и у каждого есть **ключ** $k$ и **значение** $v$. Ответ для запроса — среднее
# значений, взвешенное по сходству запроса с ключами:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\Big(\frac{Q K^\top}{\sqrt{d_k}}\Big) V.$$
#
# Деление на $\sqrt{d_k}$ держит масштаб скалярных произведений: у случайных векторов размерности $d_k$ с
# единичной дисперсией компонент $q^\top k$ имеет дисперсию $d_k$, и без деления softmax при большом $d_k$
# становится почти жёстким (градиенты исчезают).
#
# **Маска** запрещает смотреть на некоторые позиции: их логиты заменяются на $-\infty$ **до** softmax, тогда их
# веса — ровно ноль, а остальные веса строки по-прежнему в сумме дают 1. **Причинная маска** GPT разрешает
# позиции $i$ смотреть только на позиции $j \le i$: модель, предсказывающая следующий токен, не должна видеть
# будущее.

# %% [markdown]
# ### Упражнение 1: `scaled_dot_product_attention` и `causal_mask`
#
# - `causal_mask(n)` — булев тензор `(n, n)`, `True` там, где смотреть **можно** ($j \le i$);
# - `scaled_dot_product_attention(q, k, v, mask=None)`: `q` — `(..., L, d)`, `k` и `v` — `(..., S, d)` и
#   `(..., S, d_v)`; `mask` — булев тензор, приводимый к `(..., L, S)`, `True` — можно смотреть. Верните пару
#   `(output, weights)`: `(..., L, d_v)` и `(..., L, S)`.

# %% grade_id="attention_impl" solution=true
def causal_mask(n):
    ### BEGIN SOLUTION
    return torch.ones(n, n, dtype=torch.bool).tril()
    ### END SOLUTION


def scaled_dot_product_attention(q, k, v, mask=None):
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights
    ### END SOLUTION


# %% grade_id="attention_tests" points=4
torch.manual_seed(0)
_t_q, _t_k, _t_v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 3)
_t_out, _t_w = scaled_dot_product_attention(_t_q, _t_k, _t_v)
utils.assert_shape(_t_out, (2, 5, 3), "выход внимания")
utils.assert_shape(_t_w, (2, 5, 7), "веса внимания")
utils.assert_close(_t_out, F.scaled_dot_product_attention(_t_q, _t_k, _t_v), "сравнение с F.scaled_dot_product_attention",
                   atol=1e-5)
assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]], \
    "causal_mask(3): True на диагонали и ниже (позиция видит себя и прошлое), False выше"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
# Головы как размерность батча, причинная маска и произвольная булева маска — сверка с вниманием PyTorch.
_t_q, _t_k, _t_v = torch.randn(2, 3, 6, 16) * 3, torch.randn(2, 3, 6, 16), torch.randn(2, 3, 6, 4)
for _t_mask, _t_what in ((causal_mask(6), "причинная маска"),
                         ((torch.rand(2, 1, 6, 6) > 0.3) | torch.eye(6, dtype=torch.bool), "произвольная маска")):
    _t_out, _t_w = scaled_dot_product_attention(_t_q, _t_k, _t_v, _t_mask)
    utils.assert_close(_t_out, F.scaled_dot_product_attention(_t_q, _t_k, _t_v, attn_mask=_t_mask),
                       f"{_t_what}: сравнение с F.scaled_dot_product_attention", atol=1e-5)
    utils.assert_close(_t_w.sum(-1), torch.ones(_t_w.shape[:-1]), f"{_t_what}: веса строки в сумме дают 1", atol=1e-5)
    assert (_t_w.masked_select(~_t_mask.expand_as(_t_w)) == 0).all(), f"{_t_what}: веса запрещённых позиций — ноль"
# Причинность: изменение будущего ключа или значения не меняет ни одного более раннего выхода.
_t_x = torch.randn(1, 8, 5)
_t_y = _t_x.clone()
_t_y[0, 6] += 10
_t_a, _ = scaled_dot_product_attention(_t_x, _t_x, _t_x, causal_mask(8))
_t_b, _ = scaled_dot_product_attention(_t_y, _t_y, _t_y, causal_mask(8))
utils.assert_close(_t_a[0, :6], _t_b[0, :6], "с причинной маской изменение токена 6 не меняет выходы 0–5", atol=1e-6)
assert causal_mask(5).dtype == torch.bool and causal_mask(5).shape == (5, 5), "causal_mask: булев (n, n)"
assert causal_mask(5).sum() == 15, "causal_mask(5): 15 разрешённых пар (j ≤ i)"
### END HIDDEN TESTS

# %% [markdown]
# **Деление на $\sqrt{d_k}$ — замер.** Возьмём случайные запросы и ключи с единичной дисперсией компонент (32 ключа
# на запрос, 256 запросов) и посмотрим на softmax с делением и без: средний наибольший вес строки, долю строк, где
# у одного ключа больше 99% веса, и медиану нормы градиента весов по логитам (для случайной линейной функции весов —
# как будто от весов зависит потеря).

# %%
def softmax_saturation(d_k, scaled, n_keys=32, n_queries=256):
    """Средний наибольший вес строки softmax, доля «жёстких» строк (наибольший вес > 0,99) и медиана нормы
    градиента по логитам при размерности d_k."""
    generator = torch.Generator().manual_seed(d_k)
    q = torch.randn(n_queries, 1, d_k, generator=generator)
    k = torch.randn(n_queries, n_keys, d_k, generator=generator)
    scores = ((q @ k.transpose(-2, -1))[:, 0] / (math.sqrt(d_k) if scaled else 1.0)).requires_grad_()
    weights = scores.softmax(-1)
    (weights * torch.randn(weights.shape, generator=generator)).sum().backward()
    top = weights.max(-1).values
    return top.mean().item(), (top > 0.99).float().mean().item(), scores.grad.norm(dim=-1).median().item()


print("  d_k |  наибольший вес  | доля жёстких строк | медиана градиента")
print("      | без / с делением |  без / с делением  |  без / с делением")
for d_k in (16, 64, 256):
    raw, scaled = softmax_saturation(d_k, False), softmax_saturation(d_k, True)
    print(f"{d_k:>5} |   {raw[0]:.2f} / {scaled[0]:.2f}    |    {raw[1]:.0%} / {scaled[1]:.0%}      |  "
          f"{raw[2]:.4f} / {scaled[2]:.4f}")
utils.record("saturation_max_weight_unscaled_256", raw[0])
utils.record("saturation_max_weight_scaled_256", scaled[0])
utils.record("saturation_hard_share_unscaled_256", raw[1])
utils.record("saturation_grad_ratio_256", scaled[2] / raw[2])

# %% [markdown]
# Без деления с ростом $d_k$ softmax становится жёстким: у всё большей доли строк почти весь вес у одного ключа, и
# градиент по логитам у типичной строки падает на порядки; с делением все три числа почти не зависят от $d_k$.

# %% [markdown]
# ### Упражнение 2: `MultiHeadAttention`
#
# Одно внимание усредняет по одному «сходству». **Многоголовое** внимание делит размерность `dim` на `heads`
# голов по `dim / heads`: у каждой головы свои запросы, ключи и значения, а выходы голов склеиваются и
# смешиваются линейным слоем.
#
# Напишите `MultiHeadAttention(dim, heads)`:
# - проекции `self.q`, `self.k`, `self.v`, `self.out` — `nn.Linear(dim, dim)` (по одной на каждую роль);
# - `forward(x, mask=None)`: `x` — `(B, T, dim)`; разделите проекции на головы `(B, heads, T, dim / heads)`,
#   примените `scaled_dot_product_attention` (маска `(T, T)` — одна для всех голов), склейте головы обратно в
#   `(B, T, dim)` и примените `self.out`. Верните `(output, weights)`, веса — `(B, heads, T, T)`;
#   сохраните их и в `self.weights` (для картинок внимания).

# %% grade_id="mha_impl" solution=true
class MultiHeadAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        ### BEGIN SOLUTION
        assert dim % heads == 0, "dim должно делиться на heads"
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.weights = None
        ### END SOLUTION

    def forward(self, x, mask=None):
        ### BEGIN SOLUTION
        b, t, dim = x.shape

        def split(y):
            return y.view(b, t, self.heads, dim // self.heads).transpose(1, 2)

        out, self.weights = scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), mask)
        return self.out(out.transpose(1, 2).reshape(b, t, dim)), self.weights
        ### END SOLUTION


# %% grade_id="mha_tests" points=4
torch.manual_seed(0)
_t_mha = MultiHeadAttention(12, 3)
_t_out, _t_w = _t_mha(torch.randn(2, 5, 12))
utils.assert_shape(_t_out, (2, 5, 12), "выход многоголового внимания")
utils.assert_shape(_t_w, (2, 3, 5, 5), "веса: (B, heads, T, T)")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# На время этих тестов функции упражнения 1 заменены эталонными: ошибка там не стоит баллов здесь.
def _t_sdpa(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


_t_student = scaled_dot_product_attention, causal_mask
scaled_dot_product_attention, causal_mask = _t_sdpa, lambda n: torch.ones(n, n, dtype=torch.bool).tril()
try:
    def _t_reference(mha, dim, heads):
        """nn.MultiheadAttention с весами, скопированными из ``mha``."""
        ref = nn.MultiheadAttention(dim, heads, batch_first=True)
        with torch.no_grad():
            ref.in_proj_weight.copy_(torch.cat([mha.q.weight, mha.k.weight, mha.v.weight]))
            ref.in_proj_bias.copy_(torch.cat([mha.q.bias, mha.k.bias, mha.v.bias]))
            ref.out_proj.weight.copy_(mha.out.weight)
            ref.out_proj.bias.copy_(mha.out.bias)
        return ref


    torch.manual_seed(1)
    for _t_dim, _t_heads in ((16, 4), (12, 2), (8, 1)):
        _t_mha = MultiHeadAttention(_t_dim, _t_heads)
        _t_ref = _t_reference(_t_mha, _t_dim, _t_heads)
        _t_x = torch.randn(3, 7, _t_dim)
        _t_out, _t_w = _t_mha(_t_x)
        _t_expected, _t_expected_w = _t_ref(_t_x, _t_x, _t_x, average_attn_weights=False)
        utils.assert_close(_t_out, _t_expected, f"dim {_t_dim}, {_t_heads} голов: сравнение с nn.MultiheadAttention",
                           atol=1e-5)
        utils.assert_close(_t_w, _t_expected_w, f"веса голов, dim {_t_dim}, {_t_heads} голов", atol=1e-5)
        # Причинная маска: в маске PyTorch True там, где смотреть НЕЛЬЗЯ.
        _t_out, _ = _t_mha(_t_x, causal_mask(7))
        _t_expected, _ = _t_ref(_t_x, _t_x, _t_x, attn_mask=~causal_mask(7))
        utils.assert_close(_t_out, _t_expected, f"с причинной маской, {_t_heads} голов", atol=1e-5)
    assert _t_mha.weights is not None and _t_mha.weights.shape == (3, 1, 7, 7), "веса сохраняются в self.weights"
finally:
    scaled_dot_product_attention, causal_mask = _t_student
### END HIDDEN TESTS

# %% [markdown]
# ### Упражнение 3: `TransformerBlock`
#
# Блок Transformer — внимание и MLP, каждое со своей остаточной связью. В исходной статье LayerNorm стоял **после**
# сложения (post-norm); GPT-2 и почти все современные модели ставят его **перед** подслоем (pre-norm): остаточный
# путь остаётся чистым, и глубокие модели учатся устойчивее.
#
# Напишите `TransformerBlock(dim, heads, mlp_dim, causal)`:
# - `self.norm1`, `self.norm2` — `nn.LayerNorm(dim)`; `self.attn = MultiHeadAttention(dim, heads)`;
#   `self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))`;
# - `forward(x)`: `x = x + attn(norm1(x))`, затем `x = x + mlp(norm2(x))`; при `causal=True` внимание — с
#   `causal_mask(T)` на устройстве `x`.

# %% grade_id="block_impl" solution=true
class TransformerBlock(nn.Module):
    def __init__(self, dim, heads, mlp_dim, causal):
        super().__init__()
        self.causal = causal
        ### BEGIN SOLUTION
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        mask = causal_mask(x.shape[1]).to(x.device) if self.causal else None
        x = x + self.attn(self.norm1(x), mask)[0]
        return x + self.mlp(self.norm2(x))
        ### END SOLUTION


# %% grade_id="block_tests" points=3
torch.manual_seed(0)
_t_block = TransformerBlock(16, 4, 32, causal=True)
_t_x = torch.randn(2, 6, 16)
utils.assert_shape(_t_block(_t_x), (2, 6, 16), "выход блока")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# На время этих тестов упражнения 1-2 заменены эталонными: ошибка там не стоит баллов здесь.
class _TReferenceAttention(nn.Module):
    """nn.MultiheadAttention с интерфейсом главы (маска: True там, где смотреть можно)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.inner = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.weights = None

    def forward(self, x, mask=None):
        out, self.weights = self.inner(x, x, x, attn_mask=None if mask is None else ~mask,
                                       average_attn_weights=False)
        return out, self.weights


_t_student = MultiHeadAttention, causal_mask
MultiHeadAttention, causal_mask = _TReferenceAttention, lambda n: torch.ones(n, n, dtype=torch.bool).tril()
try:
    torch.manual_seed(1)
    for _t_causal in (True, False):
        _t_block = TransformerBlock(8, 2, 16, causal=_t_causal)
        with torch.no_grad():
            for p in _t_block.parameters():
                p.normal_(0, 0.5)  # и веса LayerNorm тоже: тогда pre-norm и post-norm заметно различаются
        _t_x = torch.randn(3, 5, 8)
        _t_h = _t_x + _t_block.attn(_t_block.norm1(_t_x), causal_mask(5) if _t_causal else None)[0]
        _t_expected = _t_h + _t_block.mlp(_t_block.norm2(_t_h))
        utils.assert_close(_t_block(_t_x), _t_expected,
                           f"causal={_t_causal}: x + attn(norm1(x)), затем + mlp(norm2(·)) (pre-norm)", atol=1e-5)
    # Причинность блока: поздний токен не меняет ранних выходов; без маски — меняет.
    _t_block = TransformerBlock(8, 2, 16, causal=True)
    _t_y = _t_x.clone()
    _t_y[:, 4] += 5 * torch.randn(8)  # не постоянный сдвиг: его LayerNorm убрал бы
    utils.assert_close(_t_block(_t_x)[:, :4], _t_block(_t_y)[:, :4], "causal=True: токен 4 не влияет на выходы 0–3",
                       atol=1e-5)
    _t_block = TransformerBlock(8, 2, 16, causal=False)
    assert not torch.allclose(_t_block(_t_x)[:, :4], _t_block(_t_y)[:, :4], atol=1e-4), (
        "causal=False: внимание двунаправленное, токен 4 влияет на все выходы")
finally:
    MultiHeadAttention, causal_mask = _t_student
### END HIDDEN TESTS

# %% [markdown]
# **Post-norm и разогрев — замер.** Почему современные модели перешли на pre-norm? Xiong и др. (2020)
# показали, что в post-norm градиенты последних слоёв в начале обучения велики, и без **разогрева** (скорость
# обучения первые шаги растёт от нуля) глубокая post-norm модель учится плохо, а pre-norm обходится без него. Мы
# проверили это на GPT этой главы полного размера (ширина {{result diagnostics/postnorm_warmup full.setup.dim}}): тот же `TransformerBlock`, а в post-norm —
# `x = norm1(x + attn(x))`, `x = norm2(x + mlp(x))`; {{result diagnostics/postnorm_warmup full.setup.steps}} шагов AdamW с ограничением нормы градиента, как
# в `train_lm`, косинусное затухание скорости, с разогревом на первых 10% шагов и без него; один запуск на
# вариант (замер сделан заранее, его кода в тетради нет — это домашнее задание 5). Проверочная потеря, нат на символ
# (столбцы: где стоит LayerNorm — перед подслоем, pre-norm, или после
# сложения, post-norm — и пиковая скорость обучения):
#
# | глубина, расписание | перед подслоем, 10⁻³ | после сложения, 10⁻³ | перед подслоем, 3·10⁻³ | после сложения, 3·10⁻³ |
# |---|---|---|---|---|
# | {{result diagnostics/postnorm_warmup full.setup.depths.0}}, с разогревом | {{result diagnostics/postnorm_warmup full.values.pre_depth4_lr1e-3_warm_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.post_depth4_lr1e-3_warm_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.pre_depth4_lr3e-3_warm_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.post_depth4_lr3e-3_warm_val_loss .3f}} |
# | {{result diagnostics/postnorm_warmup full.setup.depths.0}}, без разогрева | {{result diagnostics/postnorm_warmup full.values.pre_depth4_lr1e-3_cold_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.post_depth4_lr1e-3_cold_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.pre_depth4_lr3e-3_cold_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.post_depth4_lr3e-3_cold_val_loss .3f}} |
# | {{result diagnostics/postnorm_warmup full.setup.depths.1}}, с разогревом | {{result diagnostics/postnorm_warmup full.values.pre_depth8_lr1e-3_warm_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.post_depth8_lr1e-3_warm_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.pre_depth8_lr3e-3_warm_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.post_depth8_lr3e-3_warm_val_loss .3f}} |
# | {{result diagnostics/postnorm_warmup full.setup.depths.1}}, без разогрева | {{result diagnostics/postnorm_warmup full.values.pre_depth8_lr1e-3_cold_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.post_depth8_lr1e-3_cold_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.pre_depth8_lr3e-3_cold_val_loss .3f}} | {{result diagnostics/postnorm_warmup full.values.post_depth8_lr3e-3_cold_val_loss .3f}} |
#
# При глубине {{result diagnostics/postnorm_warmup full.setup.depths.0}} и при меньшей скорости разницы нет: post-norm учится не хуже pre-norm, а разогрев
# за {{result diagnostics/postnorm_warmup full.setup.steps}} шагов только отнимает шаги с полной скоростью. Но при глубине {{result diagnostics/postnorm_warmup full.setup.depths.1}} и скорости 3·10⁻³ post-norm без разогрева
# **застревает**: его проверочная потеря {{result diagnostics/postnorm_warmup full.values.post_depth8_lr3e-3_cold_val_loss .2f}} — уровень униграмм
# (у них {{result checkpoint:proverbs_lm.pt evaluation.unigram.val_loss .2f}}), то есть модель выучила только частоты символов. Обучающая потеря за первые шаги
# падает, а потом поднимается и стоит. Та же модель с разогревом — лучшая в таблице
# ({{result diagnostics/postnorm_warmup full.values.post_depth8_lr3e-3_warm_val_loss .2f}}), а pre-norm разогрев не нужен ни при какой глубине и скорости из таблицы. Это и
# есть ошибка из статьи, в миниатюре: post-norm с полной скоростью с первого шага ломается тем вероятнее, чем
# модель глубже и скорость больше. Механизм у нас не совсем тот, что у Xiong и др.: градиенты post-norm в начале
# обучения не растут к последнему блоку (отношение последнего к первому
# {{result diagnostics/postnorm_warmup full.values.post_depth8_grad_last_over_first .2f}}, у pre-norm {{result diagnostics/postnorm_warmup full.values.pre_depth8_grad_last_over_first .2f}}), но у всех блоков
# они больше (у первого блока {{result diagnostics/postnorm_warmup full.runs.post_depth8_init_grad_norms.0 .2f}} против {{result diagnostics/postnorm_warmup full.runs.pre_depth8_init_grad_norms.0 .2f}}). Один запуск на вариант — это
# иллюстрация, а не закон: с другим сидом граница может сдвинуться.

# %% [markdown]
# **Зачем модели позиции — замер.** Внимание не знает порядка токенов: веса зависят только от сходства запросов и
# ключей, а MLP и LayerNorm действуют на каждый токен отдельно. Поэтому двунаправленный блок **эквивариантен
# относительно перестановок**: переставьте токены на входе — выходы переставятся точно так же, и «кот ест рыбу» для него —
# тот же набор векторов, что «рыбу ест кот». Проверим на вашем `TransformerBlock`, а потом прибавим к входу вложения
# позиций (в разделе 5 они обучаемые, здесь — случайные): у каждого места свой вектор, и перестановка уже меняет
# результат.

# %%
torch.manual_seed(0)
perm_block = TransformerBlock(16, 4, 32, causal=False).eval()
perm_x = torch.randn(1, 10, 16)
perm = torch.randperm(10)
perm_positions = torch.randn(1, 10, 16)  # вложение позиции i прибавляется к токену, стоящему на месте i
with torch.no_grad():
    perm_error = (perm_block(perm_x[:, perm]) - perm_block(perm_x)[:, perm]).abs().max().item()
    perm_error_positions = (perm_block(perm_x[:, perm] + perm_positions)
                            - perm_block(perm_x + perm_positions)[:, perm]).abs().max().item()
print(f"без позиций: наибольшее расхождение переставленного выхода — {perm_error:.1e} (ошибки округления)")
print(f"с вложениями позиций: {perm_error_positions:.2f} — порядок токенов теперь виден")
utils.record("permutation_error_no_positions", perm_error)
utils.record("permutation_error_with_positions", perm_error_positions)

# %% [markdown]
# С причинной маской блок уже не эквивариантен (позиция 0 видит один токен, позиция 9 — десять), но и GPT,
# и BERT в этой главе получают вложения позиций. BERT без них не отличил бы «не» перед глаголом от «не» после; GPT с
# причинной маской порядок отчасти чувствует и без них (позиция видит только своё прошлое), но с явными позициями
# учится легче.

# %% [markdown]
# ## 2. Маскированное языковое моделирование (BERT)
#
# BERT учится восстанавливать спрятанные токены по контексту с **обеих** сторон. Для каждого токена с вероятностью
# $p$ (в статье 15%) он становится «предсказываемым»; из них 80% заменяются токеном `[MASK]`, 10% — случайным
# токеном словаря, 10% остаются как были (модель не должна рассчитывать, что `[MASK]` всегда на месте ответа). Метка
# — исходный токен на предсказываемых позициях и `-100` на остальных: `F.cross_entropy` их пропускает.

# %% [markdown]
# ### Упражнение 4: `mask_tokens`
#
# Напишите `mask_tokens(ids, mask_id, vocab_size, p, rng)`: `ids` — тензор `int64` любой формы, `rng` —
# `torch.Generator` (вся случайность — только из него). Верните `(inputs, labels)` той же формы: выбор позиций
# с вероятностью `p`, правило 80/10/10 и `-100` в `labels` на невыбранных позициях. `ids` не меняйте.

# %% grade_id="mask_tokens_impl" solution=true
def mask_tokens(ids, mask_id, vocab_size, p, rng):
    ### BEGIN SOLUTION
    chosen = torch.rand(ids.shape, generator=rng) < p
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=rng)
    random_tokens = torch.randint(vocab_size, ids.shape, generator=rng)
    inputs = torch.where(chosen & (roll < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), random_tokens, inputs)
    return inputs, labels
    ### END SOLUTION


# %% grade_id="mask_tokens_tests" points=3
_t_ids = torch.randint(5, 50, (4, 30), generator=torch.Generator().manual_seed(0))
_t_inputs, _t_labels = mask_tokens(_t_ids, 1, 50, 0.15, torch.Generator().manual_seed(1))
utils.assert_shape(_t_inputs, (4, 30), "inputs")
assert ((_t_labels == -100) | (_t_labels == _t_ids)).all(), "метки: исходный токен или -100"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
_t_ids = torch.randint(5, 1000, (200, 500), generator=torch.Generator().manual_seed(2))
_t_copy = _t_ids.clone()
_t_inputs, _t_labels = mask_tokens(_t_ids, 1, 1000, 0.15, torch.Generator().manual_seed(3))
assert torch.equal(_t_ids, _t_copy), "ids изменились: работайте с копией"
_t_chosen = _t_labels != -100
_t_share = _t_chosen.float().mean().item()
assert abs(_t_share - 0.15) < 0.005, f"доля предсказываемых позиций {_t_share:.3f}, ожидалось 0.15"
assert torch.equal(_t_labels[_t_chosen], _t_ids[_t_chosen]), "метки выбранных позиций — исходные токены"
assert torch.equal(_t_inputs[~_t_chosen], _t_ids[~_t_chosen]), "невыбранные позиции не меняются"
_t_masked = (_t_inputs[_t_chosen] == 1).float().mean().item()
_t_kept = (_t_inputs[_t_chosen] == _t_ids[_t_chosen]).float().mean().item()
_t_random = 1 - _t_masked - _t_kept
assert abs(_t_masked - 0.8) < 0.01, f"[MASK] на {_t_masked:.3f} выбранных позиций, ожидалось 0.8"
assert abs(_t_kept - 0.1) < 0.01 + 0.001, f"без изменений {_t_kept:.3f} выбранных позиций, ожидалось около 0.1"
assert abs(_t_random - 0.1) < 0.01, f"случайный токен на {_t_random:.3f} выбранных позиций, ожидалось 0.1"
assert _t_inputs.max() < 1000 and _t_inputs.min() >= 0, "случайные токены — из словаря"
_t_half = (mask_tokens(_t_ids[:50], 1, 1000, 0.5, torch.Generator().manual_seed(4))[1] != -100).float().mean().item()
assert abs(_t_half - 0.5) < 0.01, f"при p = 0.5 выбрано {_t_half:.3f} позиций: используйте p"
_t_a = mask_tokens(_t_ids[:5], 1, 1000, 0.3, torch.Generator().manual_seed(7))
torch.manual_seed(123)
_t_b = mask_tokens(_t_ids[:5], 1, 1000, 0.3, torch.Generator().manual_seed(7))
assert all(torch.equal(a, b) for a, b in zip(_t_a, _t_b, strict=True)), "случайность — только из rng"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Генерация (GPT)
#
# Обученная причинная модель даёт распределение следующего токена. Генерация — повторять: взять логиты последней
# позиции, разделить на **температуру** $T$ (при $T < 1$ распределение острее, при $T > 1$ — площе), оставить
# **top-k** самых вероятных токенов, выбрать токен случайно по softmax и дописать его. При `top_k = 1` это
# жадный выбор самого вероятного токена.

# %% [markdown]
# ### Упражнение 5: `generate`
#
# Напишите `generate(model, ids, max_new_tokens, temperature=1.0, top_k=None)`: `model(ids)` возвращает логиты
# `(B, T, vocab)`, а окно модели — `model.block_size` токенов (подавайте не больше последних `block_size`).
# Верните `ids` с дописанными `max_new_tokens` токенами; градиенты не нужны.

# %% grade_id="generate_impl" solution=true
@torch.no_grad()
def generate(model, ids, max_new_tokens, temperature=1.0, top_k=None):
    ### BEGIN SOLUTION
    for _ in range(max_new_tokens):
        logits = model(ids[:, -model.block_size:])[:, -1] / temperature
        if top_k is not None:
            kth = logits.topk(min(top_k, logits.shape[-1])).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        ids = torch.cat([ids, torch.multinomial(logits.softmax(-1), 1)], dim=1)
    return ids
    ### END SOLUTION


# %% grade_id="generate_tests" points=3
class _TBigram(nn.Module):
    """Логиты следующего токена только по последнему токену: таблица."""

    def __init__(self, table, block_size=4):
        super().__init__()
        self.table, self.block_size, self.calls, self.grad_enabled = table, block_size, [], []

    def forward(self, ids):
        self.calls.append(ids.shape[1])
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.table[ids]


torch.manual_seed(0)
_t_table = torch.randn(6, 6) * 3
_t_model = _TBigram(_t_table)
_t_out = generate(_t_model, torch.tensor([[2]]), 5, top_k=1)
utils.assert_shape(_t_out, (1, 6), "5 новых токенов")
_t_greedy = [2]
for _ in range(5):
    _t_greedy.append(int(_t_table[_t_greedy[-1]].argmax()))
assert _t_out[0].tolist() == _t_greedy, f"top_k = 1 — жадный выбор: ожидалось {_t_greedy}, получено {_t_out[0].tolist()}"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Окно: на вход никогда не идёт больше block_size токенов.
_t_model = _TBigram(_t_table, block_size=3)
generate(_t_model, torch.tensor([[1, 2, 3, 4]]), 4, top_k=2)
assert max(_t_model.calls) <= 3, f"в модель подано {max(_t_model.calls)} токенов при block_size = 3"
# Top-k: выбираются только k самых вероятных токенов.
_t_model = _TBigram(torch.arange(6.0).repeat(6, 1))  # каждая строка предпочитает 5, потом 4, ...
_t_drawn = generate(_t_model, torch.zeros(200, 1, dtype=torch.long), 3, temperature=5.0, top_k=2)[:, 1:]
assert set(_t_drawn.flatten().tolist()) == {4, 5}, f"top_k = 2: выбираются только токены 4 и 5, а не {set(_t_drawn.flatten().tolist())}"
# Температура делит логиты: низкая — почти жадный выбор, высокая — ровнее (логиты 0..5, без top-k).
torch.manual_seed(1)
_t_cold = generate(_t_model, torch.zeros(400, 1, dtype=torch.long), 1, temperature=0.1)[:, 1]
_t_hot = generate(_t_model, torch.zeros(400, 1, dtype=torch.long), 1, temperature=10.0)[:, 1]
assert (_t_cold == 5).float().mean() > 0.99, "температура 0.1 почти жадная: логиты делятся на температуру"
assert (_t_hot == 5).float().mean() < 0.35, "температура 10 делает распределение почти равномерным"
# Батчи и отсутствие градиентов.
_t_learned = _TBigram(nn.Parameter(torch.randn(6, 6)))
_t_out = generate(_t_learned, torch.tensor([[1], [2], [3]]), 2)
assert _t_out.shape == (3, 3), "батч из 3 строк: по 2 новых токена к каждой"
assert not any(_t_learned.grad_enabled), "модель вызывается без градиентов (torch.no_grad): граф вычислений не нужен"
### END HIDDEN TESTS


# %% [markdown]
# ## 4. Корпус и токенизатор
#
# Корпус — 6 238 русских пословиц (`utils.load_text("ru_proverbs")`, пакет ru-proverbs, Apache-2.0), по одной на
# строке. Каждую десятую отложим для проверки: модель будет проверяться на пословицах, которых не видела.
#
# Токенизатор обучим здесь же библиотекой Hugging Face `tokenizers`. Её конвейер — те же шаги, что у больших
# моделей: **нормализация** текста, **предразбиение** на куски, **модель** (куски → номера) и **декодер** (номера →
# текст). В исходнике пословиц стоят знаки ударения (U+0301), мягкие переносы (U+00AD) и латинские гласные с
# ударением вместо русских («á» вместо «а»); нормализатор уберёт их, иначе «мука» и «мука́» стали бы разными
# строками. Токены — отдельные символы: словарь маленький, каждый токен встречается тысячи раз, а потеря на
# символ сравнима с другими символьными моделями.

# %%
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

SPECIALS = ["[PAD]", "[MASK]", "[UNK]"]
NORMALIZER = normalizers.Sequence([
    *(normalizers.Replace(latin, cyrillic) for latin, cyrillic in zip("áéóý", "аеоу", strict=True)),  # латиница с ударением
    normalizers.NFD(), normalizers.Replace("\u0301", ""), normalizers.Replace("\u00ad", ""), normalizers.NFC(),
])


def train_char_tokenizer(lines):
    """Посимвольный токенизатор: каждый символ — токен, id по убыванию частоты после специальных токенов."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = NORMALIZER
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # каждый символ отдельно
    tokenizer.decoder = decoders.Fuse()  # склеить символы без пробелов между ними
    tokenizer.train_from_iterator(lines, trainers.WordLevelTrainer(special_tokens=SPECIALS, show_progress=False))
    return tokenizer


def split_proverbs(lines):
    """Обучающие и валидационные пословицы: каждая десятая отложена."""
    return [line for i, line in enumerate(lines) if i % 10], [line for i, line in enumerate(lines) if i % 10 == 0]


raw = utils.load_text("ru_proverbs").splitlines(keepends=True)
train_lines, val_lines = split_proverbs(raw)
tokenizer = train_char_tokenizer(train_lines)
PAD_ID, MASK_ID, UNK_ID = (tokenizer.token_to_id(t) for t in SPECIALS)
NEWLINE_ID = tokenizer.token_to_id("\n")
VOCAB = tokenizer.get_vocab_size()


def encode(text):
    return torch.tensor(tokenizer.encode(text).ids, dtype=torch.long)


def decode(ids):
    return tokenizer.decode(list(ids))


train_ids, val_ids = encode("".join(train_lines)), encode("".join(val_lines))
print(f"{len(raw)} пословиц; символов: обучение {len(train_ids)}, проверка {len(val_ids)}; словарь {VOCAB} "
      f"(из них {len(SPECIALS)} служебных); неизвестных символов в проверке: {int((val_ids == UNK_ID).sum())}")


def odd_characters(text):
    """Буквы не из кириллицы и невидимые знаки: то, что удаляет нормализатор."""
    return [f"U+{ord(ch):04X}" for ch in text if (ch.isalpha() and not "\u0400" <= ch <= "\u04ff") or ch in "\u0301\u00ad"]


sample = next(line.strip() for line in raw if odd_characters(line))
print(f"{sample!r}: {odd_characters(sample)} → {tokenizer.normalizer.normalize_str(sample)!r}: "
      f"{odd_characters(tokenizer.normalizer.normalize_str(sample))}")
print(tokenizer.encode(sample).tokens[:12], "→", encode(sample)[:12].tolist())

# %% [markdown]
# Для сравнения — BPE на том же корпусе: словарь из 1000 частых кусков слов (метка `▁` — пробел перед словом).
# Токенов втрое меньше, но каждый из тысячи встречается в сотни раз реже символа, а корпус у нас маленький; для
# моделей этой главы берём символы.

# %%
bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
bpe.normalizer, bpe.pre_tokenizer, bpe.decoder = NORMALIZER, pre_tokenizers.Metaspace(), decoders.Metaspace()
bpe.train_from_iterator(train_lines, trainers.BpeTrainer(vocab_size=1000, special_tokens=SPECIALS,
                                                             show_progress=False))
print(bpe.encode(sample).tokens)
bpe_ratio = len(train_ids) / len(bpe.encode("".join(train_lines)).ids)
print(f"символов на токен BPE: {bpe_ratio:.2f}")

# %% [markdown]
# **Базовые уровни.** Чтобы понимать, что значит потеря модели, посчитаем на проверочном тексте потерю двух
# простейших моделей, обученных на обучающем: **униграммы** (частота символа) и **биграммы** (частота символа
# после предыдущего), со сглаживанием +1.

# %%
def ngram_loss(train, val, order, vocab):
    """Кросс-энтропия в натах на символ униграммной (order 1) или биграммной (order 2) модели со сглаживанием «плюс один»."""
    if order == 1:
        counts = torch.bincount(train, minlength=vocab).float() + 1
        return -(counts / counts.sum()).log()[val].mean().item()
    counts = torch.ones(vocab, vocab)
    counts.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1), accumulate=True)
    probs = counts / counts.sum(1, keepdim=True)
    return -probs[val[:-1], val[1:]].log().mean().item()


baseline = {order: ngram_loss(train_ids, val_ids, order, VOCAB) for order in (1, 2)}
print(f"униграммы: {baseline[1]:.3f} нат на символ, биграммы: {baseline[2]:.3f}")

# %% [markdown]
# ## 5. Маленькие GPT и BERT одного размера
#
# Одна и та же модель — вложения символов и позиций, `depth` блоков `TransformerBlock`, LayerNorm и линейный слой
# в словарь — работает в двух режимах:
# - **GPT** (причинные блоки): цель — следующий символ на каждой позиции, потеря — на всех символах окна;
# - **BERT** (двунаправленные блоки): цель — символы, спрятанные `mask_tokens`, потеря — только на них.
#
# Обучение одинаковое: AdamW, шаг обучения сначала растёт, потом убывает (one-cycle), обрезка нормы градиента;
# проверочная потеря считается `eval_points` раз, и в конце модель возвращается к лучшему состоянию по проверке
# (корпус маленький, и длинное обучение начинает запоминать обучающие пословицы).

# %%
import copy


class TinyLM(nn.Module):
    """Эмбеддинги токенов и позиций, блоки Transformer (каузальные для GPT) и логиты по словарю."""

    def __init__(self, vocab, causal, dim, depth, heads, mlp_dim, block_size, dropout=0.0):
        super().__init__()
        self.block_size, self.causal = block_size, causal
        self.tokens, self.positions = nn.Embedding(vocab, dim), nn.Embedding(block_size, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, mlp_dim, causal) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab, bias=False)  # без сдвига, как в GPT-2

    def features(self, ids):
        """Выходы последнего блока после нормировки, (B, T, dim): вход слоя, который даёт логиты по словарю."""
        x = self.drop(self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device)))
        return self.norm(self.blocks(x))

    def forward(self, ids):
        return self.head(self.features(ids))


MODEL_KEYS = ("dim", "depth", "heads", "mlp_dim", "block_size", "dropout")


def tiny_lm(causal, cfg=CFG):
    return TinyLM(VOCAB, causal, **{k: cfg[k] for k in MODEL_KEYS})


def windows(data, batch_size, generator):
    """``batch_size`` случайных окон по block_size + 1 символов."""
    start = torch.randint(len(data) - CFG["block_size"] - 1, (batch_size,), generator=generator)
    return torch.stack([data[s:s + CFG["block_size"] + 1] for s in start.tolist()])


def lm_loss(model, batch, generator, masker=None):
    """GPT: следующий символ в каждой позиции. BERT: символы, спрятанные masker (по умолчанию mask_tokens), по
    обеим сторонам."""
    if model.causal:
        x, y = batch[:, :-1], batch[:, 1:]
    else:
        x, y = (masker or mask_tokens)(batch[:, :-1], MASK_ID, VOCAB, CFG["mask_p"], generator)
    logits = model(x.to(device))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1).to(device), ignore_index=-100)


@torch.no_grad()
def validation_loss(model, seed=1, masker=None):
    """Средняя потеря по одним и тем же eval_batches валидационным окнам (и маскам) каждый раз."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    losses = [lm_loss(model, windows(val_ids, CFG["batch_size"], generator), generator, masker).item()
              for _ in range(CFG["eval_batches"])]
    model.train()
    return float(np.mean(losses))


def train_lm(model, steps=CFG["steps"], seed=0, name=None, masker=None):
    """Обучает на случайных окнах train_ids; в конце модель в лучшем по валидации состоянии. masker — как
    BERT прячет символы (по умолчанию mask_tokens)."""
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=CFG["lr"], weight_decay=CFG["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=CFG["lr"], total_steps=steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(seed)
    history, best = {"train": [], "val": [], "val_step": []}, (float("inf"), None)
    every, start = max(1, steps // CFG["eval_points"]), time.perf_counter()
    for step in utils.progress(range(steps), desc=name or ("GPT" if model.causal else "BERT")):
        loss = lm_loss(model, windows(train_ids, CFG["batch_size"], generator), generator, masker)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        history["train"].append(loss.item())
        if step % every == 0 or step == steps - 1:
            history["val"].append(validation_loss(model, masker=masker))
            history["val_step"].append(step)
            if history["val"][-1] < best[0]:
                best = (history["val"][-1], copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[1])
    history["seconds"] = time.perf_counter() - start
    return history


_trained_lms = {}


def train_new_lm(causal, steps, name=None, masker=None, prepare=None):
    """Новая TinyLM из начального состояния seed 0, обученная train_lm за ``steps`` шагов; ``prepare(model)``
    меняет модель до обучения. Запуск с теми же настройками не повторяется: на CPU он дал бы те же веса, поэтому
    берём уже обученную модель."""
    key = (causal, steps, masker, prepare)
    if key not in _trained_lms:
        torch.manual_seed(0)
        model = tiny_lm(causal)
        if prepare is not None:
            prepare(model)
        _trained_lms[key] = (model, train_lm(model, steps=steps, name=name, masker=masker))
    return _trained_lms[key]


# %% [markdown]
# Модели курса обучены этим же кодом с настройками полного режима
# (`data/checkpoints/proverbs_lm.pt`, {{result checkpoint:proverbs_lm.pt config.steps}} шагов каждая,
# {{result checkpoint:proverbs_lm.pt train_seconds.GPT .0f}} с для GPT на CPU). В быстром режиме ниже с нуля учатся
# модели поменьше — посмотреть, как падает потеря, — а разделы 6–7 берут модели курса.

# %%
def load_course_lm(name="proverbs_lm"):
    """GPT и BERT курса и запись об их обучении или (None, None, None), если файла нет или ваши модули
    не принимают его веса (слои названы не так, как в упражнениях 2-3)."""
    checkpoint = utils.load_checkpoint(f"{name}.pt")
    if checkpoint is None:
        return None, None, None
    if checkpoint["vocab"] != tokenizer.get_vocab():
        print("Словарь модели курса не совпадает с токенизатором этой главы: модели обучаются здесь.")
        return None, None, None
    loaded = []
    for key, causal in (("gpt", True), ("bert", False)):
        lm = TinyLM(VOCAB, causal, **checkpoint["info"]["config"]["model"])
        try:
            lm.load_state_dict(checkpoint[key])
        except (RuntimeError, TypeError):
            print("Ваши модули названы не так, как в упражнениях 2–3: веса курса не подходят, модели обучаются здесь.")
            return None, None, None
        loaded.append(lm.to(device).eval())
    return loaded[0], loaded[1], checkpoint["info"]


def n_params(model):
    """Число параметров с пробелом между тысячами, как принято в русском тексте."""
    return utils.grouped(sum(p.numel() for p in model.parameters()))


def plot_losses(histories, baseline, title):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, (name, h) in zip(axes, histories.items(), strict=True):
        ax.plot(utils.plotting.moving_average(h["train"], 25), alpha=0.6, label="обучение (скользящее среднее)")
        ax.plot(h["val_step"], h["val"], "o-", label="проверка")
        if name == "GPT":
            ax.axhline(baseline[2], color="gray", ls="--", label=f"биграммы {baseline[2]:.2f}")
            ax.axhline(baseline[1], color="gray", ls=":", label=f"униграммы {baseline[1]:.2f}")
        ax.set(title=f"{name}: " + ("следующий символ" if name == "GPT" else "спрятанные символы"), xlabel="шаг",
               ylabel="нат на предсказанный символ")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


course_gpt, course_bert, lm_info = (None, None, None) if TRAIN_LM else load_course_lm()
if FAST or course_gpt is None:
    (gpt, gpt_history), (bert, bert_history) = train_new_lm(True, CFG["steps"]), train_new_lm(False, CFG["steps"])
    print(f"параметров у каждой: {n_params(gpt)}")
    histories = {"GPT": gpt_history, "BERT": bert_history}
    plot_losses(histories, baseline, "Обучение в этом запуске")
else:
    histories = lm_info["history"]
    print(f"загружены модели курса: {lm_info['config']['steps']} шагов, "
          f"{sum(lm_info['train_seconds'].values()) / 60:.0f} мин обучения на {utils.machine_words(lm_info['machine'])}")
    plot_losses(histories, baseline, "Модели курса")
loss_fall = {name: 1 - min(h["val"]) / h["val"][0] for name, h in histories.items()}
for name, h in histories.items():
    print(f"{name}: проверочная потеря {h['val'][0]:.3f} → {min(h['val']):.3f} нат на предсказанный символ "
          f"(падение на {loss_fall[name]:.0%})")
if course_gpt is not None:
    gpt, bert = course_gpt, course_bert
print(f"дальше — {'модели курса' if course_gpt is not None else 'модели, обученные здесь'}: "
      f"{n_params(gpt)} параметров у каждой")

# %% [markdown]
# Потери GPT и BERT на графиках — разные задачи: GPT предсказывает символ только по прошлому, BERT — по обеим
# сторонам от пропуска. Заметьте **плато** BERT: первые сотни шагов его потеря стоит около уровня униграмм
# (модель курса: {{result checkpoint:proverbs_lm.pt history.BERT.val.2 .2f}} на шаге
# {{result checkpoint:proverbs_lm.pt history.BERT.val_step.2}}), а потом резко падает
# ({{result checkpoint:proverbs_lm.pt history.BERT.val.4 .2f}} на шаге
# {{result checkpoint:proverbs_lm.pt history.BERT.val_step.4}}). На месте маски сам символ ничего не говорит, и пока
# внимание не научилось смотреть на соседей, лучшее, что может модель, — частоты символов. GPT такого плато нет:
# ему и без внимания помогает текущий символ (это уже биграмма). Короткое обучение быстрого режима на плато и
# заканчивается. Проверочную потерю GPT сравним с базовыми уровнями, а BERT
# проверим точностью: в каждом проверочном окне спрячем один символ под `[MASK]` и посчитаем, как часто лучший
# ответ верен. Для сравнения — два соседа: «всегда самый частый символ» (пробел) и GPT, который тот же символ
# предсказывает, видя только текст слева.

# %%
@torch.no_grad()
def masked_accuracy(bert, gpt, data, batches=4 * CFG["eval_batches"], seed=2):
    """Точность по одному спрятанному символу на валидационное окно: BERT видит окно, где он заменён на [MASK],
    GPT предсказывает его по символам слева, базовая линия всегда отвечает самым частым символом. С ``gpt=None``
    — без GPT (окна и позиции те же)."""
    generator = torch.Generator().manual_seed(seed)
    top = int(torch.bincount(train_ids, minlength=VOCAB).argmax())
    hits = {"BERT": 0, "GPT": 0, "частый символ": 0} if gpt is not None else {"BERT": 0, "частый символ": 0}
    bert.eval()
    if gpt is not None:
        gpt.eval()
    for _ in range(batches):
        x = windows(data, CFG["batch_size"], generator)[:, :-1]
        rows = torch.arange(len(x))
        where = torch.randint(1, x.shape[1], (len(x),), generator=generator)  # у позиции 0 нет левого контекста
        target = x[rows, where]
        masked = x.clone()
        masked[rows, where] = MASK_ID
        hits["BERT"] += int((bert(masked.to(device)).cpu()[rows, where].argmax(-1) == target).sum())
        if gpt is not None:
            hits["GPT"] += int((gpt(x.to(device)).cpu()[rows, where - 1].argmax(-1) == target).sum())  # логиты t-1 — о t
        hits["частый символ"] += int((target == top).sum())
    total = batches * CFG["batch_size"]
    return {name: n / total for name, n in hits.items()}, total


gpt_val_loss = validation_loss(gpt)
fill_accuracy, fill_positions = masked_accuracy(bert, gpt, val_ids)
print(f"GPT: проверочная потеря {gpt_val_loss:.3f} нат на символ ({gpt_val_loss / math.log(2):.2f} бит); "
      f"биграммы {baseline[2]:.3f}, униграммы {baseline[1]:.3f}")
print(f"угадан спрятанный символ ({fill_positions} позиций проверки):",
      ", ".join(f"{name} {acc:.1%}" for name, acc in fill_accuracy.items()))

# %% [markdown]
# Для сравнения: nanoGPT на символах Шекспира (1,1 млн символов, 10,7 млн параметров) доходит до ≈1,47 нат на
# символ за несколько минут на одном GPU. У нас корпус впятеро меньше, модель — на порядок меньше, а пословицы
# короткие и независимые: в начале каждой модели почти не на что опереться, поэтому наша цифра выше;
# сравнивать стоит с базовыми уровнями, посчитанными на том же тексте. GPT курса доходит до
# {{result checkpoint:proverbs_lm.pt evaluation.gpt.val_loss .2f}} нат на символ против
# {{result checkpoint:proverbs_lm.pt evaluation.bigram.val_loss .2f}} у биграмм, а BERT курса угадывает
# {{result checkpoint:proverbs_lm.pt evaluation.bert.masked_accuracy .0%}} спрятанных символов против
# {{result checkpoint:proverbs_lm.pt evaluation.most_frequent_character.masked_accuracy .0%}} у «самого частого».
#
# **Частая ошибка — забыть причинную маску.** Возьмём ту же GPT, но с двунаправленными блоками: цель —
# по-прежнему следующий символ, а внимание видит всё окно, в том числе сам ответ. Обучим её и такую же GPT с маской
# (одинаковое число шагов, одно и то же начальное состояние) и сравним две потери: среднюю по окну, как на
# обучении, и на **последней** позиции окна — справа от неё ничего нет, как при генерации. В быстром режиме GPT с
# маской — та, что уже обучена в разделе 4 с теми же настройками: `train_new_lm` не повторяет одинаковый запуск.

# %%
@torch.no_grad()
def last_position_loss(model, seed=1):
    """Потеря на последней позиции валидационных окон: справа от неё нет символов, как при генерации."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(CFG["eval_batches"]):
        batch = windows(val_ids, CFG["batch_size"], generator)
        logits = model(batch[:, :-1].to(device))[:, -1]
        losses.append(F.cross_entropy(logits, batch[:, -1].to(device)).item())
    model.train()
    return float(np.mean(losses))


def remove_causal_mask(model):
    """Ошибка: цели — по-прежнему следующий символ, а внимание видит всё окно."""
    for block in model.blocks:
        block.causal = False


leak_losses = {}  # (потеря по окну, потеря на последней позиции)
for name, prepare in (("с маской", None), ("без маски", remove_causal_mask)):
    leak_model, leak_history = train_new_lm(True, CFG["leak_steps"], name=f"GPT {name}", prepare=prepare)
    leak_losses[name] = (min(leak_history["val"]), last_position_loss(leak_model))
    torch.manual_seed(0)
    leak_ids = generate(leak_model.eval(), encode("\nБез труда не ")[None].to(device), 40, temperature=0.5, top_k=5)
    print(f"GPT {name}: потеря по окну {leak_losses[name][0]:.3f}, на последней позиции {leak_losses[name][1]:.3f} "
          "нат на символ; продолжает «Без труда не »:", decode(leak_ids[0].tolist())[1:].split("\n")[0])
utils.record("leak_window_loss_no_mask", leak_losses["без маски"][0])
utils.record("leak_window_loss_masked", leak_losses["с маской"][0])
utils.record("leak_last_position_loss_no_mask", leak_losses["без маски"][1])
utils.record("leak_last_position_loss_masked", leak_losses["с маской"][1])

# %% [markdown]
# Без маски потеря по окну ниже, чем с маской (в нашем запуске быстрого режима
# {{result 10_transformers fast.values.leak_window_loss_no_mask .2f}} против
# {{result 10_transformers fast.values.leak_window_loss_masked .2f}} нат на символ): модель учится списывать
# следующий символ из входа, и потеря на обучении выглядит как успех. Но на последней позиции списывать нечего, и
# там модель без маски не лучше, а в нашем запуске хуже модели с маской
# ({{result 10_transformers fast.values.leak_last_position_loss_no_mask .2f}} против
# {{result 10_transformers fast.values.leak_last_position_loss_masked .2f}}; один запуск, обе модели ещё
# недоучены): она не училась предсказывать по одному прошлому. Генерация — это всегда последняя позиция. Признак ошибки — потеря по окну ниже, чем у такой же
# модели с маской за то же число шагов, а на последней позиции — выше.
#
# **Ещё одна ошибка — прятать под `[MASK]` все 100% выбранных символов.** Тогда BERT учится отвечать только там,
# где стоит `[MASK]`, а на обычных позициях его выход ничему не учили. Но в работе (и на дообучении) масок во
# входе нет. Обучим два BERT одинаково, с правилом 80/10/10 и со 100% масок, и проверим оба: угадывает ли модель
# спрятанный символ и что она отвечает на позиции, где стоит настоящий символ (в быстром режиме BERT с правилом
# 80/10/10 — модель из раздела 4).

# %%
def mask_all_chosen(ids, mask_id, vocab_size, p, rng):
    """Ошибочный вариант mask_tokens: каждый выбранный символ заменяется на [MASK]."""
    chosen = torch.rand(ids.shape, generator=rng) < p
    return torch.where(chosen, torch.full_like(ids, mask_id), ids), torch.where(chosen, ids, torch.full_like(ids, -100))


@torch.no_grad()
def real_token_accuracy(model, seed=4):
    """Доля позиций проверочных окон без масок, где лучший ответ модели — символ, который там стоит."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    hits = total = 0
    for _ in range(CFG["eval_batches"]):
        x = windows(val_ids, CFG["batch_size"], generator)[:, :-1]
        hits += int((model(x.to(device)).argmax(-1).cpu() == x).sum())
        total += x.numel()
    return hits / total


mask_rules = {}
for name, masker in (("80/10/10", None), ("100% [MASK]", mask_all_chosen)):  # None — mask_tokens
    rule_bert, _ = train_new_lm(False, CFG["mask_rule_steps"], name=f"BERT {name}", masker=masker)
    mask_rules[name] = (masked_accuracy(rule_bert, None, val_ids)[0]["BERT"], real_token_accuracy(rule_bert))
    print(f"BERT {name}: угадан спрятанный символ {mask_rules[name][0]:.1%}, на позиции с настоящим символом "
          f"ответ совпадает с ним в {mask_rules[name][1]:.1%} случаев")
utils.record("mask_rule_masked_accuracy_80_10_10", mask_rules["80/10/10"][0])
utils.record("mask_rule_masked_accuracy_all", mask_rules["100% [MASK]"][0])
utils.record("mask_rule_real_token_accuracy_80_10_10", mask_rules["80/10/10"][1])
utils.record("mask_rule_real_token_accuracy_all", mask_rules["100% [MASK]"][1])

# %% [markdown]
# После короткого обучения на масках обе модели ещё на уровне «самого частого символа» (в нашем запуске
# быстрого режима {{result 10_transformers fast.values.mask_rule_masked_accuracy_80_10_10 .1%}} и
# {{result 10_transformers fast.values.mask_rule_masked_accuracy_all .1%}}), а на настоящих символах уже различаются:
# модель с правилом 80/10/10 возвращает символ, который видит, в
# {{result 10_transformers fast.values.mask_rule_real_token_accuracy_80_10_10 .0%}} случаев (10% выбранных символов
# остаются на месте, и потеря учит её, что видимый символ часто и есть ответ), а модель со 100% масок — в
# {{result 10_transformers fast.values.mask_rule_real_token_accuracy_all .0%}}: выходы модели на настоящих символах
# ни разу не входили в её потерю. Больше этот короткий опыт не показывает: пока обе модели на спрятанных позициях
# отвечают самым частым символом, о качестве их представлений он ничего не говорит. В статье BERT (приложение C.2)
# правило 100% `[MASK]` почти не мешает при дообучении (MNLI 84,3 против 84,2 у 80/10/10), а заметно хуже оно,
# когда представления берут как готовые признаки без дообучения (NER 94,0 против 94,9): именно там модель видит
# настоящие символы, которых в обучении на их позициях не было.
#
# ## 6. GPT продолжает, BERT заполняет пропуски
#
# Запустим обе модели и объясним разницу. GPT видит только прошлое и умеет
# **продолжать** текст; температура $T$ делит логиты (малая $T$ — почти жадный выбор, большая — смелее и с
# ошибками), top-k оставляет только $k$ самых вероятных символов. BERT видит обе стороны и **восстанавливает**
# спрятанное в середине, но не порождает текст слева направо.

# %%
def continue_text(model, prompt, temperature, top_k, n=3, max_new_tokens=60):
    """``n`` сэмплированных продолжений ``prompt`` до конца пословицы."""
    ids = encode("\n" + prompt)[None].repeat(n, 1).to(device)
    out = generate(model.eval(), ids, max_new_tokens, temperature=temperature, top_k=top_k)
    return [decode(row.tolist())[1:].split("\n")[0] for row in out]


torch.manual_seed(0)
for temperature, top_k in ((0.5, 5), (1.0, None), (1.5, None)):
    print(f"T = {temperature}, top_k = {top_k}:")
    for line in continue_text(gpt, "Без труда не ", temperature, top_k):
        print("   ", line)


# %% [markdown]
# **Сэмплирование top-p (Holtzman и др., 2019).** Метод top-k оставляет одно и то же число кандидатов на каждом шаге,
# хотя распределение следующего символа бывает то острым, то плоским. Top-p
# оставляет **наименьший** набор самых вероятных токенов, чья суммарная вероятность не меньше $p$: где модель
# уверена, кандидат один, где нет — их много. Посчитаем размер этого набора при $p = 0{,}9$ на позициях проверочных
# окон у нашей GPT.

# %%
def top_p_filter(logits, p):
    """Логиты, где всё вне наименьшего набора самых вероятных токенов с суммарной вероятностью ≥ p — −∞."""
    sorted_logits, order = logits.sort(-1, descending=True)
    probs = sorted_logits.softmax(-1)
    keep_sorted = probs.cumsum(-1) - probs < p  # токен нужен, если до него набрано меньше p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return torch.where(keep, logits, torch.full_like(logits, float("-inf")))


@torch.no_grad()
def nucleus_sizes(model, p, batches=4, seed=3):
    """Размер набора top-p на каждой позиции нескольких проверочных окон."""
    generator = torch.Generator().manual_seed(seed)
    sizes = []
    for _ in range(batches):
        logits = model.eval()(windows(val_ids, CFG["batch_size"], generator)[:, :-1].to(device))
        sizes.append(torch.isfinite(top_p_filter(logits, p)).sum(-1).flatten().cpu())
    return torch.cat(sizes)


nucleus = nucleus_sizes(gpt, 0.9)
print(f"top-p 0,9: кандидатов на позицию — медиана {nucleus.median().item()}, от {nucleus.min().item()} до "
      f"{nucleus.max().item()}; ровно один кандидат у {(nucleus == 1).float().mean():.0%} позиций "
      f"(словарь — {VOCAB} символов)")
utils.record("top_p90_nucleus_median", nucleus.median().item())
utils.record("top_p90_nucleus_max", nucleus.max().item())
utils.record("top_p90_single_share", (nucleus == 1).float().mean().item())

# %% [markdown]
# Размер набора меняется от позиции к позиции на порядок: одно $k$ на все шаги то оставляет лишние варианты, то
# отрезает нужные. Поэтому генерация в библиотеках обычно
# сочетает температуру с top-p (`top_p` в `model.generate` из `transformers`).

# %%
@torch.no_grad()
def fill_masks(model, text):
    """Самый вероятный по BERT символ на месте каждого «_» в ``text``, с обеих сторон (каждый пропуск отдельно)."""
    ids = torch.tensor([MASK_ID if ch == "_" else tokenizer.token_to_id(ch) or UNK_ID for ch in text])
    logits = model.eval()(ids[None].to(device))[0]
    return "".join(decode([int(logits[i].argmax())]) if ch == "_" else ch for i, ch in enumerate(text))


# %% [markdown]
# Одна и та же задача для обеих моделей: пропуск в середине пословицы. GPT получает только текст до пропуска и
# продолжает его (T = 0,5, top-k 5); BERT получает пословицу целиком с масками на месте пропуска.

# %%
gaps = ["Без труда не выловишь и р_бку из пруда.", "Сем_ раз отмерь, один раз отреж_.",
        "Тише едешь — д_льше будешь.", "Не имей сто рублей, а им_й сто друзей.",
        "Слово не воро____, вылетит — не поймаешь."]
torch.manual_seed(0)
print(f"{'пропуск':<44}{'GPT (видит только слева)':<44}BERT (видит обе стороны)")
for text in gaps:
    left = text[:text.index("_")]
    gpt_line = continue_text(gpt, left, 0.5, 5, n=1, max_new_tokens=len(text) - len(left))[0]
    print(f"{text:<44}{gpt_line:<44}{fill_masks(bert, text)}")

# %% [markdown]
# GPT пишет правдоподобное продолжение, но не знает, что стоит после пропуска, и уходит в другую пословицу. BERT
# оставляет пословицу целой и ставит в пропуск символ, подходящий по форме (гласную между согласными, «ь» в конце
# глагола), но в слове часто ошибается: одиночный символ он угадывает в
# {{result checkpoint:proverbs_lm.pt evaluation.bert.masked_accuracy .0%}} случаев, ненамного чаще GPT, который видит
# только левую часть ({{result checkpoint:proverbs_lm.pt evaluation.gpt.masked_accuracy .0%}}). Причина — обучение: за
# шаг GPT получает сигнал со всех позиций окна, а BERT — только с 15% спрятанных, и за те же
# {{result checkpoint:proverbs_lm.pt config.steps}} шагов он выучился хуже (его обучающая потеря в конце ещё падала и
# равна проверочной — он недообучен, а не переобучен). Эта неэкономность маскированного обучения — главный мотив
# ELECTRA (Clark et al., 2020), где учатся на всех позициях. Длинный пропуск из нескольких масок BERT заполняет ещё
# хуже: символы в нём зависят друг от друга, а каждую маску он выбирает отдельно.
#
# ### Дообучение BERT на своей задаче
#
# Заполнять пропуски BERT учили не ради пропусков: его выходы — представления текста, и на их основе модель
# **дообучают** (fine-tuning) на нужной задаче, где размеченных примеров мало. Построим такую задачу из корпуса:
# перед моделью пословица — она как есть или её слова переставлены в случайном порядке? Буквы в обоих случаях те
# же, отличает их только порядок слов, то есть знание языка. Для дообучения —
# {{result 10_transformers fast.values.finetune_labels}} примеров из обучающих пословиц (поровну тех и других),
# для проверки — примеры из отложенных пословиц, которых модель не видела. Классификатор — тело `TinyLM` (всё,
# кроме головы по словарю), среднее его выходов по символам текста и линейный слой на два класса; учится всё.
# Сравним два начала: BERT, предобученный на пропусках, и та же архитектура со случайными весами — одни и те же
# примеры, шаги и скорость обучения.

# %%
def whole_or_shuffled(lines, n, seed):
    """n пар (текст, метка) поровну: пословица как есть (1) или её слова в случайном порядке (0)."""
    generator = torch.Generator().manual_seed(seed)
    proverbs = [line.strip() for line in lines
                if len(line.split()) >= 4 and len(line.strip()) <= CFG["block_size"] - 2]
    examples = []
    for i in range(n):
        words = proverbs[int(torch.randint(len(proverbs), (1,), generator=generator))].split()
        if i % 2 == 0:
            examples.append((" ".join(words), 1))
            continue
        order = torch.randperm(len(words), generator=generator)
        while order.equal(torch.arange(len(words))):  # перестановка должна что-то переставить
            order = torch.randperm(len(words), generator=generator)
        examples.append((" ".join(words[j] for j in order), 0))
    return examples


def classification_batch(examples):
    """Номера символов текста между двумя переводами строки, дополненные [PAD] до block_size, маска символов текста и метки."""
    ids = torch.full((len(examples), CFG["block_size"]), PAD_ID)
    keep = torch.zeros(ids.shape, dtype=torch.bool)
    for row, (text, _) in enumerate(examples):
        encoded = encode("\n" + text + "\n")[:CFG["block_size"]]
        ids[row, :len(encoded)], keep[row, :len(encoded)] = encoded, True
    return ids.to(device), keep.to(device), torch.tensor([label for _, label in examples], device=device)


class ProverbClassifier(nn.Module):
    """Тело TinyLM без головы по словарю и линейный слой на среднем выходе по символам текста."""

    def __init__(self, lm, classes=2):
        super().__init__()
        self.lm, self.out = lm, nn.Linear(lm.head.in_features, classes)

    def forward(self, ids, keep):
        h, weights = self.lm.features(ids), keep.unsqueeze(-1).float()
        return self.out((h * weights).sum(1) / weights.sum(1))


def finetune(lm, examples, steps=CFG["finetune_steps"], batch_size=CFG["finetune_batch"], seed=0):
    """Дообучение всего классификатора AdamW на случайных батчах из examples."""
    torch.manual_seed(seed)
    classifier = ProverbClassifier(lm).to(device).train()
    opt = torch.optim.AdamW(classifier.parameters(), lr=CFG["finetune_lr"], weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = [examples[int(i)] for i in torch.randint(len(examples), (batch_size,), generator=generator)]
        ids, keep, labels = classification_batch(batch)
        loss = F.cross_entropy(classifier(ids, keep), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return classifier.eval()


@torch.no_grad()
def classification_accuracy(classifier, examples):
    ids, keep, labels = classification_batch(examples)
    return (classifier(ids, keep).argmax(1) == labels).float().mean().item()


finetune_train = whole_or_shuffled(train_lines, CFG["finetune_labels"], seed=0)
finetune_test = whole_or_shuffled(val_lines, CFG["finetune_test"], seed=1)
scratch_lm = copy.deepcopy(bert)
torch.manual_seed(0)
for module in scratch_lm.modules():  # та же архитектура, случайные начальные веса
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
finetuned = {}
for name, lm in (("предобученный BERT", copy.deepcopy(bert)), ("те же слои со случайными весами", scratch_lm)):
    start = time.perf_counter()
    finetuned[name] = classification_accuracy(finetune(lm, finetune_train), finetune_test)
    print(f"{name}: точность {finetuned[name]:.1%} на {len(finetune_test)} проверочных примерах "
          f"({CFG['finetune_steps']} шагов, {time.perf_counter() - start:.1f} с)")
utils.record("finetune_labels", CFG["finetune_labels"])  # точности записывает сводка раздела 9

# %% [markdown]
# Предобученный BERT после {{result 10_transformers fast.values.finetune_labels}} примеров отличает пословицу от
# перемешанных слов в {{result 10_transformers fast.values.finetune_pretrained_accuracy .0%}} случаев, те же слои со случайными
# весами — в {{result 10_transformers fast.values.finetune_scratch_accuracy .0%}} (случайное угадывание — 50%). Ста с небольшим примеров
# слишком мало, чтобы с нуля выучить, какой порядок слов правильный; предобучению на пропусках не нужна была
# ни одна метка, а порядок слов оно выучило попутно: чтобы угадать символ, надо знать, что стоит вокруг. В этом и
# смысл схемы BERT: дорогое предобучение на неразмеченном тексте один раз, дешёвое дообучение на каждую задачу.
# Записи — быстрого режима (один прогон на одном наборе примеров).
#
# ## 7. Карты внимания
#
# Каждая голова каждого слоя — матрица весов $T \times T$: строка — запрос (символ, который вычисляется), столбец —
# на что он смотрит. Сначала — сама причинная маска, потом у каждой модели слой, чьи головы смотрят ближе
# всего (по среднему расстоянию взгляда ниже), на одной пословице.

# %%
def attention_maps(model, text):
    """Веса внимания каждого блока на ``text``: список массивов (heads, T, T)."""
    model.eval()
    with torch.no_grad():
        model(encode(text)[None].to(device))
    return [block.attn.weights[0].cpu().numpy() for block in model.blocks]


proverb = "Без труда не выловишь и рыбку из пруда."
labels = list(proverb)
fig, ax = plt.subplots(figsize=(3.2, 3.2))
ax.imshow(causal_mask(12).numpy(), cmap="Greys")
ax.set(title="causal_mask(12): можно смотреть", xlabel="ключ j", ylabel="запрос i")
plt.show()

def mean_distance(weights):
    """Среднее |i - j| с весами внимания для каждой головы: как далеко голова смотрит."""
    t = weights.shape[-1]
    dist = np.abs(np.arange(t)[:, None] - np.arange(t)[None, :])
    return (weights * dist).sum(-1).mean(-1)


maps = {"GPT": attention_maps(gpt, proverb), "BERT": attention_maps(bert, proverb)}
heads = maps["GPT"][0].shape[0]
fig, axes = plt.subplots(2, heads, figsize=(3.1 * heads, 6.4))
for row, (name, layers) in enumerate(maps.items()):
    nearest = int(np.argmin([mean_distance(w).mean() for w in layers]))  # слой, головы которого смотрят ближе всех
    for h in range(heads):
        ax = axes[row, h]
        ax.imshow(layers[nearest][h], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"{name}, слой {nearest + 1}, голова {h + 1}", fontsize=9)
        ax.set_xticks(range(len(labels)), labels, fontsize=5)
        ax.set_yticks(range(len(labels)), labels, fontsize=5)
fig.suptitle("Веса внимания: строка — запрос, столбец — ключ (слой с самым близким взглядом)")
fig.tight_layout()
plt.show()


for name, layers in maps.items():
    print(name, "— среднее расстояние взгляда по головам:",
          "; ".join(f"слой {i + 1}: " + " ".join(f"{d:.1f}" for d in mean_distance(w)) for i, w in enumerate(layers)))

# %% [markdown]
# У GPT всё выше диагонали — ровно ноль: это маска. Разные головы смотрят по-разному, и напечатанное среднее
# расстояние взгляда помогает их различить: голова, которая смотрит ровно на предыдущий символ, даёт около 1, на сам
# символ — 0, а равномерное внимание на всё прошлое пословицы из $T$ символов — $(T-1)/4$, около 10 для этой
# пословицы. Найдите по картам и числам: есть ли у GPT головы, которые смотрят на ближайших соседей, и головы,
# которые смотрят широко? Как это меняется от слоя к слою? У BERT веса есть по обе стороны от диагонали: поищите
# голову, которая смотрит на **следующий** символ, справа, — GPT так не может по построению.
#
# ## 8. То же самое из `transformers`
#
# В библиотеке Hugging Face `transformers` модели собираются из конфигурации: `GPT2Config` описывает ту же
# архитектуру, что наша GPT (pre-LayerNorm, выученные позиции, GELU), а `BertConfig` — BERT, у которого, как в
# исходной статье Transformer, LayerNorm стоит **после** сложения (post-norm). Обёртка ниже даёт моделям
# библиотеки тот же интерфейс, что у `TinyLM`, — и их учит тот же цикл `train_lm`.
#
# Проверим сначала, что GPT-2 — действительно наша модель: перенесём в неё веса нашей GPT (у GPT-2 запросы,
# ключи и значения — одна матрица `c_attn`, а её `Conv1D` хранит веса транспонированными) и сравним логиты.

# %%
from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()


class LibraryLM(nn.Module):
    """Модель transformers с интерфейсом TinyLM (id -> логиты, .causal, .block_size) для train_lm и
    generate."""

    def __init__(self, model, causal):
        super().__init__()
        self.model, self.causal, self.block_size = model, causal, CFG["block_size"]

    def forward(self, ids):
        return self.model(input_ids=ids).logits


def gpt2_config(cfg):
    return GPT2Config(vocab_size=VOCAB, n_positions=cfg["block_size"], n_embd=cfg["dim"], n_layer=cfg["depth"],
                      n_head=cfg["heads"], n_inner=cfg["mlp_dim"], activation_function="gelu",
                      embd_pdrop=cfg["dropout"], resid_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False,
                      bos_token_id=NEWLINE_ID, eos_token_id=NEWLINE_ID)  # пословица начинается и кончается "\n"


def gpt2_from_tiny(tiny):
    """GPT2LMHeadModel с весами нашей каузальной TinyLM ``tiny``."""
    sizes = dict(dim=tiny.tokens.embedding_dim, depth=len(tiny.blocks), heads=tiny.blocks[0].attn.heads,
                 mlp_dim=tiny.blocks[0].mlp[0].out_features, block_size=tiny.block_size, dropout=0.0)
    hf = GPT2LMHeadModel(gpt2_config(sizes))
    t = hf.transformer
    with torch.no_grad():
        t.wte.weight.copy_(tiny.tokens.weight)
        t.wpe.weight.copy_(tiny.positions.weight)
        for ours, theirs in zip(tiny.blocks, t.h, strict=True):
            a = ours.attn
            theirs.ln_1.load_state_dict(ours.norm1.state_dict())
            theirs.ln_2.load_state_dict(ours.norm2.state_dict())
            theirs.attn.c_attn.weight.copy_(torch.cat([a.q.weight, a.k.weight, a.v.weight]).T)
            theirs.attn.c_attn.bias.copy_(torch.cat([a.q.bias, a.k.bias, a.v.bias]))
            theirs.attn.c_proj.weight.copy_(a.out.weight.T)
            theirs.attn.c_proj.bias.copy_(a.out.bias)
            theirs.mlp.c_fc.weight.copy_(ours.mlp[0].weight.T)
            theirs.mlp.c_fc.bias.copy_(ours.mlp[0].bias)
            theirs.mlp.c_proj.weight.copy_(ours.mlp[2].weight.T)
            theirs.mlp.c_proj.bias.copy_(ours.mlp[2].bias)
        t.ln_f.load_state_dict(tiny.norm.state_dict())
        hf.lm_head.weight.copy_(tiny.head.weight)
    return LibraryLM(hf, causal=True).to(device).eval()


gpt_copy = gpt2_from_tiny(gpt.cpu()).to(device)
gpt.to(device)
_ids = encode(proverb)[None].to(device)
with torch.no_grad():
    copy_gap = (gpt_copy(_ids) - gpt.eval()(_ids)).abs().max().item()
print(f"наша GPT и GPT2LMHeadModel с её весами: наибольшая разница логитов {copy_gap:.1e}")
if copy_gap > 1e-3:
    print("Логиты расходятся: проверьте, что ваш TransformerBlock — pre-norm, а MLP — Linear, GELU, Linear.")

# У библиотеки своя генерация: model.generate с do_sample, temperature и top_k — то же, что наш generate.
torch.manual_seed(0)
sampled = gpt_copy.model.generate(encode("\nБез труда не ")[None].to(device), max_new_tokens=40, do_sample=True,
                                  temperature=0.5, top_k=5, pad_token_id=PAD_ID)
print("GPT2LMHeadModel.generate:", decode(sampled[0].tolist())[1:].split("\n")[0])

# %% [markdown]
# Теперь обучим с нуля GPT-2 и BERT из библиотеки того же размера, что наши модели в этом режиме, тем же циклом
# (`CFG["hf_steps"]` шагов).

# %%
torch.manual_seed(0)
library = {
    "GPT-2 (transformers)": LibraryLM(GPT2LMHeadModel(gpt2_config(CFG)), causal=True),
    "BERT (transformers)": LibraryLM(BertForMaskedLM(BertConfig(
        vocab_size=VOCAB, hidden_size=CFG["dim"], num_hidden_layers=CFG["depth"], num_attention_heads=CFG["heads"],
        intermediate_size=CFG["mlp_dim"], max_position_embeddings=CFG["block_size"], type_vocab_size=1,
        pad_token_id=PAD_ID, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)), causal=False),
}
ours_size = n_params(tiny_lm(True))
library_val = {}
for name, lm in library.items():
    h = train_lm(lm, steps=CFG["hf_steps"], name=name)
    library_val[name] = min(h["val"])
    print(f"{name}: {n_params(lm)} параметров (наша модель того же размера — {ours_size}), "
          f"проверочная потеря {h['val'][0]:.3f} → {library_val[name]:.3f} за {h['seconds']:.0f} с")

# %% [markdown]
# Библиотека даёт то же самое, только готовым: ту же архитектуру GPT (логиты совпали), генерацию, а ещё —
# загрузку предобученных весов, кеш ключей и значений для быстрой генерации, маски паддинга, токенизаторы.
# Параметров у GPT-2 ровно столько же, сколько у нашей GPT того же размера (сравните напечатанные числа), — это та
# же модель. У BERT из библиотеки число немного другое: у него есть вложения «типа сегмента», LayerNorm после
# вложений и голова MLM с дополнительным слоем, зато выходной слой делит матрицу с вложениями токенов. Писать
# модель самим стоило, чтобы видеть, что внутри; использовать в работе — библиотеку.
#
# ### Дополнительно: предобученные модели (нужен интернет)
#
# `bert-base-multilingual-cased` (BERT, обученный на Википедии на 104 языках) заполняет маску в русском
# предложении, а `ai-forever/rugpt3small_based_on_gpt2` (русская GPT) продолжает пословицу. Раздел пропускается
# в быстром режиме и без доступа к huggingface.co.

# %%
if FAST or not utils.hub_reachable():
    print("Раздел пропущен: быстрый режим или нет доступа к huggingface.co.")
else:
    from transformers import pipeline

    fill = pipeline("fill-mask", model="bert-base-multilingual-cased", device=device)
    for guess in fill("Без труда не выловишь и [MASK] из пруда.", top_k=5):
        print(f"mBERT: {guess['token_str']!r} ({guess['score']:.2f})")
    writer = pipeline("text-generation", model="ai-forever/rugpt3small_based_on_gpt2", device=device)
    torch.manual_seed(0)
    for out in writer("Без труда не", max_new_tokens=20, do_sample=True, temperature=0.7, top_k=50,
                      num_return_sequences=3):
        print("ruGPT-3 small:", out["generated_text"].split("\n")[0])

# %% [markdown]
# ## 9. Итоги эксперимента

# %%
print("режим:", "быстрый" if FAST else "полный", "| модели:", "курса" if course_gpt is not None else "обучены здесь")
rows = [
    ("gpt_val_loss", "GPT: проверочная потеря, нат на символ", gpt_val_loss, ".3f"),
    ("bigram_loss", "биграммы, нат на символ", baseline[2], ".3f"),
    ("unigram_loss", "униграммы, нат на символ", baseline[1], ".3f"),
    ("bert_masked_accuracy", "BERT: угадан спрятанный символ", fill_accuracy["BERT"], ".1%"),
    ("gpt_left_accuracy", "GPT на тех же позициях (только слева)", fill_accuracy["GPT"], ".1%"),
    ("frequency_accuracy", "всегда самый частый символ", fill_accuracy["частый символ"], ".1%"),
    ("finetune_pretrained_accuracy", "дообученный BERT: пословица или перемешанные слова", finetuned["предобученный BERT"],
     ".1%"),
    ("finetune_scratch_accuracy", "те же слои со случайными весами", finetuned["те же слои со случайными весами"], ".1%"),
    ("gpt_loss_fall", "падение проверочной потери GPT при обучении", loss_fall["GPT"], ".0%"),
    ("bert_loss_fall", "падение проверочной потери BERT при обучении", loss_fall["BERT"], ".0%"),
    ("gpt2_copy_max_logit_gap", "GPT2LMHeadModel с нашими весами: разница логитов", copy_gap, ".1e"),
    ("library_gpt2_val_loss", "GPT-2 из transformers, проверочная потеря", library_val["GPT-2 (transformers)"], ".3f"),
    ("library_bert_val_loss", "BERT из transformers, потеря на масках", library_val["BERT (transformers)"], ".3f"),
    ("bpe_chars_per_token", "BPE-1000: символов на токен", bpe_ratio, ".2f"),
]
utils.summary(rows)

# %% [markdown]
# ## 10. Вопросы (проверяет преподаватель)
#
# **Вопрос 1.** Чем кодировщик (BERT) отличается от декодера (GPT): что видит каждая позиция, на какой задаче их
# учат и для чего каждый годится? Опирайтесь на таблицу из раздела 6 и точности из раздела 5.

# %% [markdown] grade_id="q_encoder_decoder" points=2 solution=true
# ### BEGIN SOLUTION
# В BERT (кодировщике) внимание двунаправленное: каждая позиция видит всю последовательность. Его учат
# восстанавливать спрятанные токены по контексту с обеих сторон, поэтому он хорошо понимает текст целиком —
# для классификации, поиска, извлечения, заполнения пропусков. Текст слева направо он не порождает: каждую маску он
# угадывает независимо и не умеет продолжать. В GPT (декодере) причинная маска: позиция видит только прошлое.
# Его учат предсказывать следующий токен на каждой позиции (сигнал обучения — со всех позиций, а не с 15%),
# поэтому он умеет генерировать текст по одному токену, но в задаче «пропуск в середине» не пользуется правым
# контекстом. В главе это видно в цифрах: на одних и тех же спрятанных символах BERT угадывает
# {{result checkpoint:proverbs_lm.pt evaluation.bert.masked_accuracy .0%}}, а GPT, видящий только левую часть, —
# {{result checkpoint:proverbs_lm.pt evaluation.gpt.masked_accuracy .0%}}; в
# таблице раздела 6 GPT продолжает пропуск правдоподобно, но не той пословицей.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 2.** Зачем делить $QK^\top$ на $\sqrt{d_k}$? Что произойдёт без деления при большой размерности головы?

# %% [markdown] grade_id="q_sqrt_dk" points=2 solution=true
# ### BEGIN SOLUTION
# Если компоненты запросов и ключей независимы, со средним 0 и дисперсией 1, то скалярное произведение $q^\top k$
# — сумма $d_k$ слагаемых с дисперсией 1, его дисперсия $d_k$, а типичный размах — $\sqrt{d_k}$. Без деления при
# большом $d_k$ логиты огромные, softmax почти жёсткий: почти весь вес у одного ключа, остальные веса и
# градиенты по ним почти нулевые, обучение стопорится. В замере раздела 1 при $d_k = 256$ без деления наибольший вес
# строки в среднем {{result 10_transformers fast.values.saturation_max_weight_unscaled_256 .2f}} (с делением —
# {{result 10_transformers fast.values.saturation_max_weight_scaled_256 .2f}}), у
# {{result 10_transformers fast.values.saturation_hard_share_unscaled_256 .0%}} строк больше 0,99 веса у одного
# ключа, а медиана градиента по логитам с делением в {{result 10_transformers fast.values.saturation_grad_ratio_256 .0f}}
# раз больше. Деление на $\sqrt{d_k}$
# возвращает дисперсию логитов к 1, и softmax остаётся «мягким» при любой размерности головы.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 3.** Зачем нужны маски: причинная маска GPT и маска `[MASK]` у BERT? Почему маску внимания применяют до
# softmax, и почему BERT заменяет маской только 80% выбранных токенов?

# %% [markdown] grade_id="q_masks" points=2 solution=true
# ### BEGIN SOLUTION
# Причинная маска запрещает позиции $i$ смотреть на $j > i$: GPT учится предсказывать токен $i + 1$ на всех
# позициях сразу, и без маски она бы просто списывала ответ из входа, а при генерации будущего ещё нет. Маску
# применяют до softmax (логиты запрещённых позиций — $-\infty$): тогда их веса ровно ноль, а разрешённые веса
# строки снова дают в сумме 1; обнуление после softmax оставило бы строку ненормированной. Маска `[MASK]` у BERT
# прячет токены, которые нужно восстановить: двунаправленная модель видит всё, и задача «предскажи свой же вход»
# была бы тривиальной. На дообучении и в работе токена `[MASK]` во входе нет, поэтому из выбранных 15% только
# 80% заменяют маской, 10% — случайным токеном, а 10% оставляют: модель не может полагаться на то, что всё
# немаскированное верно, а её выходы на настоящих токенах тоже учатся. Замеры раздела 5 (один короткий запуск):
# GPT без причинной маски получила потерю по окну ниже, чем с маской
# ({{result 10_transformers fast.values.leak_window_loss_no_mask .2f}} против
# {{result 10_transformers fast.values.leak_window_loss_masked .2f}}), но на последней позиции, где списывать
# нечего, — не лучше, в нашем запуске хуже ({{result 10_transformers fast.values.leak_last_position_loss_no_mask .2f}} против
# {{result 10_transformers fast.values.leak_last_position_loss_masked .2f}}); BERT со 100% масок на позициях с
# настоящим символом отвечает этим символом в {{result 10_transformers fast.values.mask_rule_real_token_accuracy_all .0%}}
# случаев против {{result 10_transformers fast.values.mask_rule_real_token_accuracy_80_10_10 .0%}} у правила 80/10/10
# (на спрятанных позициях обе пока на уровне самого частого символа). В статье BERT 100% `[MASK]` почти не мешает
# при дообучении и заметно хуже, когда представления берут как готовые признаки.
# ### END SOLUTION

# %% [markdown]
# ## 11. Что дальше
#
# **Мы узнали:** внимание и многоголовое внимание, блок Transformer с pre-LayerNorm, причинную маску и маскирование
# BERT, генерацию с температурой и top-k (и top-p); зачем модели вложения позиций, что ломает забытая причинная
# маска и чего не учит правило 100% `[MASK]`; маленькие GPT и BERT на одном корпусе, дообучение BERT на задаче с
# немногими метками и то же самое из `transformers`.
#
# **Дальше:** в главе 11 — seq2seq: кодировщик и декодер вместе, внимание декодера к кодировщику и перевод.
#
# **Домашнее задание:**
# 1. Уберите деление на $\sqrt{d_k}$ и обучите GPT снова: что стало с потерей и с картами внимания?
# 2. Обучите GPT без причинной маски на полном числе шагов и сравните её генерацию с генерацией GPT курса.
# 3. Замените символьный токенизатор на BPE из раздела 4 и сравните проверочную потерю **на символ** (поделите
#    потерю на токен на число символов в токене).
# 4. Заполняйте длинный пропуск BERT по одному символу: сначала самый уверенный, потом снова модель. Помогает ли?
# 5. Повторите замер про post-norm из раздела 1: блок с LayerNorm после сложения, GPT полного размера глубины 8,
#    скорость 3·10⁻³, с разогревом и без (один прогон — около пяти минут на CPU). Застревает ли модель с вашим сидом?
