"""Chapter 12: each exercise's tests reject the plausible mistakes and accept other correct code."""

from __future__ import annotations

from exercise_checks import exercise_tests, variants

CHAPTER = "12_text_to_image"

AE_LOSS = """
def kl_to_standard_normal(mean, logvar):
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()


def autoencoder_loss(x, reconstruction, mean, logvar, weights, kl_weight, fake_logits=None, gan_weight=0.0):
    rec = {rec}
    kl = {kl}
    adversarial = {adversarial}
    total = {total}
    return {{"total": total, "reconstruction": rec, "kl": kl, "adversarial": adversarial}}
"""
GOOD_AE_LOSS = dict(
    rec="(weights * (reconstruction - x).abs()).mean()",
    kl="kl_to_standard_normal(mean, logvar)",
    adversarial="-fake_logits.mean() if fake_logits is not None else torch.zeros(())",
    total="rec + kl_weight * kl + gan_weight * adversarial")
ae_loss = variants(AE_LOSS, GOOD_AE_LOSS)

LATENTS = """
@torch.no_grad()
def encode_latents(encoder, images, scale):
    {encode}


@torch.no_grad()
def decode_latents(decoder, z, scale):
    {decode}
"""
GOOD_LATENTS = dict(encode="mean, _ = encoder(images * 2 - 1)\n    return mean * scale",
                    decode="return ((decoder(z / scale) + 1) / 2).clamp(0, 1)")
latents = variants(LATENTS, GOOD_LATENTS)

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
    "autoencoder_loss_tests": {
        "correct": {
            "reference": ae_loss(),
            "l1_by_function": ae_loss(rec="(weights * F.l1_loss(reconstruction, x, reduction='none')).mean()"),
            "kl_spelled_out": ae_loss(kl="0.5 * (mean ** 2 + torch.exp(logvar) - logvar - 1).mean()"),
            "zero_on_the_input_device": ae_loss(
                adversarial="-fake_logits.mean() if fake_logits is not None else x.new_zeros(())"),
        },
        "wrong": {
            "squared_error": ae_loss(rec="(weights * (reconstruction - x) ** 2).mean()"),
            "weights_ignored": ae_loss(rec="(reconstruction - x).abs().mean()"),
            "kl_summed": ae_loss(kl="0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum()"),
            "kl_weight_ignored": ae_loss(total="rec + kl + gan_weight * adversarial"),
            "adversarial_sign": ae_loss(
                adversarial="fake_logits.mean() if fake_logits is not None else torch.zeros(())"),
            "adversarial_as_bce": ae_loss(
                adversarial="F.softplus(-fake_logits).mean() if fake_logits is not None else torch.zeros(())"),
            "gan_weight_ignored": ae_loss(total="rec + kl_weight * kl + adversarial"),
            "adversarial_detached": ae_loss(
                adversarial="-fake_logits.detach().mean() if fake_logits is not None else torch.zeros(())"),
        },
    },
    "latents_tests": {
        "correct": {
            "reference": latents(),
            "mean_by_index": latents(encode="return encoder(2 * images - 1)[0] * scale"),
            "decode_by_mul": latents(decode="return (decoder(z * (1 / scale)) * 0.5 + 0.5).clamp(0, 1)"),
        },
        "wrong": {
            "images_not_to_minus_one_one": latents(encode="mean, _ = encoder(images)\n    return mean * scale"),
            "sampled_latents": latents(encode="mean, logvar = encoder(images * 2 - 1)\n    "
                                              "return (mean + (0.5 * logvar).exp() * torch.randn_like(mean)) * scale"),
            "scale_divides_on_encode": latents(encode="mean, _ = encoder(images * 2 - 1)\n    return mean / scale"),
            "scale_multiplies_on_decode": latents(decode="return ((decoder(z * scale) + 1) / 2).clamp(0, 1)"),
            "no_clamp": latents(decode="return (decoder(z / scale) + 1) / 2"),
            "decoder_output_not_rescaled": latents(decode="return decoder(z / scale).clamp(0, 1)"),
        },
    },
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
