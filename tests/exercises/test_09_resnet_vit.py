"""Chapter 09: each exercise's tests reject the plausible mistakes and accept other correct code."""

from __future__ import annotations

import ast
from pathlib import Path

from exercise_checks import exercise_tests, variants

from tools.course import chapters

CHAPTER = "09_resnet_vit"
assert CHAPTER in {ch.slug for ch in chapters()}, f"{CHAPTER} is not registered in chapters.toml"


def chapter_class(name: str) -> str:
    """Source of a ready-made class of the chapter (the ViT exercise builds on the given EncoderBlock)."""
    text = (Path(__file__).resolve().parents[2] / "solutions" / CHAPTER / f"{CHAPTER}.py").read_text(encoding="utf-8")
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == name)
    return ast.get_source_segment(text, node) + "\n"


GIVEN = chapter_class("EncoderBlock")

RESNET = """
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, residual=True):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride={stride1}, padding=1, bias={bias})
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride={stride2}, padding=1, bias={bias})
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if {needs_shortcut}:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = {branch}
        if self.residual:
            out = {total}
        return {final}


def resnet_cifar(depth, num_classes=10, residual=True, width=16):
    if {bad_depth}:
        raise ValueError("depth must be 6n + 2")
    n = (depth - 2) // 6
    layers = [nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    channels = width
    for stage in range(3):
        out_channels = width * 2**stage
        for i in range(n):
            stride = {stage_stride}
            layers.append(ResidualBlock(channels, out_channels, stride, {block_residual}))
            channels = out_channels
    layers += [{pool}nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)
"""
GOOD_RESNET = dict(stride1="stride", stride2="1", bias="False",
                   needs_shortcut="residual and (stride != 1 or in_channels != out_channels)",
                   branch="self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))",
                   total="out + (x if self.shortcut is None else self.shortcut(x))", final="F.relu(out)",
                   bad_depth="depth < 8 or (depth - 2) % 6 != 0", stage_stride="2 if stage > 0 and i == 0 else 1",
                   block_residual="residual", pool="nn.AdaptiveAvgPool2d(1), ")
resnet = variants(RESNET, GOOD_RESNET)


PATCHES = """
class PatchEmbedding(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, dim):
        super().__init__()
        self.num_patches = {num_patches}
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride={stride})

    def forward(self, x):
        return {tokens}
"""
GOOD_PATCHES = dict(num_patches="(image_size // patch_size) ** 2", stride="patch_size",
                    tokens="self.proj(x).flatten(2).transpose(1, 2)")
patches = variants(PATCHES, GOOD_PATCHES)


VIT = GIVEN + """
class ViT(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, num_classes, dim, depth, heads, mlp_dim):
        super().__init__()
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, dim)
        self.cls_token = nn.Parameter({cls_init})
        self.pos_embed = nn.Parameter(torch.randn(1, self.patch_embed.num_patches + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp_dim) for _ in range({depth})])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = {sequence}
        out = {out}
        return self.head({pooled})
"""
GOOD_VIT = dict(cls_init="torch.zeros(1, 1, dim)", depth="depth",
                sequence="torch.cat([cls, tokens], dim=1) + self.pos_embed",
                out="self.norm(self.blocks(tokens))", pooled="out[:, 0]")
vit = variants(VIT, GOOD_VIT)


