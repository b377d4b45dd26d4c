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
# # Глава 11. Seq2seq: кодировщик, декодер и внимание
#
# {{badges}}
#
# **Цели главы.** После этой главы вы сможете:
# - собрать кодировщик и декодер на GRU и обучить их переводить одну последовательность в другую;
# - объяснить teacher forcing и почему на выводе декодер кормит себя своими же ответами;
# - добавить аддитивное внимание (Bahdanau) и увидеть, где оно помогает;
# - декодировать жадно и лучом (beam search).
#
# **Черновик (ветка wip/11_seq2seq):** данные и упражнения 1–4; декодирование, обучение и эксперименты — далее.

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
CFG = dict(
    emb_dim=utils.by_mode(32, 64),
    hidden_dim=utils.by_mode(64, 128),
)
PAD_ID = 0

# %% [markdown]
# ## 1. Задача: число словами → цифры
#
# Игрушечный «перевод» с точным ответом: на входе число русскими словами по буквам («двадцать одна тысяча
# триста»), на выходе — его цифры («21300»). Правило `utils.number_words` даёт сколько угодно пар без скачивания, а
# точность — доля **точно** переведённых чисел. Задача не тривиальна: «одна» и «две» перед «тысячей», «тысячи» и
# «тысяч», а нули в ответе ничем не названы («двести пять тысяч» → 205000).

# %%
SOURCE_CHARS = sorted(set(" ".join(utils.number_words.vocabulary())))
SOURCE_VOCAB = ["[PAD]"] + SOURCE_CHARS
TARGET_VOCAB = ["[PAD]", "[BOS]", "[EOS]"] + list("0123456789")
BOS_ID, EOS_ID = 1, 2
print(f"размер словаря: вход — {len(SOURCE_VOCAB)}, выход — {len(TARGET_VOCAB)}")
print(utils.number_words.number_to_words(21300), "→ 21300")

# %% [markdown]
# ## 2. Кодировщик
#
# Кодировщик читает вход и возвращает состояние на каждой позиции (их будет читать внимание) и последнее
# состояние (с него декодер начинает). Входы батча разной длины дополнены `PAD_ID = 0` справа; последнее состояние
# каждой строки — после её последнего **настоящего** символа, а не после паддинга.
#
# ### Упражнение 1: `Encoder`
#
# `Encoder(vocab_size, emb_dim, hidden_dim)`: `self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=0)`,
# `self.rnn = nn.GRU(emb_dim, hidden_dim, batch_first=True)`. `forward(src)` для `src` формы `(B, S)` возвращает
# `(outputs, last)`: `outputs` — `(B, S, hidden_dim)` (на позициях паддинга — нули), `last` — `(B, hidden_dim)`.
# Подсказка: `nn.utils.rnn.pack_padded_sequence` и `pad_packed_sequence`.

# %% grade_id="encoder_impl" solution=true
class Encoder(nn.Module):
    def __init__(self, vocab_size, emb_dim, hidden_dim):
        super().__init__()
        ### BEGIN SOLUTION
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        self.rnn = nn.GRU(emb_dim, hidden_dim, batch_first=True)
        ### END SOLUTION

    def forward(self, src):
        ### BEGIN SOLUTION
        lengths = (src != 0).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(src), lengths, batch_first=True,
                                                   enforce_sorted=False)
        outputs, last = self.rnn(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=src.shape[1])
        return outputs, last[0]
        ### END SOLUTION


# %% grade_id="encoder_tests" points=3
torch.manual_seed(0)
_t_enc = Encoder(10, 6, 8)
_t_src = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 2]])
_t_out, _t_last = _t_enc(_t_src)
utils.assert_shape(_t_out, (2, 5, 8), "все состояния кодировщика")
utils.assert_shape(_t_last, (2, 8), "последнее состояние")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Each row on its own, without padding, through the same GRU: the reference.
for _t_row, _t_n in ((0, 3), (1, 5)):
    _t_ref_out, _t_ref_last = _t_enc.rnn(_t_enc.embedding(_t_src[_t_row:_t_row + 1, :_t_n]))
    utils.assert_close(_t_out[_t_row, :_t_n], _t_ref_out[0], f"состояния строки {_t_row} на настоящих символах",
                       atol=1e-5)
    utils.assert_close(_t_last[_t_row], _t_ref_last[0, 0], f"последнее состояние строки {_t_row} — после её "
                       f"последнего настоящего символа, а не после паддинга", atol=1e-5)
