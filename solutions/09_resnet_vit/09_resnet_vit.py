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
#
# **Цели главы.** После этой главы вы сможете:
# - объяснить, что такое деградация глубоких сетей и почему остаточная связь $F(x) + x$ её убирает;
# - собрать остаточный блок, который меняет число каналов и разрешение (свёртка 1×1 в обходном пути и шаг 2), и
#   ResNet для CIFAR-10 любой глубины вида $6n + 2$ по схеме He и др. (2016);
# - разрезать картинку на патчи и собрать Vision Transformer: патчи как токены, обучаемые позиционные вложения,
#   токен CLS и кодировщик Transformer;
# - сравнить свёрточную сеть и ViT: точность при разном объёме данных, время обучения, карты внимания и
#   позиционные вложения.
#
# **Нужно знать:** свёрточные сети и BatchNorm (главы 1–4), обучение классификатора на PyTorch; внимание — в общих
# чертах (подробно оно разобрано в главе 10, здесь блок кодировщика берём готовым из PyTorch).
#
# **Время:** около 2,5 часа. Быстрый режим (`FAST_MODE = True` в ячейке подготовки или `COURSE_FAST=1`) — около
# минуты на CPU: маленькие сети учатся на подмножестве CIFAR-10 из `data/`, а ResNet-20 и ViT курса загружаются
# готовыми из `data/checkpoints/`. Полный режим на GPU обучает обе модели заново на всех 50 000 картинках. На CPU
# полный режим тоже загружает их готовыми, но опыт раздела 4 повторяет в масштабе записи курса, а миниатюру
# раздела 8 — на объёмах до 8 000 картинок: это
# десятки минут. Без интернета полный режим берёт подмножество из `data/` и печатает, сколько картинок взято.

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
import time

from sklearn.metrics import confusion_matrix

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)  # средние каналов обучающих картинок CIFAR-10
CIFAR_STD = (0.2470, 0.2435, 0.2616)
VIT_CONFIG = dict(image_size=32, patch_size=4, in_channels=3, num_classes=10, dim=128, depth=6, heads=4, mlp_dim=256)
CFG = dict(
    # рецепты обучения моделей курса (полный режим): «один цикл» скорости обучения, сдвиги и отражения
    resnet=dict(optimizer="sgd", epochs=utils.by_mode(4, 60), batch_size=128, lr=0.2, weight_decay=5e-4,
                warmup=0.15, label_smoothing=0.1, clip_grad=None),
    vit=dict(optimizer="adamw", epochs=utils.by_mode(4, 20), batch_size=128, lr=1e-3, weight_decay=0.05,
             warmup=0.1, label_smoothing=0.1, clip_grad=1.0),
    # маленькие опыты этой тетради
    gradient_depths=(20, 56),  # градиенты при инициализации: один батч, дёшево в любом режиме
    degradation_depths=utils.by_mode((8, 44), (20, 56)),  # глубины простых и остаточных сетей при обучении
    degradation_images=utils.by_mode(512, 2500),
    degradation_epochs=utils.by_mode(3, 30),
    # быстрый режим: узкие сети (8 каналов вместо 16) и батч 32 — вчетверо больше шагов за те же секунды
    degradation_width=utils.by_mode(8, 16),
    degradation_recipe=utils.by_mode(dict(batch_size=32, lr=0.05), dict()),  # поправки к рецепту resnet
    curve_sizes=(500, 2000, 8000, 50000),  # кривая обучения моделей курса (записана заранее)
    mini_curve_sizes=utils.by_mode((200, 600, 1600), (500, 2000, 8000)),  # её миниатюра в этой тетради
    mini_curve_epochs=utils.by_mode(3, 30),
    # миниатюра: ViT и ResNet-8 с почти равным числом параметров (около 44 тысяч)
    tiny_vit=dict(image_size=32, patch_size=4, in_channels=3, num_classes=10, dim=48, depth=2, heads=4, mlp_dim=96),
    tiny_resnet_width=12,
)
# Полный режим на GPU обучает ResNet-20 и ViT курса заново; иначе они загружаются из data/checkpoints.
TRAIN_SHIPPED = not FAST and device.type == "cuda"
x_train, y_train = utils.load_cifar10("train")
x_test, y_test = utils.load_cifar10("test")
classes = utils.CIFAR10_CLASSES
print(f"обучающих картинок: {len(x_train)}, проверочных: {len(x_test)}")


