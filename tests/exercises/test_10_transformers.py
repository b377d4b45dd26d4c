"""Chapter 10: each exercise's tests reject the plausible mistakes and accept other correct code."""

from __future__ import annotations

from exercise_checks import exercise_tests, variants

CHAPTER = "10_transformers"
IMPORTS = "import math\n"

ATTENTION = IMPORTS + """
def causal_mask(n):
    return {mask}


def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1){scale}
    if mask is not None:
        scores = {masking}
    weights = scores.softmax(dim={axis})
    {after}
    return weights @ v, weights
"""
GOOD_ATTENTION = dict(mask="torch.ones(n, n, dtype=torch.bool).tril()", scale=" / math.sqrt(q.shape[-1])",
                      masking='scores.masked_fill(~mask, float("-inf"))', axis="-1", after="")
attention = variants(ATTENTION, GOOD_ATTENTION)

MHA = """
class MultiHeadAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.weights = None

    def forward(self, x, mask=None):
        b, t, dim = x.shape

        def split(y):
            return {split}

        out, self.weights = scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split({value}), mask)
        return self.out({merge}), self.weights
"""
GOOD_MHA = dict(split="y.view(b, t, self.heads, dim // self.heads).transpose(1, 2)", value="self.v(x)",
                merge="out.transpose(1, 2).reshape(b, t, dim)")


def mha(**changes):
    return attention() + MHA.format(**{**GOOD_MHA, **changes})


BLOCK = """
class TransformerBlock(nn.Module):
    def __init__(self, dim, heads, mlp_dim, causal):
        super().__init__()
        self.causal = causal
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x):
        mask = {mask}
        {body}
"""
GOOD_BLOCK = dict(mask="causal_mask(x.shape[1]).to(x.device) if self.causal else None",
                  body="x = x + self.attn(self.norm1(x), mask)[0]\n        return x + self.mlp(self.norm2(x))")


def block(**changes):
    return mha() + BLOCK.format(**{**GOOD_BLOCK, **changes})


MASK = """
def mask_tokens(ids, mask_id, vocab_size, p, rng):
    chosen = torch.rand(ids.shape, generator=rng) < {p}
    labels = {labels}
    roll = torch.rand(ids.shape, generator=rng)
    random_tokens = torch.randint(vocab_size, ids.shape, generator={token_rng})
    inputs = torch.where(chosen & (roll < {mask_share}), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(chosen & (roll >= {mask_share}) & (roll < {random_end}), random_tokens, inputs)
    return inputs, labels
"""
GOOD_MASK = dict(p="p", labels="torch.where(chosen, ids, torch.full_like(ids, -100))", token_rng="rng",
                 mask_share="0.8", random_end="0.9")
masking = variants(MASK, GOOD_MASK)

GENERATE = """
@torch.no_grad()
def generate(model, ids, max_new_tokens, temperature=1.0, top_k=None):
    for _ in range(max_new_tokens):
        logits = model(ids{window})[:, -1]{temperature}
        if top_k is not None:
            kth = logits.topk(min(top_k, logits.shape[-1])).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        ids = torch.cat([ids, {pick}], dim=1)
    return ids
"""
GOOD_GENERATE = dict(window="[:, -model.block_size:]", temperature=" / temperature",
                     pick="torch.multinomial(logits.softmax(-1), 1)")
generating = variants(GENERATE, GOOD_GENERATE)