assert torch.all(_t_out[0, 3:] == 0), "на позициях паддинга состояния — нули"
# Padding changes nothing: more pad columns give the same states.
_t_out2, _t_last2 = _t_enc(torch.cat([_t_src, torch.zeros(2, 3, dtype=torch.long)], 1))
utils.assert_close(_t_last2, _t_last, "лишний паддинг не меняет последнее состояние", atol=1e-6)
assert _t_enc.embedding.padding_idx == 0, "nn.Embedding(..., padding_idx=0)"
assert isinstance(_t_enc.rnn, nn.GRU) and _t_enc.rnn.batch_first, "nn.GRU(emb_dim, hidden_dim, batch_first=True)"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Внимание Bahdanau
#
# Без внимания всё, что декодер знает о входе, — один вектор `last`. Для длинного входа его не хватает. **Аддитивное
# внимание** (Bahdanau et al., 2015) на каждом шаге декодера сравнивает его состояние $s$ с каждым состоянием
# кодировщика $h_j$:
#
# $$e_j = v^\top \tanh(W_q s + W_k h_j), \qquad \alpha = \mathrm{softmax}(e), \qquad c = \sum_j \alpha_j h_j.$$
#
# Позиции паддинга получают $e_j = -\infty$ до softmax: их вес — ровно ноль.
#
# ### Упражнение 2: `BahdanauAttention`
#
# `BahdanauAttention(hidden_dim)`: `self.query = nn.Linear(hidden_dim, hidden_dim, bias=False)` ($W_q$),
# `self.key = nn.Linear(hidden_dim, hidden_dim)` ($W_k$), `self.score = nn.Linear(hidden_dim, 1, bias=False)` ($v$).
# `forward(query, keys, mask)`: `query` — `(B, H)`, `keys` — `(B, S, H)`, `mask` — булев `(B, S)`, `True` на
# настоящих символах. Верните `(context, weights)`: `(B, H)` и `(B, S)`.

# %% grade_id="attention_impl" solution=true
class BahdanauAttention(nn.Module):
    def __init__(self, hidden_dim):
        super().__init__()
        ### BEGIN SOLUTION
        self.query = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.key = nn.Linear(hidden_dim, hidden_dim)
        self.score = nn.Linear(hidden_dim, 1, bias=False)
        ### END SOLUTION

    def forward(self, query, keys, mask):
        ### BEGIN SOLUTION
        scores = self.score(torch.tanh(self.query(query)[:, None] + self.key(keys)))[..., 0]
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return (weights[..., None] * keys).sum(1), weights
        ### END SOLUTION


# %% grade_id="attention_tests" points=3
torch.manual_seed(0)
_t_att = BahdanauAttention(6)
_t_keys = torch.randn(3, 5, 6)
_t_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
_t_ctx, _t_w = _t_att(torch.randn(3, 6), _t_keys, _t_mask)
utils.assert_shape(_t_ctx, (3, 6), "контекст")
utils.assert_shape(_t_w, (3, 5), "веса по позициям входа")
utils.assert_close(_t_w.sum(-1), torch.ones(3), "веса каждой строки в сумме дают 1")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
assert torch.all(_t_w[~_t_mask] == 0), "вес паддинга — ровно ноль (маска до softmax)"
utils.assert_close(_t_w[2], torch.tensor([1.0, 0, 0, 0, 0]), "одна настоящая позиция получает весь вес")
# The formula, written out per example and per position.
torch.manual_seed(1)
_t_q = torch.randn(3, 6)
_t_ctx, _t_w = _t_att(_t_q, _t_keys, _t_mask)
for _t_b in range(3):
    _t_n = int(_t_mask[_t_b].sum())
    _t_e = torch.stack([_t_att.score.weight[0] @ torch.tanh(_t_att.query.weight @ _t_q[_t_b] + _t_att.key.weight
                                                            @ _t_keys[_t_b, _t_j] + _t_att.key.bias)
                        for _t_j in range(_t_n)])
    _t_ref = _t_e.softmax(0)
    utils.assert_close(_t_w[_t_b, :_t_n], _t_ref, f"веса примера {_t_b}: softmax(vᵀ tanh(W_q s + W_k h_j))",
                       atol=1e-5)
    utils.assert_close(_t_ctx[_t_b], _t_ref @ _t_keys[_t_b, :_t_n], f"контекст примера {_t_b}: Σ α_j h_j",
                       atol=1e-5)