def normalize(images):
    """Картинки [0, 1] → нормированные по каналам: так их видят все модели главы."""
    mean = torch.tensor(CIFAR_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


utils.show_images(x_train[:16], nrow=16, labels=[classes[int(c)] for c in y_train[:16]], title="CIFAR-10")

# %% [markdown]
# ## 1. Деградация: глубже — не значит лучше
#
# В 2015 году He и соавторы заметили странное: если к хорошей свёрточной сети просто добавить слоёв, ошибка растёт
# **и на обучающих данных** — значит, это не переобучение. Сеть из 56 слоёв могла бы повторить сеть из 20 слоёв
# (лишние 36 слоёв — тождественные), но градиентный спуск такого решения не находит. Это явление назвали
# **деградацией**.
#
# Идея ResNet — учить не отображение $H(x)$, а поправку к входу: блок вычисляет
#
# $$y = \mathrm{ReLU}\big(F(x) + x\big),$$
#
# где $F$ — две свёртки 3×3 с BatchNorm. Тождественное отображение теперь — это просто $F = 0$ (например, нулевой
# масштаб последнего BatchNorm), а градиент доходит до ранних слоёв по «короткому пути» $+x$ без умножения на
# веса.
#
# Частый учебный пример блока выглядит так:
#
# ```python
# class ResidualBlock(nn.Module):
#     def __init__(self, in_dim, out_dim):
#         ...
#         self.conv = nn.Sequential(nn.Conv2d(in_dim, out_dim, kernel_size=3, padding=1), nn.BatchNorm2d(out_dim),
#                                   nn.ReLU(), nn.Conv2d(out_dim, out_dim, kernel_size=3, padding=1),
#                                   nn.BatchNorm2d(out_dim))
#     def forward(self, x):
#         return self.relu(self.conv(x) + x)
# ```
#
# У него два изъяна. Он принимает `in_dim` и `out_dim`, но при `in_dim != out_dim` сложение `self.conv(x) + x`
# падает: у слагаемых разное число каналов. И в нём нет шага (stride), а без уменьшения разрешения внутри блоков
# сеть не построить. Настоящий ResNet решает оба вопроса в **обходном пути**: если число каналов или разрешение
# меняется, $x$ проходит через свёртку 1×1 с тем же шагом и BatchNorm (projection shortcut, вариант B в статье);
# иначе обходной путь — тождественный. Проверим, что учебный пример действительно ломается:

# %%
class TextbookBlock(nn.Module):
    """Блок из примера выше: обходной путь всегда тождественный."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_dim, out_dim, kernel_size=3, padding=1), nn.BatchNorm2d(out_dim),
                                  nn.ReLU(), nn.Conv2d(out_dim, out_dim, kernel_size=3, padding=1),
                                  nn.BatchNorm2d(out_dim))

    def forward(self, x):
        return F.relu(self.conv(x) + x)


try:
    TextbookBlock(16, 32)(torch.randn(2, 16, 8, 8))
except RuntimeError as error:
    print("TextbookBlock(16, 32) не работает:", str(error).split("\n")[0])

# %% [markdown]
# ## 2. ResNet для CIFAR-10
#
# Схема из раздела 4.2 статьи He и др. для картинок 32×32: свёртка 3×3 на 16 каналов, затем три **стадии** по $n$
# остаточных блоков с 16, 32 и 64 каналами на разрешениях 32×32, 16×16 и 8×8 (первый блок второй и третьей стадии
# уменьшает разрешение шагом 2 и удваивает каналы), глобальное усреднение и линейный слой на 10 классов. Слоёв с
# весами $6n + 2$ (не считая свёрток 1×1 в обходных путях): по два в каждом из $3n$ блоков, первая свёртка и
# выходной слой. ResNet-20 — это $n = 3$,
# ResNet-56 — $n = 9$. «Простая» сеть той же глубины (plain) — те же блоки без обходного пути.
#
# ### Упражнение 1: `ResidualBlock` и `resnet_cifar`
#
# `ResidualBlock(in_channels, out_channels, stride=1, residual=True)` — слои с такими именами (тогда в вашу сеть
# загрузятся веса модели курса):
# - `conv1` — свёртка 3×3 `in → out` с шагом `stride`, `padding=1`, **без смещения** (`bias=False`: его роль играет
#   BatchNorm); `bn1 = nn.BatchNorm2d(out)`; `conv2` — свёртка 3×3 `out → out`, шаг 1, `padding=1`, без смещения;
#   `bn2 = nn.BatchNorm2d(out)`;
# - `shortcut` — при `residual=True` и изменении формы (`stride != 1` или `in != out`)
#   `nn.Sequential(свёртка 1×1 in → out с шагом stride без смещения, nn.BatchNorm2d(out))`, иначе `None`;
# - `forward(x)`: $F(x) = \mathrm{bn2}(\mathrm{conv2}(\mathrm{ReLU}(\mathrm{bn1}(\mathrm{conv1}(x)))))$; при
#   `residual=True` верните $\mathrm{ReLU}(F(x) + s(x))$, где $s$ — `shortcut` или тождественное отображение;
#   при `residual=False` — $\mathrm{ReLU}(F(x))$.
#
# `resnet_cifar(depth, num_classes=10, residual=True, width=16)` возвращает `nn.Sequential` из слоёв **в таком
# порядке**: `nn.Conv2d(3, width, 3, padding=1, bias=False)`, `nn.BatchNorm2d(width)`, `nn.ReLU()`, затем $3n$
# блоков `ResidualBlock` (стадии с `width`, `2·width`, `4·width` каналами; шаг 2 — только у первого блока второй и
# третьей стадий; `residual` передаётся каждому блоку), `nn.AdaptiveAvgPool2d(1)`, `nn.Flatten()`,
# `nn.Linear(4·width, num_classes)`. Для глубины не вида $6n + 2$ с $n \ge 1$ (то есть не 8, 14, 20, ...) бросьте
# `ValueError` с понятным сообщением.

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


# %% grade_id="resnet_tests" points=5
torch.manual_seed(0)
_t_block = ResidualBlock(16, 32, stride=2)
with utils.checking("ResidualBlock(16, 32, stride=2) на входе (2, 16, 8, 8): при смене числа каналов или stride "
                    "обходному пути нужна проекция 1×1"):
    _t_block_out = _t_block(torch.randn(2, 16, 8, 8))
utils.assert_shape(_t_block_out, (2, 32, 4, 4), "ResidualBlock(16, 32, stride=2)")
utils.assert_shape(ResidualBlock(16, 16)(torch.randn(2, 16, 8, 8)), (2, 16, 8, 8), "ResidualBlock(16, 16)")
_t_net = resnet_cifar(20)
assert isinstance(_t_net, nn.Sequential), "resnet_cifar возвращает nn.Sequential"
utils.assert_shape(_t_net(torch.randn(2, 3, 32, 32)), (2, 10), "resnet_cifar(20) на картинках 32×32")
assert sum(isinstance(m, ResidualBlock) for m in _t_net) == 9, "в ResNet-20 девять блоков (n = 3 на стадию)"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
def _t_count(model):
    return sum(p.numel() for p in model.parameters())


# Число параметров CIFAR-архитектуры He et al. с проекциями 1x1 в обходных путях (и простых сетей).
for _t_depth, _t_residual, _t_expected in ((20, True, 272474), (56, True, 855770), (20, False, 269722),
                                           (8, True, 78042)):
    _t_got = _t_count(resnet_cifar(_t_depth, residual=_t_residual))
    assert _t_got == _t_expected, (f"resnet_cifar({_t_depth}, residual={_t_residual}): {_t_got} параметров, "
                                   f"ожидалось {_t_expected}: проверьте каналы, смещения (bias=False) и обходные пути")
assert _t_count(resnet_cifar(14, num_classes=7, width=8)) == 44271, "width и num_classes: resnet_cifar(14, 7, width=8)"
for _t_bad in (7, 9, 21, 0, 2, -4):
    try:
        resnet_cifar(_t_bad)
    except ValueError:
        pass
    else:
        raise AssertionError(f"resnet_cifar({_t_bad}) должна бросать ValueError: глубина не вида 6n + 2")
# Порядок слоёв и шаги: conv, bn, relu, 3n блоков (шаг 2 только у первого блока стадий 2 и 3), pool,
# flatten, linear.
_t_net = resnet_cifar(14, residual=True)
_t_kinds = [type(m).__name__ for m in _t_net]
assert _t_kinds == ["Conv2d", "BatchNorm2d", "ReLU"] + ["ResidualBlock"] * 6 + ["AdaptiveAvgPool2d", "Flatten",
                                                                                 "Linear"], (
    f"порядок слоёв resnet_cifar(14): {_t_kinds}")
assert [m.conv1.stride[0] for m in _t_net[3:9]] == [1, 1, 2, 1, 2, 1], "шаг 2 — только у первых блоков стадий 2 и 3"
assert [m.conv2.out_channels for m in _t_net[3:9]] == [16, 16, 32, 32, 64, 64], "каналы стадий: 16, 32, 64"
assert all(m.residual for m in _t_net[3:9]) and not any(m.residual for m in resnet_cifar(14, residual=False)[3:9]), (
    "residual передаётся каждому блоку")
# Блок: слои, смещения, shortcut только при смене формы.
_t_b = ResidualBlock(8, 16, stride=2)
assert _t_b.conv1.stride == (2, 2) and _t_b.conv2.stride == (1, 1), "шаг stride — у conv1, у conv2 шаг 1"
assert _t_b.conv1.bias is None and _t_b.conv2.bias is None, "свёртки блока без смещения (bias=False)"
assert isinstance(_t_b.shortcut, nn.Sequential) and _t_b.shortcut[0].kernel_size == (1, 1) and (
    _t_b.shortcut[0].stride == (2, 2)) and isinstance(_t_b.shortcut[1], nn.BatchNorm2d), (
    "shortcut при смене формы: свёртка 1×1 с тем же шагом и BatchNorm")
assert ResidualBlock(8, 8).shortcut is None, "при той же форме shortcut = None"
assert ResidualBlock(8, 16, residual=False).shortcut is None, "у простого блока обходного пути нет"
assert ResidualBlock(8, 16, stride=1).shortcut is not None, "при смене числа каналов нужен shortcut и при шаге 1"
# Сумма: с заглушённой ветвью (масштаб и сдвиг bn2 нулевые) блок возвращает ReLU(x) или ReLU(shortcut(x));
# простой блок возвращает нули.
torch.manual_seed(1)
_t_x = torch.randn(2, 8, 6, 6)
for _t_b, _t_what in ((ResidualBlock(8, 8), "тождественный"), (ResidualBlock(8, 16, 2), "с проекцией"),
                      (ResidualBlock(8, 8, residual=False), "простой")):
    _t_b.eval()
    with torch.no_grad():
        _t_b.bn2.weight.zero_()
        _t_b.bn2.bias.zero_()
        if _t_b.shortcut is not None:
            _t_b.shortcut[1].weight.normal_()
    _t_expected = (torch.zeros(2, 8, 6, 6) if not _t_b.residual else
                   F.relu(_t_x if _t_b.shortcut is None else _t_b.shortcut(_t_x)))
    utils.assert_close(_t_b(_t_x), _t_expected, f"блок ({_t_what}) с заглушённой ветвью F", atol=1e-6)
# Порядок в ветви: ReLU после bn1 и после суммы, а не перед ней (заглушённый shortcut оставляет ReLU(F(x))).
_t_b = ResidualBlock(4, 4).eval()
with torch.no_grad():
    for _t_bn in (_t_b.bn1, _t_b.bn2):
        _t_bn.weight.normal_()
        _t_bn.bias.normal_()
_t_x = torch.randn(3, 4, 5, 5)
_t_branch = _t_b.bn2(_t_b.conv2(F.relu(_t_b.bn1(_t_b.conv1(_t_x)))))
utils.assert_close(_t_b(_t_x), F.relu(_t_branch + _t_x), "ReLU(bn2(conv2(ReLU(bn1(conv1 x)))) + x)", atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Градиенты в начале обучения
#
# Учебники часто говорят, что остаточные связи «спасают от исчезающих градиентов». Проверим это на наших сетях до
# обучения: один батч, перекрёстная энтропия, норма градиента весов первой свёртки каждого блока — от входа к
# выходу. Если градиенты исчезают, у ранних блоков норма должна быть маленькой.

# %%
def block_gradient_norms(model, images, labels):
    """Норма градиента весов conv1 каждого блока (от входа к выходу) после одного обратного прохода."""
    model.train()
    model.zero_grad()
    F.cross_entropy(model(normalize(images)), labels).backward()
    return [m.conv1.weight.grad.norm().item() for m in model if isinstance(m, ResidualBlock)]


torch.manual_seed(0)
_batch = torch.randperm(len(x_train))[:64]
gradient_norms = {}
for depth in CFG["gradient_depths"]:
    for residual in (False, True):
        torch.manual_seed(0)
        gradient_norms[depth, residual] = block_gradient_norms(resnet_cifar(depth, residual=residual),
                                                               x_train[_batch], y_train[_batch])
fig, ax = plt.subplots(figsize=(7, 3.6))
for (depth, residual), norms in gradient_norms.items():
    ax.plot(np.linspace(0, 1, len(norms)), norms, "o-" if depth == min(CFG["gradient_depths"]) else "s-",
            label=f"{'ResNet' if residual else 'простая'}-{depth}")
ax.set(yscale="log", xlabel="положение блока (0 — у входа, 1 — у выхода)", ylabel="‖∇ весов conv1‖",
       title="Градиенты при инициализации")
ax.legend()
plt.show()
gradient_deep = max(CFG["gradient_depths"])
gradient_ratio = {r: gradient_norms[gradient_deep, r][0] / gradient_norms[gradient_deep, r][-1] for r in (False, True)}
print(f"глубина {gradient_deep}: отношение нормы градиента первого блока к последнему — простая сеть "
      f"{gradient_ratio[False]:.1f}, ResNet {gradient_ratio[True]:.1f}")
utils.record("grad_ratio_plain_deep", gradient_ratio[False])
utils.record("grad_ratio_resnet_deep", gradient_ratio[True])

# %% [markdown]
# Градиенты простой глубокой сети у входа **не исчезают, а растут**: с BatchNorm сигнал ошибки на обратном пути
# к первым слоям становится больше (число под графиком сравнивает только первый и последний блок, а как норма растёт между
# ними, видно на самом графике). В записи курса (те же четыре сети, один батч из
# {{result checkpoint:cifar10_resnet20.pt experiments.gradient_images}} картинок) норма у первого блока больше, чем
# у последнего: у простой-56 — в {{result checkpoint:cifar10_resnet20.pt experiments.gradient_ratio.plain56 .0f}}
# раз, у простой-20 — в {{result checkpoint:cifar10_resnet20.pt experiments.gradient_ratio.plain20 .1f}}, у ResNet-56
# — в {{result checkpoint:cifar10_resnet20.pt experiments.gradient_ratio.resnet56 .1f}}, у ResNet-20 — в
# {{result checkpoint:cifar10_resnet20.pt experiments.gradient_ratio.resnet20 .1f}}. Так что трудность глубокой
# простой сети не в «исчезновении»: при разбросе градиентов в сотни раз одна скорость обучения, по-видимому, не может
# подойти и первым, и последним слоям сразу (это объяснение, а не замер: проверить его можно, например, подбирая
# скорость обучения по слоям). Обходные пути не делают градиенты совсем ровными, но сжимают их разброс по глубине с
# сотен раз до единиц — того же порядка, что у мелкой простой сети.

# %% [markdown]
# ## 4. Обучение и деградация
#
# Готовый код обучения: аугментация (случайный сдвиг до 4 пикселей и отражение), оптимизатор с расписанием «один
# цикл» (скорость обучения сначала растёт, потом плавно падает до нуля) и эпоха обучения. Нормировку по каналам
# `normalize` мы уже определили в ячейке с данными. Свёрточные сети на CPU часто быстрее в формате памяти
# `channels_last` (каналы — последнее измерение в памяти), поэтому модели и батчи переводятся в него; насколько
# быстрее на вашей машине — измерим в разделе 8.

# %%
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
    У AdamW затухание весов — только у матриц и свёрток, не у смещений, норм и вложений."""
    if recipe["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=recipe["lr"], momentum=0.9, nesterov=True,
                                    weight_decay=recipe["weight_decay"])
    else:
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
        rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": recipe["weight_decay"]},
                                       {"params": rest, "weight_decay": 0.0}], lr=recipe["lr"])
    # разгон — хотя бы два шага: на очень коротком обучении OneCycleLR иначе делит на ноль
    warmup = min(max(recipe["warmup"], 2 / steps), 0.5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe["lr"], total_steps=steps,
                                                    pct_start=warmup)
    return optimizer, scheduler


