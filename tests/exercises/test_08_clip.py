"""Chapter 08: each exercise's tests reject the plausible mistakes and accept other correct code."""

from __future__ import annotations

from exercise_checks import exercise_tests, variants

CHAPTER = "08_clip"

LOSS = """
def clip_loss(image_emb, text_emb, logit_scale):
    image_emb = {norm_image}
    text_emb = {norm_text}
    logits = {scale} * image_emb @ text_emb.T
    targets = {targets}
    return {combine}
"""
GOOD_LOSS = dict(norm_image="F.normalize(image_emb, dim=-1)", norm_text="F.normalize(text_emb, dim=-1)",
                 scale="logit_scale.exp().clamp(max=100)", targets="torch.arange(len(logits), device=logits.device)",
                 combine="(F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2")
loss = variants(LOSS, GOOD_LOSS)

TEXT = """
class TextEncoder(nn.Module):
    def __init__(self, vocab_size, dim, n_heads=4, n_layers=2, max_len=16, pad_id=0):
        super().__init__()
        self.pad_id = pad_id
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(dim, n_heads, dim_feedforward={ffn}, dropout={dropout}, batch_first=True,
                                           norm_first={norm_first})
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor={nested})
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids):
        padding = ids == self.pad_id
        x = {embed}
        x = self.norm(self.layers(x, {mask}))
        real = (~padding).unsqueeze(-1).float()
        return {pool}
"""
GOOD_TEXT = dict(ffn="4 * dim", dropout="0.0", norm_first="True", nested="False", embed="self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))",
                 mask="src_key_padding_mask=padding", pool="(x * real).sum(1) / real.sum(1)")
text = variants(TEXT, GOOD_TEXT)

ZERO_SHOT = """
@torch.no_grad()
def zero_shot_classify(model, images, class_prompts):
    image_emb = {norm_image}
    classes = []
    for prompts in class_prompts:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        classes.append({class_vector})
    logits = {scale} * image_emb @ torch.stack(classes).T
    return {output}
"""
GOOD_ZERO_SHOT = dict(norm_image="F.normalize(model.encode_image(images), dim=-1)",
                      class_vector="F.normalize(F.normalize(model.encode_text(prompts), dim=-1).mean(0), dim=0)",
                      scale="model.logit_scale.exp().clamp(max=100)", output="logits.softmax(dim=-1)")
zero_shot = variants(ZERO_SHOT, GOOD_ZERO_SHOT)

SEARCH = """
@torch.no_grad()
def search(model, image_index, query, k):
    query_emb = {norm_query}
    scores = {scores}
    top = {top}
    return top.indices, top.values
"""
GOOD_SEARCH = dict(norm_query="F.normalize(model.encode_text([query]), dim=-1)[0]",
                   scores="F.normalize(image_index, dim=-1) @ query_emb", top="scores.topk(k)")
search = variants(SEARCH, GOOD_SEARCH)


