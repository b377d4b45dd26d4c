"""Chapter 11: each exercise's tests reject the plausible mistakes and accept other correct code."""

from __future__ import annotations

from exercise_checks import exercise_tests, variants

CHAPTER = "11_seq2seq"

ENCODER = """
class Encoder(nn.Module):
    def __init__(self, vocab_size, emb_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim{padding})
        self.rnn = nn.GRU(emb_dim, hidden_dim, batch_first=True)

    def forward(self, src):
        {body}
"""
PACKED = """lengths = (src != 0).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(src), lengths, batch_first=True,
                                                   enforce_sorted=False)
        outputs, last = self.rnn(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=src.shape[1])
        return outputs, last[0]"""
MASKED = """real = src != 0
        outputs, _ = self.rnn(self.embedding(src))
        outputs = outputs * real[..., None]
        lengths = real.sum(1).clamp(min=1)
        return outputs, outputs[torch.arange(len(src), device=src.device), lengths - 1]"""
GOOD_ENCODER = dict(padding=", padding_idx=0", body=MASKED)
encoder = variants(ENCODER, GOOD_ENCODER)

ATTENTION = """
class BahdanauAttention(nn.Module):
    def __init__(self, hidden_dim):
        super().__init__()
        self.query = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.key = nn.Linear(hidden_dim, hidden_dim)
        self.score = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, query, keys, mask):
        scores = self.score({energy})[..., 0]
        weights = {weights}
        return (weights[..., None] * keys).sum(1), weights
"""
GOOD_ATTENTION = dict(energy="torch.tanh(self.query(query)[:, None] + self.key(keys))",
                      weights='scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)')
attention = variants(ATTENTION, GOOD_ATTENTION)

DECODER = """
class Decoder(nn.Module):
    def __init__(self, vocab_size, emb_dim, hidden_dim, attention=None):
        super().__init__()
        self.attention = attention
        context = hidden_dim if attention is not None else 0
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        self.cell = nn.GRUCell(emb_dim + context, hidden_dim)
        self.out = nn.Linear(hidden_dim + context, vocab_size)

    def step(self, token, hidden, enc_outputs, src_mask):
        x = self.embedding(token)
        if self.attention is None:
            hidden = self.cell(x, hidden)
            return self.out(hidden), hidden, None
        context, weights = self.attention({query}, enc_outputs, src_mask)
        new_hidden = self.cell(torch.cat([x, context], -1), hidden)
        return self.out(torch.cat([{out_state}, context], -1)), new_hidden, weights

    def forward(self, tgt_in, hidden, enc_outputs, src_mask):
        logits = []
        for t in range(tgt_in.shape[1]):
            step_logits, {carry}, _ = self.step({fed}, hidden, enc_outputs, src_mask)
            logits.append(step_logits)
        return torch.stack(logits, 1)
"""
GOOD_DECODER = dict(query="hidden", out_state="new_hidden", carry="hidden", fed="tgt_in[:, t]")


def decoder(**changes):
    return attention() + DECODER.format(**{**GOOD_DECODER, **changes})


LOSS = """
def seq2seq_loss(logits, targets, pad_id):
    {body}
"""
loss = variants(LOSS, dict(body="return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), "
                                "ignore_index=pad_id)"))

GREEDY = """
@torch.no_grad()
def greedy_decode(model, src, max_len, bos_id, eos_id):
    enc_outputs, hidden, mask = model.encode(src)
    token = torch.full((len(src),), bos_id, dtype=torch.long, device=src.device)
    out, done = [[] for _ in range(len(src))], [False] * len(src)
    for _ in range({steps}):
        logits, {state_out}, _ = model.decoder.step({fed}, hidden, enc_outputs, mask)
        choice = logits.argmax(-1)
        {feed_back}
        for i, t in enumerate(choice.tolist()):
            if not done[i]:
                done[i] = {finished}
                if not done[i]:
                    out[i].append(t)
        {stop}
    return out
"""
GOOD_GREEDY = dict(steps="max_len", fed="token", state_out="hidden", feed_back="token = choice", finished="t == eos_id",
                   stop="if all(done):\n            break")
greedy = variants(GREEDY, GOOD_GREEDY)

