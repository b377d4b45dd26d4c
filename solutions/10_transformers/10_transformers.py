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
# **Черновик (ветка wip/10_transformers):** готовы упражнения 1–3 с тестами; данные, обучение и эксперименты — далее.

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
import math

CFG = dict(
    block_size=64,
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