EXERCISES = {
    "resnet_tests": {
        "correct": {
            "reference": resnet(),
            "stages as a list, no shortcut module (None)": """
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, residual=True):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        changes = stride != 1 or in_channels != out_channels
        self.shortcut = (nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride,
                                                 bias=False), nn.BatchNorm2d(out_channels))
                         if residual and changes else None)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if not self.residual:
            return F.relu(y)
        skip = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(y + skip)


def resnet_cifar(depth, num_classes=10, residual=True, width=16):
    n, rest = divmod(depth - 2, 6)
    if rest or n < 1:
        raise ValueError(f"bad depth {depth}")
    layers = [nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    plan = [(width, 1)] * n + [(2 * width, 2)] + [(2 * width, 1)] * (n - 1) + [(4 * width, 2)] + [(4 * width, 1)] * (n - 1)
    c = width
    for out_c, s in plan:
        layers.append(ResidualBlock(c, out_c, stride=s, residual=residual))
        c = out_c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(1), nn.Linear(c, num_classes))
""",
        },
        "wrong": {
            "no projection shortcut (the seed's block)": resnet(needs_shortcut="False"),
            "projection on every block": resnet(needs_shortcut="residual"),
            "ReLU of the branch before the sum": resnet(total="F.relu(out) + (x if self.shortcut is None "
                                                              "else self.shortcut(x))", final="out"),
            "no ReLU after the sum": resnet(final="out"),
            "stride at conv2 instead of conv1": resnet(stride1="1", stride2="stride"),
            "convolutions with bias": resnet(bias="True"),
            "no error for a depth not 6n + 2": resnet(bad_depth="depth < 8"),
            "stride 2 also in the first stage": resnet(stage_stride="2 if i == 0 else 1"),
            "residual not passed to the blocks": resnet(block_residual="True"),
            "max pooling instead of the average": resnet(pool="nn.AdaptiveMaxPool2d(1), "),
            "plain block still adds x": resnet(total="out + (x if self.shortcut is None else self.shortcut(x))",
                                               needs_shortcut="stride != 1 or in_channels != out_channels")
            .replace("        if self.residual:\n", "        if True:\n"),
        },
    },
    "patch_embedding_tests": {
        "correct": {
            "reference": patches(),
            "unfold and a linear layer on the same weights": """
class PatchEmbedding(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, dim):
        super().__init__()
        self.patch_size = patch_size
        self.num_patches = (image_size // patch_size) * (image_size // patch_size)
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        cols = F.unfold(x, self.patch_size, stride=self.patch_size)   # (B, C*p*p, N), row-major
        w = self.proj.weight.flatten(1)
        return torch.einsum("bkn,dk->bnd", cols, w) + self.proj.bias
""",
        },
        "wrong": {
            "patches column by column": patches(tokens="self.proj(x).transpose(2, 3).flatten(2).transpose(1, 2)"),
            "(B, dim, N): no transpose": patches(tokens="self.proj(x).flatten(2)"),
            "reshape instead of transpose": patches(
                tokens="self.proj(x).flatten(2).reshape(x.shape[0], -1, self.proj.out_channels)"),
            "num_patches not squared": patches(num_patches="image_size // patch_size"),
            "num_patches a float (true division)": patches(num_patches="(image_size / patch_size) ** 2"),
            "overlapping patches (stride 1)": patches(stride="1",
                                                      num_patches="(image_size - patch_size + 1) ** 2"),
        },
    },
    "vit_tests": {
        "correct": {
            "reference": vit(),
            "repeat instead of expand, norm of all tokens": GIVEN + """
class ViT(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, num_classes, dim, depth, heads, mlp_dim):
        super().__init__()
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, n + 1, dim).normal_(std=0.02))
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads, mlp_dim) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        patches = self.patch_embed(x)
        x = torch.cat((self.cls_token.repeat(len(patches), 1, 1), patches), 1)
        x = x + self.pos_embed
        x = self.blocks(x)
        cls = self.norm(x)[:, 0, :]
        return self.head(cls)
""",
            "blocks in a Python loop, norm of the CLS token only": GIVEN + """
class ViT(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, num_classes, dim, depth, heads, mlp_dim):
        super().__init__()
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, self.patch_embed.num_patches + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp_dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        tokens = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))
""",
        },
        "wrong": {
            "no position embeddings": vit(sequence="torch.cat([cls, tokens], dim=1)"),
            "CLS at the end": vit(sequence="torch.cat([tokens, cls], dim=1) + self.pos_embed"),
            "mean of the tokens instead of CLS": vit(pooled="out.mean(dim=1)"),
            "no final LayerNorm": vit(out="self.blocks(tokens)"),
            "head on the first patch": vit(pooled="out[:, 1]"),
            "random CLS at init": vit(cls_init="torch.randn(1, 1, dim)"),
            "one block fewer": vit(depth="depth - 1"),
        },
    },
}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(CHAPTER, EXERCISES)