BEAM = """
@torch.no_grad()
def beam_search(model, src, beam_size, max_len, bos_id, eos_id, length_penalty=1.0):
    enc_outputs, hidden, mask = model.encode(src)
    beams, finished = [([], 0.0, hidden)], []
    for _ in range(max_len):
        candidates = []
        for tokens, score, state in beams:
            token = torch.tensor([tokens[-1] if tokens else bos_id], device=src.device)
            logits, new_state, _ = model.decoder.step(token, state, enc_outputs, mask)
            top = {scores}[0].topk(min(beam_size, logits.shape[-1]))
            for s, t in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                candidates.append((tokens + [t], score + s, {carried}))
        candidates.sort(key=lambda c: c[1], reverse=True)
        beams = []
        for tokens, score, state in candidates[:{keep}]:
            if tokens[-1] == eos_id:
                finished.append((tokens[:-1], {final}))
            else:
                beams.append((tokens, score, state))
        if not beams:
            break
    finished += [(tokens, score / len(tokens) ** length_penalty) for tokens, score, _ in beams]
    return max(finished, key=lambda f: f[1])[0]
"""
GOOD_BEAM = dict(scores="logits.log_softmax(-1)", keep="beam_size", final="score / len(tokens) ** length_penalty",
                 carried="new_state")

# All beams in one batch: one decoder step per length, the global top-k over (beam, token), states reindexed.
BATCHED_BEAM = """
@torch.no_grad()
def beam_search(model, src, beam_size, max_len, bos_id, eos_id, length_penalty=1.0):
    enc_outputs, hidden, mask = model.encode(src)
    tokens, scores, finished = [[]], torch.zeros(1), []
    for _ in range(max_len):
        n = len(tokens)
        last = torch.tensor([t[-1] if t else bos_id for t in tokens])
        logits, hidden, _ = model.decoder.step(last, hidden.expand(n, -1) if len(hidden) != n else hidden,
                                               enc_outputs.expand(n, *enc_outputs.shape[1:]), mask.expand(n, -1))
        vocab = logits.shape[-1]
        total = (scores[:, None] + logits.log_softmax(-1)).flatten()
        top = total.topk(min(beam_size, total.numel()))
        kept, kept_scores, rows = [], [], []
        for s, index in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            b, t = divmod(index, vocab)
            if t == eos_id:
                finished.append((tokens[b], s / (len(tokens[b]) + 1) ** length_penalty))
            else:
                kept.append(tokens[b] + [t])
                kept_scores.append(s)
                rows.append(b)
        tokens, scores = kept, torch.tensor(kept_scores)
        if not rows:
            break
        hidden = hidden[rows]
    finished += [(t, s / len(t) ** length_penalty) for t, s in zip(tokens, scores.tolist(), strict=True)]
    return max(finished, key=lambda f: f[1])[0]
"""


def stand_in_models() -> str:
    """The stand-in models defined by the greedy test cell, which the beam test cell uses as well (in the notebook
    the greedy cell runs first)."""
    import jupytext
    from course import ROOT

    source = jupytext.read(ROOT / "solutions" / CHAPTER / f"{CHAPTER}.py")
    cell = next(c for c in source.cells if c.metadata.get("grade_id") == "greedy_tests")
    return cell.source.split("_t_model = ")[0]


def beam(**changes):
    return stand_in_models() + greedy() + BEAM.format(**{**GOOD_BEAM, **changes})