# Softmax over source positions of each example, not over the batch: one example alone gives the same weights.
_t_ctx1, _t_w1 = _t_att(_t_q[:1], _t_keys[:1], _t_mask[:1])
utils.assert_close(_t_w1[0], _t_w[0], "веса примера не зависят от других примеров батча", atol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Декодер
#
# Декодер порождает ответ по символу. На шаге $t$ он получает предыдущий символ ответа и своё состояние; с
# вниманием — ещё и контекст $c_t$, посчитанный по его **предыдущему** состоянию:
#
# $$c_t = \mathrm{Attention}(s_{t-1}, h), \quad s_t = \mathrm{GRUCell}([e(y_{t-1}); c_t], s_{t-1}), \quad
# \mathrm{logits}_t = W_o [s_t; c_t].$$
#
# Без внимания вход ячейки — только $e(y_{t-1})$, а логиты — $W_o s_t$. Начальное состояние $s_0$ — последнее
# состояние кодировщика: так декодер узнаёт о входе.
#
# ### Упражнение 3: `Decoder`
#
# `Decoder(vocab_size, emb_dim, hidden_dim, attention=None)`: `self.embedding = nn.Embedding(vocab_size, emb_dim,
# padding_idx=0)`, `self.cell = nn.GRUCell(...)`, `self.out = nn.Linear(..., vocab_size)`, `self.attention =
# attention` (модуль `BahdanauAttention` или `None`).
# - `step(token, hidden, enc_outputs, src_mask)`: один шаг; `token` — `(B,)`, `hidden` — `(B, H)`. Верните
#   `(logits, hidden, weights)`: `(B, vocab_size)`, `(B, H)` и веса внимания `(B, S)` (без внимания — `None`).
# - `forward(tgt_in, hidden, enc_outputs, src_mask)`: teacher forcing — на каждом шаге на вход идёт **верный**
#   предыдущий символ из `tgt_in` `(B, T)`; верните логиты `(B, T, vocab_size)`.

# %% grade_id="decoder_impl" solution=true
class Decoder(nn.Module):
    def __init__(self, vocab_size, emb_dim, hidden_dim, attention=None):
        super().__init__()
        ### BEGIN SOLUTION
        self.attention = attention
        context = hidden_dim if attention is not None else 0
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        self.cell = nn.GRUCell(emb_dim + context, hidden_dim)
        self.out = nn.Linear(hidden_dim + context, vocab_size)
        ### END SOLUTION

    def step(self, token, hidden, enc_outputs, src_mask):
        ### BEGIN SOLUTION
        x = self.embedding(token)
        if self.attention is None:
            hidden = self.cell(x, hidden)
            return self.out(hidden), hidden, None
        context, weights = self.attention(hidden, enc_outputs, src_mask)
        hidden = self.cell(torch.cat([x, context], -1), hidden)
        return self.out(torch.cat([hidden, context], -1)), hidden, weights
        ### END SOLUTION

    def forward(self, tgt_in, hidden, enc_outputs, src_mask):
        ### BEGIN SOLUTION
        logits = []
        for t in range(tgt_in.shape[1]):
            step_logits, hidden, _ = self.step(tgt_in[:, t], hidden, enc_outputs, src_mask)
            logits.append(step_logits)
        return torch.stack(logits, 1)
        ### END SOLUTION


# %% grade_id="decoder_tests" points=3
torch.manual_seed(0)
_t_dec = Decoder(7, 4, 6, BahdanauAttention(6))
_t_enc_out, _t_mask = torch.randn(2, 5, 6), torch.ones(2, 5, dtype=torch.bool)
_t_logits, _t_h, _t_w = _t_dec.step(torch.tensor([1, 1]), torch.zeros(2, 6), _t_enc_out, _t_mask)
utils.assert_shape(_t_logits, (2, 7), "логиты одного шага")
utils.assert_shape(_t_w, (2, 5), "веса внимания шага")
_t_all = _t_dec(torch.tensor([[1, 3, 4], [1, 5, 6]]), torch.zeros(2, 6), _t_enc_out, _t_mask)
utils.assert_shape(_t_all, (2, 3, 7), "логиты teacher forcing")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Teacher forcing is the steps with the true previous tokens fed in.
_t_tgt = torch.tensor([[1, 3, 4, 5], [1, 6, 2, 0]])
_t_h0 = torch.randn(2, 6)
_t_all = _t_dec(_t_tgt, _t_h0, _t_enc_out, _t_mask)
_t_h = _t_h0
for _t_t in range(4):
    _t_l, _t_h, _ = _t_dec.step(_t_tgt[:, _t_t], _t_h, _t_enc_out, _t_mask)
    utils.assert_close(_t_all[:, _t_t], _t_l, f"forward на шаге {_t_t} — step с верным предыдущим символом", atol=1e-5)
# The formula of one step with attention: context from the previous state, the cell, logits from [s_t; c_t].
_t_ctx, _ = _t_dec.attention(_t_h0, _t_enc_out, _t_mask)
_t_s1 = _t_dec.cell(torch.cat([_t_dec.embedding(_t_tgt[:, 0]), _t_ctx], -1), _t_h0)
utils.assert_close(_t_all[:, 0], _t_dec.out(torch.cat([_t_s1, _t_ctx], -1)), "шаг с вниманием: c_t по s_{t-1}, "
                   "вход ячейки [e(y); c], логиты по [s_t; c_t]", atol=1e-5)
# The encoder's state flows in: another initial state changes the first logits.
_t_other = _t_dec(_t_tgt, _t_h0 + 1, _t_enc_out, _t_mask)
assert (_t_other[:, 0] - _t_all[:, 0]).abs().max() > 1e-3, "начальное состояние декодера должно влиять на ответ"
# Without attention: no weights, and the encoder outputs are not read.
torch.manual_seed(2)
_t_plain = Decoder(7, 4, 6)
_t_l, _t_h, _t_w = _t_plain.step(torch.tensor([1, 1]), _t_h0, _t_enc_out, _t_mask)
assert _t_w is None, "без внимания step возвращает веса None"
utils.assert_close(_t_l, _t_plain.out(_t_plain.cell(_t_plain.embedding(torch.tensor([1, 1])), _t_h0)),
                   "шаг без внимания: logits = W_o GRUCell(e(y), s)", atol=1e-5)
# Gradients reach the attention, the cell and the embedding.
_t_dec.zero_grad()
_t_dec(_t_tgt, _t_h0, _t_enc_out, _t_mask).sum().backward()
for _t_name, _t_p in _t_dec.named_parameters():
    assert _t_p.grad is not None and _t_p.grad.abs().sum() > 0, f"градиент не доходит до {_t_name}"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Функция потерь
#
# Ответы батча разной длины тоже дополнены паддингом; паддинг — не часть ответа, и учиться предсказывать его не
# нужно.
#
# ### Упражнение 4: `seq2seq_loss`
#
# `seq2seq_loss(logits, targets, pad_id)`: `logits` — `(B, T, V)`, `targets` — `(B, T)`. Верните среднюю
# перекрёстную энтропию по всем **не-паддинговым** позициям батча (каждый настоящий символ — с одним весом).

# %% grade_id="loss_impl" solution=true
def seq2seq_loss(logits, targets, pad_id):
    ### BEGIN SOLUTION
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=pad_id)
    ### END SOLUTION