def train_epoch(model, optimizer, scheduler, images, labels, recipe, augment=True, desc=None):
    """Одна эпоха в случайном порядке; возвращает среднюю потерю на обучающих батчах.
    images — (N, 3, 32, 32) в [0, 1] на CPU; батчи переносятся на устройство модели по одному."""
    model.train()
    dev = utils.model_device(model)
    batches = torch.randperm(len(images)).split(recipe["batch_size"])
    total, count = 0.0, 0
    for idx in utils.progress(batches, desc=desc) if desc else batches:
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


def fit(model, images, labels, recipe, epochs, augment=True, desc=None):
    """Обучение по рецепту: модель в channels_last на устройстве главы; возвращает потери по эпохам и секунды."""
    model = model.to(device).to(memory_format=torch.channels_last)
    steps = epochs * -(-len(images) // recipe["batch_size"])
    optimizer, scheduler = make_optimizer(model, recipe, steps)
    start, losses = time.perf_counter(), []
    for epoch in range(epochs):
        losses.append(train_epoch(model, optimizer, scheduler, images, labels, recipe, augment,
                                  desc=f"{desc}, эпоха {epoch + 1}" if desc else None))
    return losses, time.perf_counter() - start


# %% [markdown]
# Теперь — опыт He и др. в миниатюре: простые и остаточные сети двух глубин, одни и те же картинки и эпохи, без
# аугментации (нас интересует, насколько хорошо сеть **подгоняется под обучающие данные**, а не обобщение).
# Смотрим на потерю на обучающих данных.

# %%
_subset = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(0))[:CFG["degradation_images"]]
_recipe = dict(CFG["resnet"], **CFG["degradation_recipe"])
print(f"обучающих картинок: {len(_subset)}, эпох: {CFG['degradation_epochs']}, без аугментации; "
      f"ширина {CFG['degradation_width']} каналов, батч {_recipe['batch_size']}, пик скорости {_recipe['lr']}")
degradation = {}
for depth in CFG["degradation_depths"]:
    for residual in (False, True):
        torch.manual_seed(0)
        name = f"{'ResNet' if residual else 'простая'}-{depth}"
        degradation[name], _ = fit(resnet_cifar(depth, residual=residual, width=CFG["degradation_width"]),
                                   x_train[_subset], y_train[_subset], _recipe, CFG["degradation_epochs"],
                                   augment=False, desc=name)
        print(f"{name:>13}: потеря на обучении {degradation[name][0]:.3f} → {degradation[name][-1]:.3f}")
shallow, deep = CFG["degradation_depths"]
for kind in ("простая", "ResNet"):
    a, b = degradation[f"{kind}-{shallow}"][-1], degradation[f"{kind}-{deep}"][-1]
    drop = degradation[f"{kind}-{deep}"][0] - b
    print(f"{kind}: глубина {deep} заканчивает {'выше' if b > a else 'ниже'}, чем глубина {shallow} "
          f"({b:.3f} против {a:.3f}); за обучение её потеря упала на {drop:.3f}")
utils.record("degradation_plain_shallow", degradation[f"простая-{shallow}"][-1])
utils.record("degradation_plain_deep", degradation[f"простая-{deep}"][-1])
utils.record("degradation_resnet_shallow", degradation[f"ResNet-{shallow}"][-1])
utils.record("degradation_resnet_deep", degradation[f"ResNet-{deep}"][-1])

