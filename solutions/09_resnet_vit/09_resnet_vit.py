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
# # Глава 9. ResNet и Vision Transformer на CIFAR-10
#
# {{badges}}

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
import time

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)  # средние каналов обучающих картинок CIFAR-10
CIFAR_STD = (0.2470, 0.2435, 0.2616)
VIT_CONFIG = dict(image_size=32, patch_size=4, in_channels=3, num_classes=10, dim=128, depth=6, heads=4, mlp_dim=256)
CFG = dict(
    resnet=dict(optimizer="sgd", epochs=utils.by_mode(4, 40), batch_size=128, lr=0.2, weight_decay=5e-4,
                warmup=0.15, label_smoothing=0.1, clip_grad=None),
    vit=dict(optimizer="adamw", epochs=utils.by_mode(4, 30), batch_size=128, lr=1e-3, weight_decay=0.05,
             warmup=0.1, label_smoothing=0.1, clip_grad=1.0),
)


# %% grade_id="residual_block_impl" solution=true
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, residual=True):
        super().__init__()
        self.residual = residual
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if residual and (stride != 1 or in_channels != out_channels):
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(out)
        ### END SOLUTION


def resnet_cifar(depth, num_classes=10, residual=True, width=16):
    ### BEGIN SOLUTION
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"глубина {depth} не вида 6n + 2 (8, 14, 20, 32, 44, 56, 110, ...)")
    blocks_per_stage = (depth - 2) // 6
    layers = [nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    channels = width
    for stage in range(3):
        out_channels = width * 2**stage
        for i in range(blocks_per_stage):
            stride = 2 if stage > 0 and i == 0 else 1
            layers.append(ResidualBlock(channels, out_channels, stride, residual))
            channels = out_channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)
    ### END SOLUTION


# %% grade_id="patch_embedding_impl" solution=true
class PatchEmbedding(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, dim):
        super().__init__()
        ### BEGIN SOLUTION
        self.num_patches = (image_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.proj(x).flatten(2).transpose(1, 2)
        ### END SOLUTION


# %%
class EncoderBlock(nn.Module):
    """Блок кодировщика Transformer с LayerNorm перед подслоями (pre-norm) и готовым nn.MultiheadAttention.

    Если keep_weights = True, forward сохраняет веса внимания всех голов в self.weights: (B, heads, T, T)."""

    def __init__(self, dim, heads, mlp_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))
        self.keep_weights, self.weights = False, None

    def forward(self, x):
        h = self.norm1(x)
        attended, self.weights = self.attn(h, h, h, need_weights=self.keep_weights, average_attn_weights=False)
        x = x + attended
        return x + self.mlp(self.norm2(x))


# %% grade_id="vit_impl" solution=true
class ViT(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, num_classes, dim, depth, heads, mlp_dim):
        super().__init__()
        ### BEGIN SOLUTION
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, self.patch_embed.num_patches + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp_dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(tokens))[:, 0])
        ### END SOLUTION


# %%
def normalize(images):
    """Картинки [0, 1] → нормированные по каналам: так их видят все модели главы."""
    mean = torch.tensor(CIFAR_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def random_crop_flip(images, padding=4):
    """Аугментация батча: случайный сдвиг до ±padding пикселей (кадр из картинки, дополненной нулями) и
    отражение слева направо с вероятностью 1/2 — у каждой картинки свои."""
    b, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (b, 1, 1), device=images.device)
    dx = torch.randint(0, 2 * padding + 1, (b, 1, 1), device=images.device)
    rows = (dy + torch.arange(h, device=images.device).view(1, h, 1)).expand(b, h, w)
    cols = (dx + torch.arange(w, device=images.device).view(1, 1, w)).expand(b, h, w)
    flip = torch.rand(b, device=images.device) < 0.5
    cols = torch.where(flip.view(b, 1, 1), dx + (w - 1) - torch.arange(w, device=images.device).view(1, 1, w), cols)
    batch = torch.arange(b, device=images.device).view(b, 1, 1)
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)


def make_optimizer(model, recipe, steps):
    """Оптимизатор и расписание «один цикл» (OneCycleLR) по рецепту из CFG на steps шагов.
    У AdamW затухание весов — только у матриц и свёрток, не у смещений, норм и вложений позиций."""
    if recipe["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=recipe["lr"], momentum=0.9, nesterov=True,
                                    weight_decay=recipe["weight_decay"])
    else:
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
        rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": recipe["weight_decay"]},
                                       {"params": rest, "weight_decay": 0.0}], lr=recipe["lr"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe["lr"], total_steps=steps,
                                                    pct_start=recipe["warmup"])
    return optimizer, scheduler


def train_epoch(model, optimizer, scheduler, images, labels, recipe, augment=True, desc=None):
    """Одна эпоха в случайном порядке; возвращает среднюю потерю на обучающих батчах.
    images — (N, 3, 32, 32) в [0, 1] на CPU; батчи переносятся на устройство модели по одному."""
    model.train()
    dev = utils.model_device(model)
    order = torch.randperm(len(images))
    batches = order.split(recipe["batch_size"])
    total, count = 0.0, 0
    for idx in utils.progress(batches, desc=desc, leave=False) if desc else batches:
        x, y = images[idx].to(dev), labels[idx].to(dev)
        if augment:
            x = random_crop_flip(x)
        x = normalize(x).contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(x), y, label_smoothing=recipe["label_smoothing"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe["clip_grad"]:
            nn.utils.clip_grad_norm_(model.parameters(), recipe["clip_grad"])
        optimizer.step()
        scheduler.step()
        total, count = total + loss.item() * len(idx), count + len(idx)
    return total / count


@torch.no_grad()
def predict(model, images, batch_size=500):
    """Логиты модели для картинок [0, 1] (режим eval: BatchNorm со средними статистиками)."""
    model.eval()
    dev = utils.model_device(model)
    out = [model(normalize(images[i:i + batch_size].to(dev)).contiguous(memory_format=torch.channels_last)).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def accuracy(model, images, labels):
    return (predict(model, images).argmax(1) == labels).float().mean().item()