EXERCISES = {
    "encoder_tests": {
        "correct": {
            "reference": encoder(),
            # The statement's other way: packed sequences (slower to train on CPU, the same numbers).
            "packed sequences": encoder(body=PACKED),
            # The last real state gathered from the unpacked outputs: the same numbers as the packed GRU.
            "gather the last real state": encoder(body="""lengths = (src != 0).sum(1).clamp(min=1)
        outputs = []
        for row, n in zip(src, lengths.tolist(), strict=True):
            out, _ = self.rnn(self.embedding(row[None, :n]))
            outputs.append(F.pad(out[0], (0, 0, 0, src.shape[1] - n)))
        outputs = torch.stack(outputs)
        return outputs, outputs[torch.arange(len(src)), lengths - 1]"""),
        },
        "wrong": {
            # The GRU runs over the padding: the last state is the one after the pad symbols.
            "last state after the padding": encoder(body="outputs, last = self.rnn(self.embedding(src))\n"
                                                         "        return outputs, last[0]"),
            "outputs of the first position as the last state": encoder(body=PACKED.replace("last[0]", "outputs[:, 0]")),
            "no padding_idx": encoder(padding=""),
            # The masked way with its two easy slips: the mask forgotten, the last state taken one step too far.
            "masked way, outputs not zero on padding": encoder(body=MASKED.replace(
                "outputs = outputs * real[..., None]", "pass")),
            "masked way, state one past the last symbol": encoder(body=MASKED.replace(
                "lengths - 1]", "lengths.clamp(max=src.shape[1] - 1)]")),
            "outputs not zero on padding": encoder(body=PACKED.replace(
                "outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=src.shape[1])",
                "outputs = self.rnn(self.embedding(src))[0]")),
        },
    },
    "attention_tests": {
        "correct": {
            "reference": attention(),
            "where and bmm": attention(weights='torch.where(mask, scores, torch.tensor(float("-inf"))).softmax(-1)')
            .replace("return (weights[..., None] * keys).sum(1), weights",
                     "return torch.bmm(weights[:, None], keys)[:, 0], weights"),
        },
        "wrong": {
            "softmax over the batch axis": attention(weights='scores.masked_fill(~mask, float("-inf")).softmax(dim=0)'),
            "padding not masked": attention(weights="scores.softmax(dim=-1)"),
            "mask applied after softmax": attention(weights="scores.softmax(dim=-1) * mask"),
            "no tanh": attention(energy="self.query(query)[:, None] + self.key(keys)"),
            "query ignored": attention(energy="torch.tanh(self.key(keys))"),
        },
    },
    "decoder_tests": {
        "correct": {
            "reference": decoder(),
        },
        "wrong": {
            "context from the new state": decoder(query="self.cell(torch.cat([x, x.new_zeros(x.shape[0], "
                                                        "hidden.shape[1])], -1), hidden)"),
            "logits from the old state": decoder(out_state="hidden"),
            "state not carried between steps": decoder(carry="_state"),
            "always BOS fed": decoder(fed="tgt_in[:, 0]"),
        },
    },
    "loss_tests": {
        "correct": {
            "reference": loss(),
            "masked mean by hand": loss(body="""mask = targets != pad_id
    per_token = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return per_token[mask].mean()"""),
        },
        "wrong": {
            "padding counted": loss(body="return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), "
                                         "targets.reshape(-1))"),
            "pad id fixed at 0": loss(body="return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), "
                                           "targets.reshape(-1), ignore_index=0)"),
            "mean of per-sequence means": loss(body="""mask = (targets != pad_id).float()
    per_token = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return ((per_token * mask).sum(1) / mask.sum(1)).mean()"""),
            "sum instead of mean": loss(body="return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), "
                                             "targets.reshape(-1), ignore_index=pad_id, reduction='sum')"),
        },
    },
    "greedy_tests": {
        "correct": {
            "reference": greedy(),
        },
        "wrong": {
            # The seed's sketch at inference: the decoder never sees its own answers (here: always BOS).
            "own answers not fed back": greedy(feed_back="pass"),
            "EOS never stops a row": greedy(finished="False"),
            "does not stop when all rows are done": greedy(stop="pass"),
            "EOS kept in the answer": greedy(finished="False", stop="if all(x and x[-1] == eos_id for x in out):\n"
                                                                    "            break"),
            "state not carried between steps": greedy(state_out="_"),
        },
    },
    "beam_tests": {
        "correct": {
            "reference": beam(),
            "all beams batched in one step": stand_in_models() + greedy() + BATCHED_BEAM,
        },
        "wrong": {
            "summed probabilities instead of log-probabilities": beam(scores="logits.softmax(-1)"),
            "scores not length-aware": beam(final="score"),
            # The statement counts the length with [EOS].
            "length counted without [EOS]": beam(final="score / max(len(tokens) - 1, 1) ** length_penalty"),
            "only one beam kept": beam(keep="1"),
            "state not carried along the beam": beam(carried="state"),
        },
    },
}
KNOWN_TO_SPILL: dict = {}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(
    CHAPTER, EXERCISES, KNOWN_TO_SPILL)
