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
}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes) = exercise_tests(CHAPTER, EXERCISES)