# %% [markdown]
# Ниже — тот же опыт с глубинами из статьи, из записи курса: глубины
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation_setup.depths.0}} и
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation_setup.depths.1}},
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation_setup.n_train}} картинок,
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation_setup.epochs}} эпох (обучено заранее авторами курса
# на CPU). Слева — то, что получилось у вас в этой тетради.

# %%
course_resnet_checkpoint = utils.load_checkpoint("cifar10_resnet20.pt")
course_vit_checkpoint = utils.load_checkpoint("cifar10_vit.pt")
experiments = course_resnet_checkpoint["info"]["experiments"] if course_resnet_checkpoint else None

fig, axes = plt.subplots(1, 2 if experiments else 1, figsize=(11 if experiments else 5.5, 3.6), squeeze=False)
for name, losses in degradation.items():
    axes[0, 0].plot(range(1, len(losses) + 1), losses, "--" if "простая" in name else "-", label=name)
axes[0, 0].set(title="Эта тетрадь", xlabel="эпоха", ylabel="потеря на обучении")
axes[0, 0].legend()
if experiments:
    for name, run in experiments["degradation"].items():
        label = name.replace("plain", "простая-").replace("resnet", "ResNet-")
        axes[0, 1].plot(range(1, len(run["train_loss"]) + 1), run["train_loss"], "--" if "plain" in name else "-",
                        label=label)
    axes[0, 1].set(title="Запись курса: {} картинок".format(experiments["degradation_setup"]["n_train"]),
                   xlabel="эпоха", ylabel="потеря на обучении")
    axes[0, 1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# **Что видно.** В записи курса простая сеть из 56 слоёв заканчивает с потерей на обучении
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation.plain56.final_train_loss .3f}} — намного выше, чем простая из 20 слоёв
# ({{result checkpoint:cifar10_resnet20.pt experiments.degradation.plain20.final_train_loss .3f}}). Первые эпохи она почти стоит на уровне случайного
# угадывания ($\ln 10 \approx 2{,}303$; после седьмой эпохи —
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation.plain56.train_loss.6 .3f}}). Это и есть деградация: более глубокая сеть хуже
# подгоняет даже обучающие данные.
#
# Остаточные сети обеих глубин приходят почти к одному и тому же: ResNet-56 —
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation.resnet56.final_train_loss .3f}}, ResNet-20 —
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation.resnet20.final_train_loss .3f}}. Ниже опуститься почти некуда: со сглаживанием меток 0,1
# потеря не бывает меньше {{result checkpoint:cifar10_resnet20.pt experiments.degradation_loss_floor .3f}} (это энтропия сглаженной метки), так что обе сети
# практически выучили все {{result checkpoint:cifar10_resnet20.pt experiments.degradation_setup.n_train}} картинок. Строго говоря, ResNet-56 все последние
# эпохи держится чуть выше ResNet-20 — на сотые доли: разрыв маленький, но устойчивый, и рядом с разрывом простых
# сетей он ничтожен. В более коротком прогоне курса ({{result checkpoint:cifar10_resnet20.pt experiments.degradation_attempt1.epochs}} эпох) глубина мешала
# обеим: ResNet-56 отставала от ResNet-20
# ({{result checkpoint:cifar10_resnet20.pt experiments.degradation_attempt1.final_train_loss.resnet56 .3f}} против
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation_attempt1.final_train_loss.resnet20 .3f}}) почти так же, как простая-56 от простой-20
# ({{result checkpoint:cifar10_resnet20.pt experiments.degradation_attempt1.final_train_loss.plain56 .3f}} против
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation_attempt1.final_train_loss.plain20 .3f}}). Разница в том, что при более долгом обучении
# остаточная сеть догоняет мелкую, а простая — нет: остаточная связь не ускоряет глубокую сеть, но убирает тупик.
#
# В полном режиме ваш опыт слева поставлен в тех же условиях, что запись курса. В быстром он намного короче и устроен иначе (узкие сети,
# малый батч — см. `CFG`), и строки, напечатанные выше, говорят, что получилось именно у вас: какая глубина закончила
# выше и насколько упала потеря глубокой сети. За несколько десятков шагов глубокая ResNet обычно ещё не догоняет
# мелкую — смотрите, учится ли она вообще, и сравните с простой сетью той же глубины. Если и там разница в пределах
# шума, опирайтесь на запись курса справа и на градиенты из раздела 3: там патология глубокой простой сети видна
# без всякого обучения.

# %% [markdown]
# ## 5. ResNet-20 курса на всём CIFAR-10
#
# Модель курса заранее обучена этим же кодом (ваш `resnet_cifar(20)`, рецепт `CFG["resnet"]`: SGD с
# моментом Нестерова, «один цикл» с пиком 0,2, сглаживание меток 0,1, сдвиги и отражения) на всех 50 000 картинках
# на CPU. Загрузим её веса в **вашу** сеть и проверим на проверочных картинках из `data/` (в полном режиме на GPU
# обе модели курса вместо этого обучаются здесь заново, и ниже — уже они).
#
# Чего ждать. У He и др. ResNet-20 даёт 91,25% после 64 тысяч шагов по 128 картинок. Модель курса училась
# {{result checkpoint:cifar10_resnet20.pt recipe.epochs}} эпох ({{result checkpoint:cifar10_resnet20.pt steps ,d}} шагов) и по записи набрала
# {{result checkpoint:cifar10_resnet20.pt evaluation.cifar10_test.test_accuracy .1%}} на всех 10 000 проверочных картинках; тот же рецепт на
# {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.3.epochs}} эпохах дал {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.3.test_accuracy .1%}}. Вдвое больше эпох — плюс
# один пункт: 30 эпох заняли {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.3.train_seconds .0f}} с CPU, 60 — {{result checkpoint:cifar10_resnet20.pt train_seconds .0f}} с, а до 90% этому рецепту не
# хватило и вдвое большего обучения.

# %%
def load_course_model(checkpoint, build):
    """Модель курса в вашем классе (None без файла или если ваши слои названы иначе)."""
    if checkpoint is None:
        return None
    model = build()
    try:
        model.load_state_dict({k: v.float() for k, v in checkpoint["model"].items()})
    except (RuntimeError, KeyError) as error:
        print("Веса курса не подходят к вашей сети (слои названы или устроены иначе, чем в упражнении):",
              str(error).split("\n")[0])
        return None
    return model.to(device).to(memory_format=torch.channels_last).eval()


def course_or_trained(name, checkpoint, build, recipe):
    """Модель курса, а если её нет (или на GPU в полном режиме) — обученная здесь по рецепту; печатает точность
    на проверочных картинках и запись курса. Возвращает модель и её логиты на x_test."""
    model = None if TRAIN_SHIPPED else load_course_model(checkpoint, build)
    if model is None:
        if not TRAIN_SHIPPED:
            print(f"Модели курса нет: обучаем {name} здесь по рецепту текущего режима.")
        model = build()
        _, seconds = fit(model, x_train, y_train, recipe, recipe["epochs"], desc=name)
        print(f"обучено за {seconds / 60:.1f} мин")
    logits = predict(model, x_test)
    print(f"{name}: точность на {len(y_test)} проверочных картинках — "
          f"{(logits.argmax(1) == y_test).float().mean().item():.1%}")
    if checkpoint and not TRAIN_SHIPPED:
        info = checkpoint["info"]
        full, part = info["evaluation"]["cifar10_test"], info["evaluation"]["committed_subset"]
        print(f"по записи курса: {full['test_accuracy']:.2%} на всех {full['test_images']} проверочных картинках "
              f"и {part['test_accuracy']:.2%} на {part['test_images']} из них, что лежат в data/; "
              f"{info['recipe']['epochs']} эпох, {info['train_seconds'] / 3600:.1f} ч на "
              f"{utils.machine_words(info['machine'])}")
    return model, logits


resnet, resnet_logits = course_or_trained("ResNet-20", course_resnet_checkpoint, lambda: resnet_cifar(20),
                                          CFG["resnet"])
resnet_accuracy = (resnet_logits.argmax(1) == y_test).float().mean().item()
utils.record("resnet20_test_accuracy", resnet_accuracy)

# %%
def plot_confusion(logits, labels, title):
    matrix = confusion_matrix(labels.numpy(), logits.argmax(1).numpy(), labels=range(10), normalize="true")
    fig, ax = plt.subplots(figsize=(5.8, 5))
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    for i in range(10):
        for j in range(10):
            if matrix[i, j] >= 0.05:
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > 0.5 else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="ответ сети", ylabel="правильный класс", title=title)
    ax.set_xticklabels(classes, rotation=60)
    ax.set_yticklabels(classes)
    plt.show()
    return matrix


def show_mistakes(logits, n=12):
    wrong = torch.nonzero(logits.argmax(1) != y_test).flatten()[:n]
    utils.show_images(x_test[wrong], nrow=n, title="Ошибки (правильный класс → ответ)",
                      labels=[f"{classes[int(y_test[i])]}→{classes[int(logits[i].argmax())]}" for i in wrong])


