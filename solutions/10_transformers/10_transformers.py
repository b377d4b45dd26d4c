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
# - генерировать текст с температурой и top-k.
#
# **Черновик (ветка wip/10_transformers):** готовы упражнения 1–5 с тестами; данные, обучение и эксперименты — далее.

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
import math
import time

CFG = dict(
    block_size=64,  # символов в окне модели
    dim=utils.by_mode(64, 192),
    depth=utils.by_mode(2, 6),
    heads=4,
    mlp_dim=utils.by_mode(256, 768),
    batch_size=utils.by_mode(32, 64),
    steps=utils.by_mode(300, 5000),
    lr=utils.by_mode(2e-3, 1e-3),
    mask_p=0.15,
    eval_batches=utils.by_mode(10, 50),
)

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
assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]], "causal_mask(3)"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
# Heads as a batch dimension, a causal mask and an arbitrary boolean mask, against PyTorch's own attention.
_t_q, _t_k, _t_v = torch.randn(2, 3, 6, 16) * 3, torch.randn(2, 3, 6, 16), torch.randn(2, 3, 6, 4)
for _t_mask, _t_what in ((causal_mask(6), "причинная маска"),
                         ((torch.rand(2, 1, 6, 6) > 0.3) | torch.eye(6, dtype=torch.bool), "произвольная маска")):
    _t_out, _t_w = scaled_dot_product_attention(_t_q, _t_k, _t_v, _t_mask)
    utils.assert_close(_t_out, F.scaled_dot_product_attention(_t_q, _t_k, _t_v, attn_mask=_t_mask),
                       f"{_t_what}: сравнение с F.scaled_dot_product_attention", atol=1e-5)
    utils.assert_close(_t_w.sum(-1), torch.ones(_t_w.shape[:-1]), f"{_t_what}: веса строки в сумме дают 1", atol=1e-5)
    assert (_t_w.masked_select(~_t_mask.expand_as(_t_w)) == 0).all(), f"{_t_what}: веса запрещённых позиций — ноль"
# Causality: a change of a future key or value changes no earlier output.
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
def _t_reference(mha, dim, heads):
    """nn.MultiheadAttention with the weights of ``mha`` copied in."""
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
    # The causal mask: PyTorch's mask says True where attention is NOT allowed.
    _t_out, _ = _t_mha(_t_x, causal_mask(7))
    _t_expected, _ = _t_ref(_t_x, _t_x, _t_x, attn_mask=~causal_mask(7))
    utils.assert_close(_t_out, _t_expected, f"с причинной маской, {_t_heads} голов", atol=1e-5)
assert _t_mha.weights is not None and _t_mha.weights.shape == (3, 1, 7, 7), "веса сохраняются в self.weights"
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
torch.manual_seed(1)
for _t_causal in (True, False):
    _t_block = TransformerBlock(8, 2, 16, causal=_t_causal)
    with torch.no_grad():
        for p in _t_block.parameters():
            p.normal_(0, 0.5)  # LayerNorm weights too: pre-norm and post-norm then differ clearly
    _t_x = torch.randn(3, 5, 8)
    _t_h = _t_x + _t_block.attn(_t_block.norm1(_t_x), causal_mask(5) if _t_causal else None)[0]
    _t_expected = _t_h + _t_block.mlp(_t_block.norm2(_t_h))
    utils.assert_close(_t_block(_t_x), _t_expected,
                       f"causal={_t_causal}: x + attn(norm1(x)), затем + mlp(norm2(·)) (pre-norm)", atol=1e-5)
# Causality of the block: a later token changes no earlier output; without the mask it does.
_t_block = TransformerBlock(8, 2, 16, causal=True)
_t_y = _t_x.clone()
_t_y[:, 4] += 5 * torch.randn(8)  # not a constant shift: LayerNorm would remove it
utils.assert_close(_t_block(_t_x)[:, :4], _t_block(_t_y)[:, :4], "causal=True: токен 4 не влияет на выходы 0–3",
                   atol=1e-5)
_t_block = TransformerBlock(8, 2, 16, causal=False)
assert not torch.allclose(_t_block(_t_x)[:, :4], _t_block(_t_y)[:, :4], atol=1e-4), (
    "causal=False: внимание двунаправленное, токен 4 влияет на все выходы")