# %% grade_id="loss_tests" points=2
torch.manual_seed(0)
_t_logits = torch.randn(2, 4, 5)
_t_targets = torch.tensor([[3, 4, 2, 0], [1, 2, 0, 0]])
_t_loss = seq2seq_loss(_t_logits, _t_targets, 0)
assert _t_loss.dim() == 0, "потеря — одно число"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
_t_ref = F.cross_entropy(_t_logits.reshape(-1, 5), _t_targets.reshape(-1), ignore_index=0)
utils.assert_close(_t_loss, _t_ref, "сравнение с F.cross_entropy(ignore_index=pad_id)")
# Every real token weighs the same: not a mean of per-sequence means.
_t_manual = torch.cat([F.cross_entropy(_t_logits[0, :3], _t_targets[0, :3], reduction="none"),
                       F.cross_entropy(_t_logits[1, :2], _t_targets[1, :2], reduction="none")]).mean()
utils.assert_close(_t_loss, _t_manual, "среднее по всем настоящим символам батча")
# pad_id is an argument, not a constant.
_t_targets7 = _t_targets.masked_fill(_t_targets == 0, 4)
_t_targets7[0, 1] = 3
utils.assert_close(seq2seq_loss(_t_logits, _t_targets7, 4),
                   F.cross_entropy(_t_logits.reshape(-1, 5), _t_targets7.reshape(-1), ignore_index=4),
                   "паддинг — pad_id из аргумента")
# The logits of padding positions do not matter.
_t_changed = _t_logits.clone()
_t_changed[_t_targets == 0] += 100 * torch.randn_like(_t_changed[_t_targets == 0])
utils.assert_close(seq2seq_loss(_t_changed, _t_targets, 0), _t_loss, "логиты на паддинге не влияют на потерю")
### END HIDDEN TESTS