resnet_confusion = plot_confusion(resnet_logits, y_test, "ResNet-20: доли ответов по классам")
show_mistakes(resnet_logits)
off = resnet_confusion - np.diag(np.diag(resnet_confusion))
worst = np.unravel_index(off.argmax(), off.shape)
print(f"самая частая ошибка: «{classes[worst[0]]}» принимается за «{classes[worst[1]]}» ({off[worst]:.0%} картинок)")

# %% [markdown]
# ## 6. Vision Transformer
#
# Transformer работает с последовательностью векторов-токенов. Vision Transformer (Dosovitskiy и др., 2021) делает
# из картинки последовательность так:
# 1. картинка режется на квадратные **патчи** $p \times p$ (у CIFAR-10 при $p = 4$ это $8 \times 8 = 64$ патча);
# 2. каждый патч — вектор из $3p^2$ чисел — линейно отображается в вектор размерности `dim`: это **вложение
#    патча**. Линейное отображение непересекающихся патчей — ровно свёртка с ядром $p$ и шагом $p$;
# 3. в начало добавляется обучаемый токен **CLS**, к каждому токену прибавляется обучаемое **позиционное
#    вложение** (без него внимание не знает, где какой патч: перестановка токенов только переставила бы выходы);
# 4. последовательность проходит кодировщик Transformer, и класс предсказывается по выходу токена CLS после
#    финального LayerNorm.
#
# Модель `google/vit-base-patch16-224`, которую часто берут для примера, режет картинку 224×224 на патчи 16×16
# (196 токенов) и имеет 86 миллионов параметров. У нас картинки 32×32, патчи 4×4, а модель — меньше миллиона
# параметров, чтобы её можно было обучить на CPU.
#
# ### Упражнение 2: `PatchEmbedding`
#
# `PatchEmbedding(image_size, patch_size, in_channels, dim)`: `self.num_patches` — число патчей,
# `self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)`; `forward(x)` переводит
# `(B, C, H, W)` в `(B, N, dim)`, патчи — построчно: сначала верхний ряд слева направо, потом следующий.

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


# %% grade_id="patch_embedding_tests" points=3
torch.manual_seed(0)
_t_pe = PatchEmbedding(32, 4, 3, 24)
assert _t_pe.num_patches == 64, f"num_patches для 32×32 и патчей 4×4: 64, получено {_t_pe.num_patches}"
utils.assert_shape(_t_pe(torch.randn(2, 3, 32, 32)), (2, 64, 24), "PatchEmbedding(32, 4, 3, 24)")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Каждый токен — линейное отображение своего патча, патчи идут построчно.
torch.manual_seed(1)
_t_pe = PatchEmbedding(12, 3, 2, 5)
assert _t_pe.num_patches == 16, "num_patches для 12×12 и патчей 3×3: 16"
assert isinstance(_t_pe.num_patches, int), (
    f"num_patches — целое число (int), а не {type(_t_pe.num_patches).__name__}: им задают размер pos_embed в ViT")
assert isinstance(_t_pe.proj, nn.Conv2d) and _t_pe.proj.kernel_size == (3, 3) and _t_pe.proj.stride == (3, 3), (
    "proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)")
_t_x = torch.randn(3, 2, 12, 12)
_t_tokens = _t_pe(_t_x)
utils.assert_shape(_t_tokens, (3, 16, 5), "PatchEmbedding(12, 3, 2, 5)")
_t_w, _t_bias = _t_pe.proj.weight.reshape(5, -1), _t_pe.proj.bias
for _t_row in range(4):
    for _t_col in range(4):
        _t_patch = _t_x[:, :, 3 * _t_row:3 * _t_row + 3, 3 * _t_col:3 * _t_col + 3].reshape(3, -1)
        utils.assert_close(_t_tokens[:, 4 * _t_row + _t_col], _t_patch @ _t_w.T + _t_bias,
                           f"токен {4 * _t_row + _t_col} — патч (строка {_t_row}, столбец {_t_col})", atol=1e-5)
# Другие размеры: один входной канал, нечётная размерность вложения, картинка 8×8 с патчами 2×2.
utils.assert_shape(PatchEmbedding(8, 2, 1, 7)(torch.randn(1, 1, 8, 8)), (1, 16, 7), "PatchEmbedding(8, 2, 1, 7)")
### END HIDDEN TESTS

# %% [markdown]
# Блок кодировщика дан готовым — это `nn.TransformerEncoderLayer` из PyTorch с LayerNorm перед вниманием и перед
# MLP (pre-norm), остаточными связями и без dropout. Как он устроен внутри и как написать внимание самому — тема
# главы 10; здесь блок — чёрный ящик: `(B, T, dim) → (B, T, dim)`.

# %%
class EncoderBlock(nn.TransformerEncoderLayer):
    """Готовый блок кодировщика Transformer из PyTorch: LayerNorm перед подслоями (norm_first=True), внимание
    self_attn (nn.MultiheadAttention), MLP linear1 → GELU → linear2, остаточные связи, без dropout."""

    def __init__(self, dim, heads, mlp_dim):
        super().__init__(dim, heads, dim_feedforward=mlp_dim, dropout=0.0, activation="gelu", batch_first=True,
                         norm_first=True)


# %% [markdown]
# ### Упражнение 3: `ViT`
#
# `ViT(image_size, patch_size, in_channels, num_classes, dim, depth, heads, mlp_dim)` с атрибутами:
# - `patch_embed = PatchEmbedding(image_size, patch_size, in_channels, dim)`;
# - `cls_token` — `nn.Parameter` формы `(1, 1, dim)` (нули); `pos_embed` — `nn.Parameter` формы `(1, N + 1, dim)`
#   (случайные числа с отклонением 0,02), по вложению на CLS и на каждый патч;
# - `blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp_dim) for _ in range(depth)])`;
# - `norm = nn.LayerNorm(dim)`, `head = nn.Linear(dim, num_classes)`.
#
# `forward(x)`: токены патчей; CLS **в начале** последовательности (один и тот же для всех картинок батча);
# прибавить `pos_embed`; `blocks`; `norm`; `head` от выхода **токена CLS** (позиция 0). Верните логиты
# `(B, num_classes)`.

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


# %% grade_id="vit_tests" points=5
class _t_StandInPatches(nn.Module):
    """Заглушка вместо вашего PatchEmbedding (его проверяет упражнение 2): токены нужной формы (B, N, dim)."""

    def __init__(self, image_size, patch_size, in_channels, dim):
        super().__init__()
        self.num_patches = len(range(0, image_size - patch_size + 1, patch_size)) ** 2  # так же, но другим способом
        self.codes = nn.Parameter(torch.randn(self.num_patches, dim))
        self.mix = nn.Linear(in_channels, dim)

    def forward(self, x):
        return self.codes + self.mix(x.mean((2, 3))).unsqueeze(1)


def _t_make_vit(*args, **kwargs):
    """ViT с заглушкой вместо PatchEmbedding: ошибка в упражнении 2 не отнимает баллы этого."""
    return utils.with_stand_ins(lambda: ViT(*args, **kwargs), PatchEmbedding=_t_StandInPatches)()


torch.manual_seed(0)
_t_vit = _t_make_vit(32, 4, 3, 10, dim=32, depth=2, heads=4, mlp_dim=64)
utils.assert_shape(_t_vit(torch.randn(2, 3, 32, 32)), (2, 10), "ViT(32, 4, 3, 10, 32, 2, 4, 64)")
utils.assert_shape(_t_vit.pos_embed, (1, 65, 32), "pos_embed: (1, N + 1, dim)")
utils.assert_shape(_t_vit.cls_token, (1, 1, 32), "cls_token: (1, 1, dim)")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Составные части и размеры.
_t_vit = _t_make_vit(16, 4, 2, 7, dim=24, depth=3, heads=2, mlp_dim=40)
assert isinstance(_t_vit.patch_embed, _t_StandInPatches) and isinstance(_t_vit.norm, nn.LayerNorm) and (
    isinstance(_t_vit.head, nn.Linear) and _t_vit.head.out_features == 7), "patch_embed, norm, head по условию"
assert isinstance(_t_vit.blocks, nn.Sequential) and len(_t_vit.blocks) == 3 and all(
    isinstance(b, EncoderBlock) for b in _t_vit.blocks), "blocks — nn.Sequential из depth блоков EncoderBlock"