### END HIDDEN TESTS

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
    """Logits of the next token from the last token only: a table."""

    def __init__(self, table, block_size=4):
        super().__init__()
        self.table, self.block_size, self.calls = table, block_size, []

    def forward(self, ids):
        self.calls.append(ids.shape[1])
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
# The window: never more than block_size tokens go in.
_t_model = _TBigram(_t_table, block_size=3)
generate(_t_model, torch.tensor([[1, 2, 3, 4]]), 4, top_k=2)
assert max(_t_model.calls) <= 3, f"в модель подано {max(_t_model.calls)} токенов при block_size = 3"
# Top-k: only the k most likely tokens are ever drawn.
_t_model = _TBigram(torch.arange(6.0).repeat(6, 1))  # every row prefers 5, then 4, ...
_t_drawn = generate(_t_model, torch.zeros(200, 1, dtype=torch.long), 3, temperature=5.0, top_k=2)[:, 1:]
assert set(_t_drawn.flatten().tolist()) == {4, 5}, f"top_k = 2: выбираются только токены 4 и 5, а не {set(_t_drawn.flatten().tolist())}"
# Temperature divides: a low temperature is nearly greedy, a high one flatter (logits 0..5, no top-k).
torch.manual_seed(1)
_t_cold = generate(_t_model, torch.zeros(400, 1, dtype=torch.long), 1, temperature=0.1)[:, 1]
_t_hot = generate(_t_model, torch.zeros(400, 1, dtype=torch.long), 1, temperature=10.0)[:, 1]
assert (_t_cold == 5).float().mean() > 0.99, "температура 0.1 почти жадная: логиты делятся на температуру"
assert (_t_hot == 5).float().mean() < 0.35, "температура 10 делает распределение почти равномерным"
# Batches and no gradients.
_t_learned = _TBigram(nn.Parameter(torch.randn(6, 6)))
_t_out = generate(_t_learned, torch.tensor([[1], [2], [3]]), 2)
assert _t_out.shape == (3, 3) and not _t_out.requires_grad, "батч из 3 строк, без градиентов"
### END HIDDEN TESTS


# %% [markdown]
# ## 4. Корпус и символьный токенизатор
#
# Корпус — 6 238 русских пословиц (`utils.load_text("ru_proverbs")`, пакет ru-proverbs, Apache-2.0). Текст хранит
# знаки ударения и мягкие переносы исходника; уберём их (NFC-нормализация, удаление U+0301 и U+00AD) и поделим
# пословицы на обучающие и проверочные (каждая десятая — в проверку), чтобы проверка шла на пословицах, которых
# модель не видела. Токены — символы: словарь маленький, и потеря на символ сравнима с другими символьными моделями.

# %%
import unicodedata

LATIN_STRESSED = str.maketrans({"á": "а", "é": "е", "ó": "о", "ý": "у"})


def clean(text):
    """The corpus without the source's stress marks and soft hyphens (Latin stressed vowels back to Cyrillic)."""
    text = unicodedata.normalize("NFD", text).replace("\u0301", "").replace("\u00ad", "")
    return unicodedata.normalize("NFC", text).translate(LATIN_STRESSED)


proverbs = clean(utils.load_text("ru_proverbs")).splitlines()
train_text = "\n".join(p for i, p in enumerate(proverbs) if i % 10) + "\n"
val_text = "\n".join(p for i, p in enumerate(proverbs) if i % 10 == 0) + "\n"
SPECIALS = ["[PAD]", "[MASK]"]
chars = sorted(set(train_text + val_text))
itos = SPECIALS + chars
stoi = {ch: i for i, ch in enumerate(itos)}
PAD_ID, MASK_ID = 0, 1


def encode(text):
    return torch.tensor([stoi[ch] for ch in text], dtype=torch.long)


def decode(ids):
    return "".join(itos[i] for i in ids if i >= len(SPECIALS))


train_ids, val_ids = encode(train_text), encode(val_text)
print(f"{len(proverbs)} пословиц; символов: обучение {len(train_ids):,}, проверка {len(val_ids):,}; "
      f"словарь {len(itos)} (из них {len(SPECIALS)} служебных)".replace(",", " "))
print(proverbs[:3])

# %% [markdown]
# **Базовые уровни.** Чтобы понимать, что значит потеря модели, посчитаем на проверочном тексте потерю двух
# простейших моделей, обученных на обучающем: **униграммы** (частота символа) и **биграммы** (частота символа
# после предыдущего), со сглаживанием +1.

# %%
def ngram_loss(train, val, order, vocab):
    """Cross-entropy in nats per character of an add-one smoothed unigram (order 1) or bigram (order 2) model."""
    if order == 1:
        counts = torch.bincount(train, minlength=vocab).float() + 1
        return -(counts / counts.sum()).log()[val].mean().item()
    counts = torch.ones(vocab, vocab)
    counts.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1), accumulate=True)
    probs = counts / counts.sum(1, keepdim=True)
    return -probs[val[:-1], val[1:]].log().mean().item()