EXERCISES = {
    "clip_loss_tests": {
        "correct": {
            "reference": loss(),
            "log-softmax diagonals": loss(
                combine="-(logits.log_softmax(1).diagonal().mean() + logits.log_softmax(0).diagonal().mean()) / 2"),
            "clamp on the log scale": loss(scale="logit_scale.clamp(max=np.log(100)).exp()"),
            "explicit norms": loss(norm_image="image_emb / image_emb.norm(dim=1, keepdim=True)",
                                   norm_text="text_emb / text_emb.norm(dim=1, keepdim=True)"),
        },
        "wrong": {
            "images to texts only": loss(combine="F.cross_entropy(logits, targets)"),
            "texts to images only": loss(combine="F.cross_entropy(logits.T, targets)"),
            "sum of the directions": loss(combine="F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)"),
            "embeddings not normalised": loss(norm_image="image_emb", norm_text="text_emb"),
            "texts not normalised": loss(norm_text="text_emb"),
            "normalised over the batch": loss(norm_image="F.normalize(image_emb, dim=0)",
                                              norm_text="F.normalize(text_emb, dim=0)"),
            # The seed's division by the temperature, with logit_scale read as the temperature's logarithm.
            "divided by the scale": loss(scale="1 / logit_scale.exp().clamp(max=100)"),
            "scale without exp": loss(scale="logit_scale.clamp(max=100)"),
            "unclamped": loss(scale="logit_scale.exp()"),
            "labels all zero": loss(targets="torch.zeros(len(logits), dtype=torch.long)"),
            "labels reversed": loss(targets="torch.arange(len(logits) - 1, -1, -1)"),
        },
    },
    "text_encoder_tests": {
        "correct": {
            "reference": text(),
            "nested-tensor fast path": text(nested="True"),
            "masked_fill and mean": text(pool="x.masked_fill(padding.unsqueeze(-1), 0).sum(1) / (~padding).sum(1, keepdim=True)"),
        },
        "wrong": {
            # The seed's pooling.
            "last position": text(pool="x[:, -1]"),
            "mean over padding too": text(pool="x.mean(1)"),
            "divided by the padded length": text(pool="(x * real).sum(1) / ids.shape[1]"),
            "no attention mask": text(mask="src_key_padding_mask=None"),
            "mask inverted": text(mask="src_key_padding_mask=~padding"),
            "no positions": text(embed="self.tokens(ids)"),
            # Layers configured otherwise than the statement says: the course weights would not fit them.
            "post-norm layers": text(norm_first="False"),
            "default feed-forward width": text(ffn="2048"),
            "dropout left at its default": text(dropout="0.1"),
        },
    },
    "zero_shot_tests": {
        "correct": {
            "reference": zero_shot(),
            "all prompts encoded at once": """
@torch.no_grad()
def zero_shot_classify(model, images, class_prompts):
    groups = [[p] if isinstance(p, str) else list(p) for p in class_prompts]
    flat = [t for g in groups for t in g]
    owner = torch.tensor([i for i, g in enumerate(groups) for _ in g])
    text = F.normalize(model.encode_text(flat), dim=1)
    classes = torch.zeros(len(groups), text.shape[1]).index_add_(0, owner, text)
    classes = classes / classes.norm(dim=1, keepdim=True)
    image = F.normalize(model.encode_image(images), dim=1)
    scale = torch.clamp(model.logit_scale.exp(), max=100.0)
    return torch.softmax(scale * image @ classes.T, dim=1)
""",
        },
        "wrong": {
            "prompts not normalised before the mean": zero_shot(
                class_vector="F.normalize(model.encode_text(prompts).mean(0), dim=0)"),
            "mean not normalised again": zero_shot(class_vector="F.normalize(model.encode_text(prompts), dim=-1).mean(0)"),
            "images not normalised": zero_shot(norm_image="model.encode_image(images)"),
            "softmax over images": zero_shot(output="logits.softmax(dim=0)"),
            "no logit scale": zero_shot(scale="1.0"),
            "unclamped scale": zero_shot(scale="model.logit_scale.exp()"),
            "logits, not probabilities": zero_shot(output="logits"),
            "a single prompt read as characters": zero_shot().replace(
                "prompts = [prompts] if isinstance(prompts, str) else list(prompts)", "prompts = list(prompts)"),
            "with gradients": zero_shot().replace("@torch.no_grad()\n", ""),
        },
    },
    "search_tests": {
        "correct": {
            "reference": search(),
            "cosine_similarity and argsort": """
@torch.no_grad()
def search(model, image_index, query, k):
    cos = F.cosine_similarity(image_index, model.encode_text([query]), dim=1)
    order = cos.argsort(descending=True)[:k]
    return order, cos[order]
""",
        },
        "wrong": {
            "the k least similar": search(top="scores.topk(k, largest=False)"),
            # The largest distances: top-k of distances with the wrong sign.
            "top-k of distances": search(scores="torch.cdist(F.normalize(image_index, dim=-1), query_emb[None])[:, 0]"),
            "index not normalised": search(scores="image_index @ query_emb"),
            "query not normalised": search(norm_query="model.encode_text([query])[0]"),
            "k ignored": search(top="scores.topk(min(10, len(scores)))"),
            "ascending argsort": """
@torch.no_grad()
def search(model, image_index, query, k):
    cos = F.cosine_similarity(image_index, model.encode_text([query]), dim=1)
    order = cos.argsort()[:k]
    return order, cos[order]
""",
        },
    },
}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(CHAPTER, EXERCISES)