assert isinstance(_t_vit.cls_token, nn.Parameter) and isinstance(_t_vit.pos_embed, nn.Parameter), (
    "cls_token и pos_embed — обучаемые nn.Parameter")
assert _t_vit.cls_token.abs().max().item() == 0, "cls_token в начале — нули"
assert 0.01 < _t_vit.pos_embed.std().item() < 0.04, "pos_embed — случайные числа с отклонением 0,02"
# Собственные параметры ViT курса (без проекции патчей, чьи 6 272 веса относятся к упражнению 2).
_t_course = _t_make_vit(32, 4, 3, 10, 128, 6, 4, 256)
assert sum(p.numel() for n, p in _t_course.named_parameters() if not n.startswith("patch_embed")) == 804874, (
    "число параметров ViT курса без patch_embed (dim 128, 6 блоков): 804 874")
# Что подаётся в блоки: сначала CLS, затем патчи, каждый со своим позиционным вложением.
torch.manual_seed(2)
with torch.no_grad():
    _t_vit.cls_token.normal_()
_t_seen = {}
_t_hook = _t_vit.blocks[0].register_forward_pre_hook(lambda m, args: _t_seen.__setitem__("blocks", args[0]))
_t_x = torch.randn(3, 2, 16, 16)
_t_out = _t_vit(_t_x)
_t_hook.remove()
_t_in = _t_seen["blocks"]
utils.assert_shape(_t_in, (3, 17, 24), "вход блоков: CLS и 16 патчей")
utils.assert_close(_t_in[:, 0], (_t_vit.cls_token + _t_vit.pos_embed[:, 0:1]).expand(3, 1, 24)[:, 0],
                   "позиция 0 — cls_token + pos_embed[0], одинаковый у всех картинок", atol=1e-5)
utils.assert_close(_t_in[:, 1:], _t_vit.patch_embed(_t_x) + _t_vit.pos_embed[:, 1:],
                   "позиции 1..N — вложения патчей + pos_embed[1:]", atol=1e-5)