baseline = {order: ngram_loss(train_ids, val_ids, order, len(itos)) for order in (1, 2)}
print(f"униграммы: {baseline[1]:.3f} нат на символ, биграммы: {baseline[2]:.3f}")

# %% [markdown]
# ## 5. Маленькие GPT и BERT одного размера
#
# Одна и та же модель — вложения символов и позиций, `depth` блоков `TransformerBlock`, LayerNorm и линейный слой
# в словарь, — в двух режимах: **GPT** (причинные блоки, цель — следующий символ на каждой позиции) и **BERT**
# (двунаправленные блоки, цель — символы, спрятанные `mask_tokens`).

# %%
class TinyLM(nn.Module):
    """Token and position embeddings, Transformer blocks (causal for GPT), and logits over the vocabulary."""

    def __init__(self, vocab, causal, dim=CFG["dim"], depth=CFG["depth"], heads=CFG["heads"], mlp_dim=CFG["mlp_dim"],
                 block_size=CFG["block_size"]):
        super().__init__()
        self.block_size, self.causal = block_size, causal
        self.tokens, self.positions = nn.Embedding(vocab, dim), nn.Embedding(block_size, dim)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, mlp_dim, causal) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, ids):
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))
        return self.head(self.norm(self.blocks(x)))


def windows(data, batch_size, generator):
    """``batch_size`` random windows of block_size + 1 characters."""
    start = torch.randint(len(data) - CFG["block_size"] - 1, (batch_size,), generator=generator)
    return torch.stack([data[s:s + CFG["block_size"] + 1] for s in start.tolist()])


def lm_loss(model, batch, generator):
    """GPT: next character at every position. BERT: the characters mask_tokens hid, from both sides."""
    if model.causal:
        x, y = batch[:, :-1], batch[:, 1:]
    else:
        x, y = mask_tokens(batch[:, :-1], MASK_ID, len(itos), CFG["mask_p"], generator)
    logits = model(x.to(device))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1).to(device), ignore_index=-100)


@torch.no_grad()
def validation_loss(model, seed=1):
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    losses = [lm_loss(model, windows(val_ids, CFG["batch_size"], generator), generator).item()
              for _ in range(CFG["eval_batches"])]
    model.train()
    return float(np.mean(losses))


def train_lm(model, steps=CFG["steps"], seed=0):
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=CFG["lr"], weight_decay=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=CFG["lr"], total_steps=steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(seed)
    history = {"train": [], "val": [], "val_step": []}
    start = time.perf_counter()
    for step in utils.progress(range(steps), desc="GPT" if model.causal else "BERT"):
        loss = lm_loss(model, windows(train_ids, CFG["batch_size"], generator), generator)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        history["train"].append(loss.item())
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            history["val"].append(validation_loss(model))
            history["val_step"].append(step)
    history["seconds"] = time.perf_counter() - start
    return history


torch.manual_seed(0)
gpt, bert = TinyLM(len(itos), causal=True), TinyLM(len(itos), causal=False)
print(f"параметров у каждой: {sum(p.numel() for p in gpt.parameters()):,}".replace(",", " "))
histories = {"GPT": train_lm(gpt), "BERT": train_lm(bert)}
for name, h in histories.items():
    print(f"{name}: проверочная потеря {h['val'][0]:.3f} → {h['val'][-1]:.3f} нат на предсказанный символ, "
          f"{h['seconds']:.0f} с")

# %% [markdown]
# ## 6. GPT продолжает, BERT заполняет пропуски
#
# Домашнее задание учебного текста: запустить обе модели и объяснить разницу. GPT видит только прошлое и умеет
# **продолжать** текст; BERT видит обе стороны и умеет **восстанавливать** спрятанное в середине, но не
# порождает текст слева направо.

# %%
torch.manual_seed(0)
prompt = "Без труда не "
for temperature, top_k in ((0.5, 5), (1.0, None)):
    out = generate(gpt.eval(), encode("\n" + prompt)[None].to(device), 40, temperature=temperature, top_k=top_k)
    print(f"GPT, T = {temperature}, top_k = {top_k}: {decode(out[0].tolist())[1:].splitlines()[0]!r}")


@torch.no_grad()
def fill_masks(model, text):
    """BERT's most likely character at every '_' of ``text``, seeing both sides."""
    ids = torch.tensor([MASK_ID if ch == "_" else stoi[ch] for ch in text])
    logits = model.eval()(ids[None].to(device))[0]
    return "".join(itos[int(logits[i].argmax())] if ch == "_" else ch for i, ch in enumerate(text))


for masked in ("Бе_ труда не выловишь и р_бку из пруда.", "Сем_ раз отмерь, один раз отр_жь."):
    print(f"BERT: {masked!r} → {fill_masks(bert, masked)!r}")