EXERCISES = {
    "attention_tests": {
        "correct": {
            "reference": attention(),
            "mask by where and -inf": attention(masking='torch.where(mask, scores, torch.tensor(float("-inf")))'),
            "causal mask by comparison": attention(mask="torch.arange(n)[None, :] <= torch.arange(n)[:, None]"),
        },
        "wrong": {
            "no sqrt(d_k)": attention(scale=""),
            "divided by d_k": attention(scale=" / q.shape[-1]"),
            # The mask applied to the weights after the softmax: rows no longer sum to 1.
            "mask after softmax": attention(masking="scores", after="weights = weights * mask if mask is not None else weights"),
            "softmax over queries": attention(axis="-2"),
            "mask inverted": attention(masking='scores.masked_fill(mask, float("-inf"))'),
            "upper-triangular causal mask": attention(mask="torch.ones(n, n, dtype=torch.bool).triu()"),
            "large negative that is not enough": attention(masking="scores.masked_fill(~mask, -1.0)"),
        },
    },
    "mha_tests": {
        "correct": {
            "reference": mha(),
            "unflatten and permute": mha(split="y.unflatten(-1, (self.heads, -1)).permute(0, 2, 1, 3)",
                                         merge="out.permute(0, 2, 1, 3).flatten(2)"),
        },
        "wrong": {
            # Heads split along the wrong axis: the view gives (B, heads, T, d) without the transpose.
            "heads split along the wrong axis": mha(split="y.view(b, self.heads, t, dim // self.heads)"),
            "heads merged without the transpose": mha(merge="out.reshape(b, t, dim)"),
            "value projection skipped": mha(value="x"),
            "no output projection": mha().replace("return self.out(out.transpose(1, 2).reshape(b, t, dim))",
                                                  "return (out.transpose(1, 2).reshape(b, t, dim))"),
        },
    },
    "block_tests": {
        "correct": {
            "reference": block(),
            "mask built with ones().tril()": block(
                mask="torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device).tril() if self.causal else None"),
        },
        "wrong": {
            "post-norm": block(body="x = self.norm1(x + self.attn(x, mask)[0])\n        return self.norm2(x + self.mlp(x))"),
            "no residual around attention": block(
                body="x = self.attn(self.norm1(x), mask)[0]\n        return x + self.mlp(self.norm2(x))"),
            "mask never used": block(mask="None"),
            "mask always used": block(mask="causal_mask(x.shape[1]).to(x.device)"),
            "one LayerNorm for both": block(
                body="x = x + self.attn(self.norm1(x), mask)[0]\n        return x + self.mlp(self.norm1(x))"),
        },
    },
    "mask_tokens_tests": {
        "correct": {
            "reference": masking(),
            "masked_fill": """
def mask_tokens(ids, mask_id, vocab_size, p, rng):
    chosen = torch.rand(ids.shape, generator=rng) < p
    roll = torch.rand(ids.shape, generator=rng)
    noise = torch.randint(vocab_size, ids.shape, generator=rng)
    inputs = ids.clone()
    inputs[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = noise[swap]
    return inputs, ids.masked_fill(~chosen, -100)
""",
        },
        "wrong": {
            # Labels on every position: the loss then rewards copying the input.
            "labels everywhere": masking(labels="ids.clone()"),
            "labels zero where unmasked": masking(labels="torch.where(chosen, ids, torch.zeros_like(ids))"),
            "always [MASK]": masking(mask_share="1.0", random_end="1.0"),
            "no random tokens": masking(random_end="0.8"),
            "p ignored": masking(p="0.15"),
            "global randomness for the random tokens": masking(token_rng="None"),
            "ids changed in place": """
def mask_tokens(ids, mask_id, vocab_size, p, rng):
    chosen = torch.rand(ids.shape, generator=rng) < p
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=rng)
    noise = torch.randint(vocab_size, ids.shape, generator=rng)
    ids[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    ids[swap] = noise[swap]
    return ids, labels
""",
        },
    },
    "generate_tests": {
        "correct": {
            "reference": generating(),
            "no_grad as a context inside": """
def generate(model, ids, max_new_tokens, temperature=1.0, top_k=None):
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(ids[:, -model.block_size:])[:, -1] / temperature
            if top_k is not None:
                kth = logits.topk(min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            ids = torch.cat([ids, torch.multinomial(logits.softmax(-1), 1)], dim=1)
    return ids
""",
            "greedy when top_k is 1, sampling otherwise": generating(
                pick="(logits.argmax(-1, keepdim=True) if top_k == 1 else torch.multinomial(logits.softmax(-1), 1))"),
        },
        "wrong": {
            "temperature multiplied": generating(temperature=" * temperature"),
            "whole history fed": generating(window=""),
            "always greedy": generating(pick="logits.argmax(-1, keepdim=True)"),
            "first position's logits": generating().replace("[:, -1]", "[:, 0]", 1),
            "gradients recorded (no torch.no_grad)": generating().replace("@torch.no_grad()\n", "", 1),
        },
    },
}

KNOWN_TO_SPILL: dict = {}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(
    CHAPTER, EXERCISES, KNOWN_TO_SPILL)