utils.assert_close(_t_out, _t_vit.head(_t_vit.norm(_t_vit.blocks(_t_in))[:, 0]),
                   "логиты = head(norm(выход всех блоков)[:, 0])", atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ## 7. ViT курса
#
# ViT курса (размерность 128, 6 блоков по 4 головы, MLP 256, патчи 4×4) обучен заранее тем же способом на тех же
# 50 000 картинках: AdamW, «один цикл» с пиком $10^{-3}$, сглаживание меток, те же сдвиги и отражения, что у
# ResNet.

# %%
vit, vit_logits = course_or_trained("ViT", course_vit_checkpoint, lambda: ViT(**VIT_CONFIG), CFG["vit"])
vit_accuracy = (vit_logits.argmax(1) == y_test).float().mean().item()
utils.record("vit_test_accuracy", vit_accuracy)
vit_confusion = plot_confusion(vit_logits, y_test, "ViT: доли ответов по классам")

# %% [markdown]
# **Куда смотрит CLS.** Веса внимания токена CLS к 64 патчам в последнем блоке (среднее по головам), наложенные на
# картинку. Внимание — не объяснение решения, но показывает, какие патчи попадают в итоговый вектор.

# %%
@torch.no_grad()
def cls_attention(model, images):
    """Веса внимания CLS → патчи в последнем блоке, среднее по головам: (B, сторона, сторона).
    Вход последнего блока перехватывает хук; веса внимания считает его же self_attn."""
    model.eval()
    last, seen = model.blocks[-1], {}
    hook = last.register_forward_pre_hook(lambda module, args: seen.update(tokens=args[0]))
    model(normalize(images.to(utils.model_device(model))))
    hook.remove()
    h = last.norm1(seen["tokens"])
    _, weights = last.self_attn(h, h, h, need_weights=True, average_attn_weights=False)
    weights = weights.mean(1)[:, 0, 1:].cpu()
    side = int(weights.shape[1] ** 0.5)
    return weights.view(-1, side, side)


_shown = x_test[:8]
_maps = cls_attention(vit, _shown)
fig, axes = plt.subplots(2, 8, figsize=(13, 3.6))
for i in range(8):
    axes[0, i].imshow(_shown[i].permute(1, 2, 0).numpy())
    axes[0, i].set_title(classes[int(vit_logits[i].argmax())], fontsize=9)
    axes[1, i].imshow(_shown[i].permute(1, 2, 0).numpy())
    axes[1, i].imshow(F.interpolate(_maps[i][None, None], size=32, mode="nearest")[0, 0], cmap="inferno",
                      alpha=0.6)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle("Ответ ViT и внимание CLS в последнем блоке")
plt.show()

# %% [markdown]
# **Позиционные вложения.** Модель получила 65 обучаемых векторов и ни слова о том, что патчи лежат на плоскости.
# Посчитаем косинусное сходство вложения каждого патча со всеми остальными: каждая маленькая карта 8×8 — сходство
# одного патча с остальными, на месте этого патча в сетке.

# %%
with torch.no_grad():
    _pos = F.normalize(vit.pos_embed[0, 1:].cpu(), dim=-1)
    _similarity = (_pos @ _pos.T).view(8, 8, 8, 8)
fig, axes = plt.subplots(8, 8, figsize=(6.5, 6.5))
for r in range(8):
    for c in range(8):
        axes[r, c].imshow(_similarity[r, c], cmap="viridis", vmin=-1, vmax=1)
        axes[r, c].axis("off")
fig.suptitle("Косинус позиционного вложения патча (строка, столбец) с остальными")
plt.show()
_grid = torch.stack(torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij"), -1).view(64, 2).float()
_distance = torch.cdist(_grid, _grid)
_neighbours = _similarity.view(64, 64)[_distance == 1].mean().item()
_far = _similarity.view(64, 64)[_distance >= 5].mean().item()
print(f"средний косинус вложений соседних патчей: {_neighbours:.2f}; патчей на расстоянии 5 и больше: {_far:.2f}")
utils.record("pos_embed_cosine_neighbours", _neighbours)
utils.record("pos_embed_cosine_far", _far)

# %% [markdown]
# Сравните два напечатанных числа: если у соседних патчей вложения заметно более похожи, чем у далёких, то двумерную
# структуру картинки ViT выучил из данных — ему её никто не сообщал. У свёрточной сети она встроена в архитектуру (ядро 3×3 видит только соседей) — это и есть
# **индуктивное смещение**, которого у ViT нет.

# %% [markdown]
# ## 8. Свёрточная сеть против ViT: данные и время
#
# У ViT курса втрое больше параметров, чем у ResNet-20
# ({{result checkpoint:cifar10_vit.pt parameters ,d}} против {{result checkpoint:cifar10_resnet20.pt parameters ,d}}),
# и устроены они по-разному. Сравним их при разном объёме обучающих данных. У каждой модели свой рецепт, один и тот
# же для всех объёмов: ResNet-20 — SGD, {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.0.epochs}} эпох; ViT — AdamW,
# {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.vit.0.epochs}} эпох (значит, при меньшем объёме данных — и меньше шагов).
# Проверка — на всех 10 000 проверочных картинках. Записи — из обучения моделей курса. Точка 50 000 у ViT — его
# первый прогон; ViT курса, загруженный выше, — второй, на {{result checkpoint:cifar10_vit.pt recipe.epochs}} эпохах
# ({{result checkpoint:cifar10_vit.pt evaluation.cifar10_test.test_accuracy .1%}} на 10 000 проверочных). Точка 50 000 у ResNet-20 — прогон на
# {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.3.epochs}} эпохах, как и остальные точки кривой; ResNet-20 курса учился дольше (раздел 5).

# %%
def n_params(model):
    return sum(p.numel() for p in model.parameters())


def time_steps(model, recipe, steps=5, batch_size=64):
    """Секунды на шаг обучения батча batch_size (после одного прогревочного шага)."""
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer, scheduler = make_optimizer(model, dict(recipe, batch_size=batch_size), steps + 1)
    images, labels = x_train[:batch_size * (steps + 1)], y_train[:batch_size * (steps + 1)]
    train_epoch(model, optimizer, scheduler, images[:batch_size], labels[:batch_size], dict(recipe, batch_size=batch_size))
    start = time.perf_counter()
    train_epoch(model, optimizer, scheduler, images[batch_size:], labels[batch_size:], dict(recipe, batch_size=batch_size))
    return (time.perf_counter() - start) / steps


def layout_step_seconds(memory_format, steps=3, batch_size=64):
    """Секунды на прямой и обратный проход ResNet-20 по батчу в заданном формате памяти (после прогрева)."""
    torch.manual_seed(0)
    model = resnet_cifar(20).to(device).to(memory_format=memory_format)
    images = normalize(x_train[:batch_size].to(device)).contiguous(memory_format=memory_format)
    labels = y_train[:batch_size].to(device)
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()
        F.cross_entropy(model(images), labels).backward()
    return (time.perf_counter() - start) / steps


step_seconds = {"ResNet-20": time_steps(resnet_cifar(20), CFG["resnet"]), "ViT": time_steps(ViT(**VIT_CONFIG), CFG["vit"])}
print(f"параметров: ResNet-20 — {utils.grouped(n_params(resnet))}; ViT — {utils.grouped(n_params(vit))}")
print("секунд на шаг обучения (батч 64) на этой машине: " + ", ".join(f"{k} {v:.3f}" for k, v in step_seconds.items()))
utils.record("step_seconds_ratio_vit_resnet", step_seconds["ViT"] / step_seconds["ResNet-20"])
layout_speedup = layout_step_seconds(torch.contiguous_format) / layout_step_seconds(torch.channels_last)
print(f"ResNet-20: шаг в channels_last занимает {1 / layout_speedup:.2f} времени шага в обычном формате "
      f"({'быстрее' if layout_speedup > 1 else 'не быстрее'}, на этой машине)")
utils.record("channels_last_speedup_resnet20", layout_speedup)
if experiments:
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, label in (("resnet20", "ResNet-20"), ("vit", "ViT")):
        points = experiments["learning_curve"][name]
        ax.plot([p["n_train"] for p in points], [p["test_accuracy"] for p in points], "o-", label=label)
    ax.set(xscale="log", xlabel="обучающих картинок", ylabel="точность на 10 000 проверочных",
           title="Кривая обучения (запись курса)")
    ax.grid(alpha=0.3)
    ax.legend()
    plt.show()
    _vit_points = {p["n_train"]: p for p in experiments["learning_curve"]["vit"]}
    for a in experiments["learning_curve"]["resnet20"]:
        if (b := _vit_points.get(a["n_train"])) is not None:
            print(f"{a['n_train']:>6} картинок: ResNet-20 {a['test_accuracy']:.1%}, ViT {b['test_accuracy']:.1%}, "
                  f"разница {100 * (a['test_accuracy'] - b['test_accuracy']):+.1f} п. п.")

# %% [markdown]
# Тот же опыт в миниатюре можно повторить здесь, и на этот раз **при равном числе параметров**: ResNet-8 шириной
# 12 каналов и ViT с двумя блоками размерности 48 (параметров у них почти поровну, см. печать ниже) на нескольких
# сотнях и тысячах картинок (в быстром режиме — из подмножества `data/`, поэтому проверка — на его проверочных
# картинках). В быстром режиме эпох всего несколько, и на самых малых наборах обе модели недалеко от случайного
# угадывания (10%): порядок между ними там решает случай, смотрите на наибольший объём — но и там, на
# нескольких сотнях проверочных картинок, разница в несколько пунктов может быть случайной (стандартная ошибка
# доли здесь — около двух пунктов). В полном режиме объёмы —
# до 8 000 картинок и по 30 эпох обеим маленьким моделям (см. `CFG`), но модели те же маленькие: это не запись курса.

# %%
mini_curve = {"ResNet-8": [], "маленький ViT": []}
print(f"параметров: ResNet-8 — {utils.grouped(n_params(resnet_cifar(8, width=CFG['tiny_resnet_width'])))}; "
      f"маленький ViT — {utils.grouped(n_params(ViT(**CFG['tiny_vit'])))}")
_order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(1))
for size in sorted({min(size, len(x_train)) for size in CFG["mini_curve_sizes"]}):
    part = _order[:size]
    for name, build, recipe in (("ResNet-8", lambda: resnet_cifar(8, width=CFG["tiny_resnet_width"]), CFG["resnet"]),
                                ("маленький ViT", lambda: ViT(**CFG["tiny_vit"]), CFG["vit"])):
        torch.manual_seed(0)
        model = build()
        fit(model, x_train[part], y_train[part], recipe, CFG["mini_curve_epochs"])
        mini_curve[name].append(accuracy(model, x_test, y_test))
    print(f"{size:>6} картинок: " + ", ".join(f"{k} {v[-1]:.1%}" for k, v in mini_curve.items()))
utils.record("mini_curve_resnet_largest", mini_curve["ResNet-8"][-1])
utils.record("mini_curve_vit_largest", mini_curve["маленький ViT"][-1])

# %% [markdown]
# **Что видно.** По записи курса ResNet-20 точнее ViT при любом объёме данных, но разрыв (в процентных пунктах)
# меняется не монотонно:
# {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.0.gap .1%}} при {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.0.n_train ,d}} картинках, {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.1.gap .1%}} при {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.1.n_train ,d}}, {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.2.gap .1%}} при {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.2.n_train ,d}} и {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.3.gap .1%}} при {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.3.n_train ,d}}. На самых
# малых наборах обе модели слабы ({{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.0.test_accuracy .1%}} и {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.vit.0.test_accuracy .1%}}), и учиться обеим почти не на чем. Дальше
# свёрточная сеть быстро использует каждую новую тысячу картинок, а ViT отстаёт всё сильнее — до {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.2.n_train ,d}}; от
# {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.2.n_train ,d}} к {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.3.n_train ,d}} ViT прибавляет больше ({{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.vit.2.test_accuracy .1%}} → {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.vit.3.test_accuracy .1%}}), чем ResNet-20
# ({{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.2.test_accuracy .1%}} → {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.3.test_accuracy .1%}}), и разрыв сокращается. Свёртка «знает» заранее, что соседние
# пиксели связаны: на каждом слое ядро 3×3 смотрит только на соседей. ViT применяет одну и ту же проекцию к каждому
# патчу, но с первого слоя любой патч смотрит на любой, а какие патчи соседние, знает только по выученным
# позиционным вложениям (мы видели это в разделе 7). Четыре точки одного прогона на каждый объём — не закон: другой рецепт
# (больше эпох ViT на малых наборах, сильнее аугментация) сдвинет их.
#
# Время: эпоха ViT курса на CPU шла {{result checkpoint:cifar10_vit.pt seconds_per_epoch .0f}} с
# против {{result checkpoint:cifar10_resnet20.pt seconds_per_epoch .0f}} с у ResNet-20 (в среднем: машина была занята и другими
# задачами, времена отдельных эпох заметно скачут). Всё обучение ViT ({{result checkpoint:cifar10_vit.pt recipe.epochs}} эпох) заняло
# {{result checkpoint:cifar10_vit.pt train_seconds .0f}} с и дало {{result checkpoint:cifar10_vit.pt evaluation.cifar10_test.test_accuracy .1%}}; ResNet-20 за
# {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.3.epochs}} эпох — {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.3.train_seconds .0f}} с и {{result checkpoint:cifar10_resnet20.pt experiments.learning_curve.resnet20.3.test_accuracy .1%}}: свёрточная сеть
# и быстрее, и точнее. И сравнение — не при равном числе параметров: у ViT
# их втрое больше. ViT размером с ResNet-20 курс не обучал — это домашнее задание 5.

# %% [markdown]
# ## 9. Дообучение предобученной ResNet-18 (только с интернетом)
#
# На практике сеть редко учат с нуля: берут модель, обученную на ImageNet, и дообучают на своей задаче. Раздел
# выполняется только в полном режиме и при доступе к серверу весов PyTorch: веса ResNet-18 — около 45 МБ.
# Картинки 32×32 увеличиваются до 224×224, как на ImageNet; учится вся сеть, одну эпоху.

# %%
if FAST or not utils.hub_reachable("download.pytorch.org"):
    print("Раздел пропущен: быстрый режим или нет доступа к download.pytorch.org.")
else:
    import torchvision

    pretrained = torchvision.models.resnet18(weights=torchvision.models.ResNet18_Weights.DEFAULT)
    pretrained.fc = nn.Linear(pretrained.fc.in_features, 10)
    pretrained = pretrained.to(device)

    class Resized(nn.Module):
        """Увеличивает нормированные картинки до 224×224 перед сетью."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(F.interpolate(x, size=224, mode="bilinear", align_corners=False))

    finetuned = Resized(pretrained)
    recipe = dict(CFG["resnet"], lr=0.01, warmup=0.1)
    _, seconds = fit(finetuned, x_train, y_train, recipe, 1, desc="ResNet-18")
    print(f"ResNet-18 с весами ImageNet, одна эпоха ({seconds / 60:.0f} мин): точность "
          f"{accuracy(finetuned, x_test, y_test):.1%}")

# %% [markdown]
# ## 10. Итоги

# %%
rows = [
    ("resnet20_accuracy", f"ResNet-20 курса, точность ({len(y_test)} проверочных)", resnet_accuracy, ".1%"),
    ("vit_accuracy", f"ViT курса, точность ({len(y_test)} проверочных)", vit_accuracy, ".1%"),
    ("resnet20_params", "ResNet-20, параметров", n_params(resnet), ","),
    ("vit_params", "ViT, параметров", n_params(vit), ","),
    ("grad_ratio_plain", f"простая-{gradient_deep}: градиент первого блока / последнего", gradient_ratio[False],
     ".1f"),
    ("grad_ratio_resnet", f"ResNet-{gradient_deep}: то же", gradient_ratio[True], ".1f"),
    ("loss_plain_shallow", f"простая-{shallow}: потеря на обучении в конце", degradation[f"простая-{shallow}"][-1],
     ".3f"),
    ("loss_plain_deep", f"простая-{deep}: то же", degradation[f"простая-{deep}"][-1], ".3f"),
    ("loss_resnet_shallow", f"ResNet-{shallow}: то же", degradation[f"ResNet-{shallow}"][-1], ".3f"),
    ("loss_resnet_deep", f"ResNet-{deep}: то же", degradation[f"ResNet-{deep}"][-1], ".3f"),
    ("step_ratio", "шаг обучения ViT / шаг ResNet-20 (здесь)", step_seconds["ViT"] / step_seconds["ResNet-20"], ".1f"),
    ("channels_last", "ResNet-20: channels_last быстрее обычного формата, раз (здесь)", layout_speedup, ".2f"),
]
utils.summary(rows)

# %% [markdown]
# ## 11. Вопросы (проверяет преподаватель)
#
# Отвечайте по результатам этой тетради и записей курса, своими словами, 3–6 предложений.

# %% [markdown]
# **Вопрос 1.** Простая сеть из 56 слоёв заканчивает обучение с **большей потерей на обучающих данных**, чем
# простая из 20 слоёв. Почему это не переобучение? Что меняет остаточная связь — и почему не «спасает от исчезающих
# градиентов» в наших сетях с BatchNorm (посмотрите на график градиентов в разделе 3)?

# %% [markdown] grade_id="q_degradation" points=2 solution=true
# ### BEGIN SOLUTION
# Переобучение — это низкая ошибка на обучении при высокой на проверке; здесь хуже именно потеря на обучении
# (запись курса: {{result checkpoint:cifar10_resnet20.pt experiments.degradation.plain56.final_train_loss .3f}} у
# простой-56 против {{result checkpoint:cifar10_resnet20.pt experiments.degradation.plain20.final_train_loss .3f}} у
# простой-20), хотя глубокая сеть может представить всё, что представляет мелкая (лишние слои могли бы стать
# тождественными). Значит, дело в оптимизации: градиентный спуск не находит хорошего решения. Остаточный блок делает
# тождественное отображение решением «по умолчанию» ($F = 0$) и даёт градиенту короткий путь к ранним слоям:
# ResNet-56 доходит почти до той же потери, что ResNet-20
# ({{result checkpoint:cifar10_resnet20.pt experiments.degradation.resnet56.final_train_loss .3f}} против
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation.resnet20.final_train_loss .3f}}, обе у предела
# {{result checkpoint:cifar10_resnet20.pt experiments.degradation_loss_floor .3f}}, который задаёт сглаживание меток). С BatchNorm градиенты простой сети
# у входа не исчезают, а растут: норма у первого блока больше, чем у последнего, в
# {{result checkpoint:cifar10_resnet20.pt experiments.gradient_ratio.plain56 .0f}} раз у простой-56 и лишь в
# {{result checkpoint:cifar10_resnet20.pt experiments.gradient_ratio.resnet56 .1f}} раза у ResNet-56. Градиенты разного масштаба по глубине — признак плохо обусловленной задачи: одна скорость
# обучения, по-видимому, не подходит всем слоям сразу (это объяснение, а не замер главы); с обходными путями разброс
# масштабов по глубине почти на два порядка меньше.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 2.** Почему ViT нужно больше данных, чем свёрточной сети? Опирайтесь на кривую обучения (раздел 8) и на
# карты сходства позиционных вложений (раздел 7): что свёрточная сеть знает до обучения, а ViT — нет?

# %% [markdown] grade_id="q_vit_data" points=2 solution=true
# ### BEGIN SOLUTION
# У свёртки встроена локальность: на каждом слое ядро 3×3 смотрит только на соседние пиксели, а один и тот же фильтр
# применяется в каждом месте (узор узнаётся где угодно). ViT тоже применяет одну проекцию к каждому патчу, но видит
# 64 патча как набор токенов, и
# любой патч может смотреть на любой с первого слоя; что соседние патчи связаны, он узнаёт только из данных —
# обученные позиционные вложения соседних патчей похожи друг на друга больше, чем далёких, но это выучено, а не дано.
# Меньше встроенных предположений — больше нужно примеров, чтобы их заменить. Кривая курса показывает это не
# идеально: ResNet-20 точнее при всех объёмах, разрыв растёт от {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.0.gap .1%}} при {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.0.n_train ,d}} картинках (там обе модели
# слабы) до {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.2.gap .1%}} при {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.2.n_train ,d}} и сокращается до {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.3.gap .1%}} при {{result checkpoint:cifar10_resnet20.pt experiments.curve_gaps.3.n_train ,d}} — на больших данных ViT сокращает разрыв. На очень
# больших наборах (ImageNet-21k, JFT-300M) ViT, по данным его авторов, обгоняет свёрточные сети.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 3.** В обходном пути блока, который меняет форму, стоит свёртка 1×1 с шагом и BatchNorm. Зачем шаг?
# Почему при неизменной форме проекция не нужна, и что бы изменилось, если бы она стояла в каждом блоке? Назовите
# другой способ согласовать формы без новых параметров (He и др. его тоже пробовали).

# %% [markdown] grade_id="q_projection" points=2 solution=true
# ### BEGIN SOLUTION
# Шаг нужен, чтобы обходной путь уменьшил разрешение так же, как ветвь $F$ (её первая свёртка с шагом 2): иначе
# слагаемые разной высоты и ширины. При той же форме $x$ уже можно сложить, а тождественный путь — это и есть
# смысл блока: градиент проходит без изменений, и тождественное отображение достижимо при $F = 0$. Проекция в
# каждом блоке добавила бы параметры и вычисления и сделала бы каждый обходной путь снова обучаемым преобразованием,
# то есть снова «длинной» цепочкой умножений; в статье это вариант C, он почти не лучше. Без параметров формы
# согласуют так: берут каждый второй пиксель (шаг 2) и дополняют недостающие каналы нулями — вариант A статьи.
# ### END SOLUTION

# %% [markdown]
# ## 12. Что дальше
#
# В главе 10 вы напишете внимание и блок Transformer сами и обучите на текстах BERT и GPT — те же кодировщики, что
# внутри ViT.
#
# **Домашнее задание.**
# 1. Добавьте в `ResidualBlock` вариант A обходного пути (шаг 2 и дополнение каналов нулями) и сравните его с
#    проекцией на ResNet-20: число параметров и точность.
# 2. Замените токен CLS на среднее по выходам патчей (global average pooling) и сравните точность ViT при
#    одинаковом обучении.
# 3. Обучите ViT с патчами 2×2 (256 токенов) и 8×8 (16 токенов): как меняются время шага и точность?
# 4. Инициализируйте последний BatchNorm каждого блока нулём (тогда в начале каждый блок — тождественный) и
#    сравните кривые обучения ResNet-56 с обычной инициализацией.
# 5. Подберите ViT примерно с тем же числом параметров, что у ResNet-20 (например, меньше размерность и блоков), и
#    постройте для него кривую обучения, как в разделе 8, хотя бы на трёх объёмах данных: насколько сдвинулся
#    разрыв?
