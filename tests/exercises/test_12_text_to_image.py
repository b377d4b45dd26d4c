"""Chapter 12: each exercise's tests reject the plausible mistakes and accept other correct code."""

from __future__ import annotations

from exercise_checks import exercise_tests, variants

CHAPTER = "12_text_to_image"

BLOCK = """
class ConditionalBlock(nn.Module):
    def __init__(self, in_channels, out_channels, cond_dim):
        super().__init__()
        self.film = nn.Linear(cond_dim, 2 * out_channels)
        self.norm1 = nn.GroupNorm(8, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = {skip}

    def forward(self, x, c):
        h = self.conv1(F.silu(self.norm1(x)))
        gamma, beta = {split}
        h = {film}
        return {out}
"""
GOOD_BLOCK = dict(
    skip="nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()",
    split="self.film(F.silu(c)).chunk(2, dim=1)",
    film="self.norm2(h) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]",
    out="self.conv2(F.silu(h)) + self.skip(x)")
block = variants(BLOCK, GOOD_BLOCK)

DROP = """
def drop_condition(e, null, p, generator=None):
    {body}
"""
drop = variants(DROP, dict(body="""drop = torch.rand(e.shape[0], 1, generator=generator, device=e.device) < p
    return torch.where(drop, null.expand_as(e), e)"""))

GUIDED = """
def guided_prediction(model, x, t, e, null, w):
    both = model(torch.cat([x, x]), torch.cat([t, t]), {conditions})
    {split}
    return {combine}
"""
GOOD_GUIDED = dict(conditions="torch.cat([e, null.expand_as(e)])", split="v_text, v_null = both.chunk(2)",
                   combine="v_null + w * (v_text - v_null)")
guided = variants(GUIDED, GOOD_GUIDED)

RERANK = """
def rerank(clip, images, prompt, k):
    image_vectors = {image_vectors}
    text_vector = F.normalize(clip.encode_text([prompt]), dim=-1)[0]
    scores, order = {top}
    return images[order], scores
"""
GOOD_RERANK = dict(image_vectors="F.normalize(clip.encode_image(images), dim=-1)",
                   top="(image_vectors @ text_vector).topk(k)")
rerank = variants(RERANK, GOOD_RERANK)

EXERCISES = {
    "film_block_tests": {
        "correct": {
            "reference": block(),
            "split_by_slicing": block(split="self.film(F.silu(c))[:, :self.conv1.out_channels], "
                                            "self.film(F.silu(c))[:, self.conv1.out_channels:]"),
            "film_by_view": block(film="self.norm2(h) * (1 + gamma.view(*gamma.shape, 1, 1)) "
                                       "+ beta.view(*beta.shape, 1, 1)"),
        },
        "wrong": {
            "scale_without_one": block(film="self.norm2(h) * gamma[:, :, None, None] + beta[:, :, None, None]"),
            "shift_and_scale_swapped": block(split="tuple(reversed(self.film(F.silu(c)).chunk(2, dim=1)))"),
            "film_before_norm": block(film="self.norm2(h * (1 + gamma[:, :, None, None]) + beta[:, :, None, None])"),
            "no_residual": block(out="self.conv2(F.silu(h))"),
            "always_a_skip_convolution": block(skip="nn.Conv2d(in_channels, out_channels, 1)"),
            "condition_without_activation": block(split="self.film(c).chunk(2, dim=1)"),
        },
    },
    "drop_condition_tests": {
        "correct": {
            "reference": drop(),
            "mask_arithmetic": drop(body="""keep = (torch.rand(len(e), generator=generator, device=e.device) >= p).float()[:, None]
    return keep * e + (1 - keep) * null"""),
        },
        "wrong": {
            "per_element": drop(body="""drop = torch.rand(e.shape, generator=generator, device=e.device) < p
    return torch.where(drop, null.expand_as(e), e)"""),
            "keeps_with_probability_p": drop(body="""drop = torch.rand(e.shape[0], 1, generator=generator, device=e.device) > p
    return torch.where(drop, null.expand_as(e), e)"""),
            "zeros_instead_of_null": drop(body="""drop = torch.rand(e.shape[0], 1, generator=generator, device=e.device) < p
    return torch.where(drop, torch.zeros_like(e), e)"""),
            "in_place": drop(body="""drop = torch.rand(e.shape[0], generator=generator, device=e.device) < p
    e[drop] = null.detach()
    return e"""),
            "null_detached": drop(body="""drop = torch.rand(e.shape[0], 1, generator=generator, device=e.device) < p
    return torch.where(drop, null.detach().expand_as(e), e)"""),
            "generator_ignored": drop(body="""drop = torch.rand(e.shape[0], 1, device=e.device) < p
    return torch.where(drop, null.expand_as(e), e)"""),
        },
    },
    "guided_prediction_tests": {
        "correct": {
            "reference": guided(),
            "weighted_sum": guided(combine="w * v_text + (1 - w) * v_null"),
            "null_by_repeat": guided(conditions="torch.cat([e, null[None].repeat(len(e), 1)])"),
        },
        "wrong": {
            "no_subtraction": guided(combine="v_null + w * v_text"),
            "guidance_from_the_text_side": guided(combine="v_text + w * (v_text - v_null)"),
            "halves_swapped": guided(split="v_null, v_text = both.chunk(2)"),
            "null_first": guided(conditions="torch.cat([null.expand_as(e), e])"),
            "two_calls": """
def guided_prediction(model, x, t, e, null, w):
    v_text = model(x, t, e)
    v_null = model(x, t, null.expand_as(e))
    return v_null + w * (v_text - v_null)
""",
        },
    },
    "rerank_tests": {
        "correct": {
            "reference": rerank(),
            "cosine_similarity": rerank(image_vectors="clip.encode_image(images)",
                                        top="F.cosine_similarity(image_vectors, text_vector[None], dim=1).topk(k)"),
            "sort_then_slice": rerank(top="[v[:k] for v in (image_vectors @ text_vector).sort(descending=True)]"),
        },
        "wrong": {
            "dot_product": rerank(image_vectors="clip.encode_image(images)"),
            "worst_first": rerank(top="(image_vectors @ text_vector).topk(k, largest=False)"),
            "ascending_order": rerank(top="[v[-k:] for v in (image_vectors @ text_vector).sort()]"),
            "k_ignored": rerank(top="(image_vectors @ text_vector).sort(descending=True)"),
        },
    },
}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(CHAPTER, EXERCISES)
