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
# # Глава 4. DCGAN: свёрточные GAN
#
# {{badges}}
#
# **Цели главы.** После этой главы вы сможете:
# - построить свёрточные генератор и дискриминатор по правилам DCGAN (Radford и др., 2015);
# - объяснить роль инициализации $\mathcal N(0, 0.02)$, BatchNorm, шаговых свёрток вместо пулинга;
# - честно сравнить MLP GAN и DCGAN при одинаковом времени обучения по метрике и покрытию классов;
# - пересказать идеи StyleGAN и CycleGAN.
#
# **Что нужно знать заранее:** глава 3 (GAN), свёртки и транспонированные свёртки, BatchNorm.
#
# **Время:** 2 часа. Быстрый режим (`FAST_MODE = True` в ячейке подготовки или `COURSE_FAST=1`) — около минуты на CPU, полный — несколько минут на GPU.

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
import time

CFG = dict(
    n_train=utils.by_mode(10000, None),  # None = все доступные обучающие изображения
    batch_size=64,
    latent_dim=100,
    lr=2e-4,
    betas=(0.5, 0.999),
    base_channels=utils.by_mode(32, 64),
    seconds_per_model=utils.by_mode(9, 150),  # одинаковый бюджет времени для MLP GAN и DCGAN
    seconds_fashion=utils.by_mode(7, 120),
    n_eval=utils.by_mode(1000, 1000),
)
CFG

# %% [markdown]
# ## 1. Правила DCGAN
#
# MLP GAN из главы 3 не знает, что изображение — это решётка пикселей: каждый пиксель для него — отдельный вход.
# DCGAN заменяет полносвязные слои свёрточными и закрепляет несколько правил, без которых свёрточные GAN
# обучались плохо:
#
# | правило | зачем |
# |---|---|
# | шаговые свёртки (stride 2) вместо пулинга в D, транспонированные свёртки в G | сеть сама учится, как уменьшать и увеличивать разрешение |
# | BatchNorm в G и D, кроме выхода G и входа D | стабилизирует обучение; на выходе G и входе D она исказила бы распределение пикселей |
# | ReLU в G (Tanh на выходе), LeakyReLU(0.2) в D | у D не «умирают» градиенты для отрицательных входов |
# | без полносвязных скрытых слоёв | меньше параметров, пространственная структура сохраняется |
# | веса $\mathcal N(0, 0.02)$, Adam с lr $2\cdot10^{-4}$ и $\beta_1 = 0.5$ | значения из статьи; с $\beta_1 = 0.9$ обучение колебалось |
#
# Для изображений 28×28 генератор строит карту 7×7 и дважды удваивает её: 7 → 14 → 28.

# %%
def draw_dcgan(base=64):
    """Размеры карт признаков генератора и дискриминатора DCGAN этой главы."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 4.2))
    rows = [
        ("Генератор", [("z\n100", 1, "tab:gray"), (f"{4 * base}×7×7", 7, "tab:green"),
                       (f"{2 * base}×14×14", 14, "tab:green"), ("1×28×28\nTanh", 28, "tab:gray")]),
        ("Дискриминатор", [("1×28×28", 28, "tab:gray"), (f"{base}×14×14", 14, "tab:blue"),
                           (f"{2 * base}×7×7\n+BN", 7, "tab:blue"), ("логит\n1", 1, "tab:red")]),
    ]
    for ax, (title, blocks) in zip(axes, rows, strict=True):
        # высота блока растёт со стороной карты признаков
        utils.draw_blocks([(i * 2.5, 0.0, 1.2, 0.45 + size / 28, label, color)
                           for i, (label, size, color) in enumerate(blocks)], ax=ax, gap=0.05)
        ax.set_xlim(-0.3, 9)
        ax.set_ylim(-0.9, 0.9)
        ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig


draw_dcgan();

# %%
x_train, y_train = utils.load_mnist("train", n=CFG["n_train"], scale="-11")
print(f"обучение: {tuple(x_train.shape)}")

# %% [markdown]
# ## 2. Упражнение 1: генератор и дискриминатор DCGAN
#
# Обозначим $b$ = `base_channels`.
#
# - `DCGenerator(latent_dim=100, base_channels=64)`: `forward(z)` принимает `(B, latent_dim)` и возвращает `(B, 1, 28, 28)`
#   в $[-1, 1]$. Слои: `ConvTranspose2d(latent_dim, 4b, 7, 1, 0)` (из 1×1 в 7×7) → BatchNorm → ReLU →
#   `ConvTranspose2d(4b, 2b, 4, 2, 1)` (14×14) → BatchNorm → ReLU → `ConvTranspose2d(2b, 1, 4, 2, 1)` (28×28) → Tanh.
#   Вектор $z$ превратите в `(B, latent_dim, 1, 1)`.
# - `DCDiscriminator(base_channels=64)`: `forward(x)` принимает `(B, 1, 28, 28)` и возвращает логиты `(B, 1)`.
#   Слои: `Conv2d(1, b, 4, 2, 1)` (14×14) → LeakyReLU(0.2) (**без** BatchNorm на входе) →
#   `Conv2d(b, 2b, 4, 2, 1)` (7×7) → BatchNorm → LeakyReLU(0.2) → `Conv2d(2b, 1, 7, 1, 0)` (1×1) → логит. Без пулинга и сигмоиды.

# %% grade_id="dcgan_models" solution=true
class DCGenerator(nn.Module):
    def __init__(self, latent_dim=100, base_channels=64):
        super().__init__()
        ### BEGIN SOLUTION
        b = base_channels
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 4 * b, 7, 1, 0, bias=False), nn.BatchNorm2d(4 * b), nn.ReLU(True),
            nn.ConvTranspose2d(4 * b, 2 * b, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * b), nn.ReLU(True),
            nn.ConvTranspose2d(2 * b, 1, 4, 2, 1), nn.Tanh(),
        )
        ### END SOLUTION

    def forward(self, z):
        ### BEGIN SOLUTION
        return self.net(z.view(z.shape[0], -1, 1, 1))
        ### END SOLUTION


class DCDiscriminator(nn.Module):
    def __init__(self, base_channels=64):
        super().__init__()
        ### BEGIN SOLUTION
        b = base_channels
        self.net = nn.Sequential(
            nn.Conv2d(1, b, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(b, 2 * b, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * b), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * b, 1, 7, 1, 0),
        )
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.net(x).view(x.shape[0], 1)
        ### END SOLUTION


# %% grade_id="dcgan_models_tests" points=3
torch.manual_seed(0)
_t_g, _t_d = DCGenerator(), DCDiscriminator()
_t_img = _t_g(torch.randn(4, 100)).detach()
utils.assert_shape(_t_img, (4, 1, 28, 28), "DCGenerator()(z)")
assert float(_t_img.abs().max()) <= 1, "выход генератора должен быть в [-1, 1]"
assert float(_t_img.min()) < 0 < float(_t_img.max()), \
    "выход генератора принимает значения обоих знаков: изображения в [-1, 1], а не в [0, 1] (Tanh, не Sigmoid)"
utils.assert_shape(_t_d(_t_img).detach(), (4, 1), "DCDiscriminator()(x)")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
def _t_channels(module, kind):
    return [m.out_channels for m in module.modules() if isinstance(m, kind)]

# Раскладка каналов следует base_channels и latent_dim.
for _t_b in (64, 8):
    assert _t_channels(DCGenerator(base_channels=_t_b), nn.ConvTranspose2d) == [4 * _t_b, 2 * _t_b, 1], \
        f"каналы генератора при base_channels={_t_b}"
    assert _t_channels(DCDiscriminator(base_channels=_t_b), nn.Conv2d) == [_t_b, 2 * _t_b, 1], \
        f"каналы дискриминатора при base_channels={_t_b}"
_t_g16 = DCGenerator(latent_dim=16, base_channels=8)
utils.assert_shape(_t_g16(torch.randn(3, 16)).detach(), (3, 1, 28, 28), "DCGenerator(latent_dim=16)")
# BatchNorm там, где её ставит DCGAN: две в G (не на выходе), одна в D (не на входе).
assert [m.num_features for m in DCGenerator(base_channels=8).modules() if isinstance(m, nn.BatchNorm2d)] == [32, 16], \
    "в генераторе BatchNorm после первых двух транспонированных свёрток"
assert [m.num_features for m in DCDiscriminator(base_channels=8).modules() if isinstance(m, nn.BatchNorm2d)] == [16], \
    "в дискриминаторе одна BatchNorm — после второй свёртки (не на входе)"
# Шаговые свёртки, без пулинга; LeakyReLU(0.2) в D.
_t_dd = DCDiscriminator(base_channels=8)
assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)) for m in _t_dd.modules()), "без пулинга"
assert [m.stride for m in _t_dd.modules() if isinstance(m, nn.Conv2d)][:2] == [(2, 2), (2, 2)], "шаговые свёртки stride 2"
assert all(abs(m.negative_slope - 0.2) < 1e-9 for m in _t_dd.modules() if isinstance(m, nn.LeakyReLU)) and \
    any(isinstance(m, nn.LeakyReLU) for m in _t_dd.modules()), "LeakyReLU(0.2) в дискриминаторе"
# Логиты, а не вероятности: при больших весах последнего слоя часть выходов выходит за [0, 1].
_t_dd.eval()
with torch.no_grad():
    [m for m in _t_dd.modules() if isinstance(m, nn.Conv2d)][-1].weight.mul_(1000)
    _t_logit = _t_dd(torch.randn(16, 1, 28, 28))
assert float(_t_logit.abs().max()) > 2, "дискриминатор должен выдавать логиты, без Sigmoid"
# Tanh на выходе генератора: насыщается, но остаётся в [-1, 1].
_t_gb = DCGenerator(base_channels=8).eval()
with torch.no_grad():
    [m for m in _t_gb.modules() if isinstance(m, nn.ConvTranspose2d)][-1].weight.mul_(1000)
    _t_o = _t_gb(torch.randn(8, 100))
assert float(_t_o.abs().max()) <= 1 and float(_t_o.abs().max()) > 0.99, "на выходе генератора нужен Tanh"
assert float(_t_o.min()) < -0.99 and float(_t_o.max()) > 0.99, \
    "Tanh насыщается к -1 и к 1: выход генератора должен покрывать весь отрезок [-1, 1], а не [0, 1]"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Упражнение 2: инициализация весов
#
# Напишите `weights_init(module)` для использования через `model.apply(weights_init)`: **на месте** (in place)
# - веса `Conv2d` и `ConvTranspose2d` — из $\mathcal N(0, 0.02)$;
# - веса (масштаб $\gamma$) `BatchNorm2d` — из $\mathcal N(1, 0.02)$;
# - смещения (bias) этих слоёв, если они есть, — нули.
# Остальные модули не трогайте.

# %% grade_id="weights_init_impl" solution=true
def weights_init(module):
    ### BEGIN SOLUTION
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    ### END SOLUTION


# %% grade_id="weights_init_tests" points=2
torch.manual_seed(0)
_t_conv = nn.Conv2d(64, 128, 4)
_t_id = id(_t_conv.weight)
weights_init(_t_conv)
assert id(_t_conv.weight) == _t_id, "веса нужно менять на месте, а не заменять новым параметром"
assert abs(float(_t_conv.weight.detach().std()) - 0.02) < 0.001, f"std весов свёртки {float(_t_conv.weight.detach().std()):.4f}, нужно 0.02"
assert abs(float(_t_conv.weight.detach().mean())) < 0.001, "среднее весов свёртки должно быть 0"
assert float(_t_conv.bias.detach().abs().max()) == 0, "смещения свёртки должны быть нулями"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
_t_tconv = nn.ConvTranspose2d(128, 64, 4)
weights_init(_t_tconv)
assert abs(float(_t_tconv.weight.detach().std()) - 0.02) < 0.001, "транспонированные свёртки тоже N(0, 0.02)"
assert float(_t_tconv.bias.detach().abs().max()) == 0, "смещения транспонированной свёртки — нули"
_t_bn = nn.BatchNorm2d(20000)
with torch.no_grad():
    _t_bn.bias.fill_(0.5)
weights_init(_t_bn)
assert abs(float(_t_bn.weight.detach().mean()) - 1) < 0.002 and abs(float(_t_bn.weight.detach().std()) - 0.02) < 0.002, \
    "веса BatchNorm — N(1, 0.02)"
assert float(_t_bn.bias.detach().abs().max()) == 0, "смещения BatchNorm — нули"
# Другие модули не трогаются; работает через .apply на целой модели, включая свёртки без смещения.
_t_lin = nn.Linear(10, 10)
_t_before = _t_lin.weight.detach().clone()
weights_init(_t_lin)
assert torch.equal(_t_before, _t_lin.weight.detach()), "Linear и другие модули трогать не нужно"
_t_model = nn.Sequential(nn.Conv2d(1, 256, 4, bias=False), nn.BatchNorm2d(256), nn.ReLU(), nn.ConvTranspose2d(256, 64, 4))
_t_model.apply(weights_init)
_t_convs = [m for m in _t_model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
assert all(abs(float(m.weight.detach().std()) - 0.02) < 0.002 for m in _t_convs), "model.apply(weights_init) для всей модели"
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Готовый код из главы 3
#
# Потери и шаг обучения — те же, что вы написали в главе 3 (здесь они даны готовыми).

# %%
def discriminator_loss(real_logits, fake_logits):
    """BCE с логитами: настоящие против 1 плюс поддельные против 0 (глава 3)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits):
    """Ненасыщающаяся потеря генератора (глава 3)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def train_step(generator, discriminator, real, opt_g, opt_d, latent_dim):
    """Один шаг D на отсоединённых подделках, затем один шаг G (глава 3)."""
    fake = generator(torch.randn(real.shape[0], latent_dim, device=real.device))
    d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach()))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = generator_loss(discriminator(fake))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}


class MLPGenerator(nn.Module):
    """Генератор из главы 3, для сравнения."""

    def __init__(self, latent_dim=100):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
                                 nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 784), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """Дискриминатор из главы 3, для сравнения."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                                 nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                                 nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(256, 1))

    def forward(self, x):
        return self.net(x)


def train_for(generator, discriminator, images, seconds, desc):
    """Обучает, пока не пройдут ``seconds`` секунд; возвращает (число шагов, затраченные секунды)."""
    generator.to(device).train()
    discriminator.to(device).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=CFG["lr"], betas=CFG["betas"])
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=CFG["lr"], betas=CFG["betas"])
    loader = utils.make_loader(images, batch_size=CFG["batch_size"], seed=0, drop_last=True)
    start, steps = time.perf_counter(), 0
    bar = utils.progress(desc=desc, total=int(seconds), unit="с")
    while time.perf_counter() - start < seconds:
        for (real,) in loader:
            train_step(generator, discriminator, real.to(device), opt_g, opt_d, CFG["latent_dim"])
            steps += 1
            bar.n = min(int(time.perf_counter() - start), int(seconds))
            bar.refresh()
            if time.perf_counter() - start >= seconds:
                break
    bar.close()
    return steps, time.perf_counter() - start


def generate(generator, n, seed=123):
    """``n`` сэмплов из фиксированного потока шума, не трогая поток обучения."""
    generator.eval()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())), torch.no_grad():
        torch.manual_seed(seed)
        out = generator(torch.randn(n, CFG["latent_dim"], device=device)).cpu()
    generator.train()
    return out

# %% [markdown]
# ## 5. MLP GAN против DCGAN при одинаковом времени
#
# Сравнивать модели по числу эпох нечестно: эпоха DCGAN дороже. Дадим обеим моделям **одинаковое время**
# обучения и сравним по 1000 сэмплов: FID-подобную оценку `utils.metrics.fid_score` (расстояние Фреше между
# признаками небольшого классификатора MNIST для сэмплов и для тестовых цифр; **не** сравнима с FID из статей)
# и покрытие классов.

# %%
def params(m):
    return sum(p.numel() for p in m.parameters())


rows, samples = [], {}
for name, make in (("MLP GAN", lambda: (MLPGenerator(), MLPDiscriminator())),
                   ("DCGAN", lambda: (DCGenerator(base_channels=CFG["base_channels"]),
                                      DCDiscriminator(base_channels=CFG["base_channels"])))):
    utils.seed_everything(42)
    G, D = make()
    if name == "DCGAN":
        G.apply(weights_init)
        D.apply(weights_init)
    steps, seconds = train_for(G, D, x_train, CFG["seconds_per_model"], desc=name)
    s = generate(G, CFG["n_eval"])
    cov = utils.metrics.class_coverage(s, value_range="-11")
    rows.append((name, params(G) + params(D), steps, seconds, utils.metrics.fid_score(s, value_range="-11"),
                 cov["confident_share"], cov["min_share"]))
    samples[name] = s[:16]
    if name == "DCGAN":
        dcgan_G = G

print(f"{'модель':<10}{'параметров':>12}{'шагов':>8}{'секунд':>8}{'FID-оценка':>12}{'уверенных':>11}{'мин. доля цифры':>17}")
for name, n_params, steps, seconds, fid, conf, min_share in rows:
    print(f"{name:<10}{utils.grouped(n_params, '>12,')}{steps:>8}{seconds:>8.0f}{fid:>12.1f}{conf:>11.1%}{min_share:>17.1%}")
ratio = rows[0][4] / rows[1][4]
print(f"\nFID-оценка MLP GAN / DCGAN = {ratio:.2f} (больше 1 — DCGAN лучше)")
utils.plot_image_rows(samples, n=16, title="Сэмплы после одинакового времени обучения");

# %% [markdown]
# ## 6. Интерполяция в латентном пространстве
#
# Возьмём два шума $z_0, z_1$ и декодируем точки отрезка между ними. Плавные переходы (а не скачки) означают,
# что генератор не «запомнил» отдельные примеры, а выучил непрерывное многообразие.

# %%
torch.manual_seed(5)
z0, z1 = torch.randn(2, 4, CFG["latent_dim"], device=device)
t = torch.linspace(0, 1, 10, device=device).view(1, -1, 1)
path = (1 - t) * z0[:, None] + t * z1[:, None]
dcgan_G.eval()
with torch.no_grad():
    frames = dcgan_G(path.reshape(-1, CFG["latent_dim"])).cpu().reshape(4, 10, 1, 28, 28)
utils.plot_image_rows({f"пара {i + 1}": frames[i] for i in range(4)}, n=10, title="DCGAN: интерполяция между двумя z");

# %% [markdown]
# ## 7. DCGAN на Fashion-MNIST
#
# Та же архитектура без изменений учится генерировать одежду; качество оцениваем классификатором Fashion-MNIST.

# %%
x_fashion, _ = utils.load_fashion_mnist("train", n=CFG["n_train"], scale="-11")
utils.seed_everything(42)
G_f, D_f = DCGenerator(base_channels=CFG["base_channels"]), DCDiscriminator(base_channels=CFG["base_channels"])
G_f.apply(weights_init)
D_f.apply(weights_init)
steps_f, seconds_f = train_for(G_f, D_f, x_fashion, CFG["seconds_fashion"], desc="DCGAN Fashion")
fashion_samples = generate(G_f, CFG["n_eval"])
cov_f = utils.metrics.class_coverage(fashion_samples, dataset="fashion_mnist", value_range="-11")
fashion_fid = utils.metrics.fid_score(fashion_samples, dataset="fashion_mnist", value_range="-11")
print(f"Fashion-MNIST: {steps_f} шагов за {seconds_f:.0f} с, FID-оценка {fashion_fid:.1f}, "
      f"уверенных {cov_f['confident_share']:.1%}")
utils.show_images(fashion_samples[:32], nrow=16, title="DCGAN на Fashion-MNIST");

# %% [markdown]
# ## 8. Идеи StyleGAN и CycleGAN
#
# **StyleGAN** (Karras и др., 2019) подаёт шум не на вход генератора, а **управляет стилем** каждого слоя:
# отображающая сеть превращает $z$ в промежуточный код $w$, а $w$ через AdaIN (адаптивную нормализацию)
# задаёт масштаб и сдвиг признаков на каждом разрешении. Грубые слои отвечают за позу и форму, тонкие — за текстуру;
# смешивая $w$ разных изображений на разных слоях, можно переносить стиль. Дополнительный шум на каждом слое даёт
# мелкие случайные детали.
#
# **CycleGAN** (Zhu и др., 2017) переводит изображения между доменами **без парных примеров** (лошади ↔ зебры).
# Два генератора $G: A \to B$ и $F: B \to A$, два дискриминатора, и потеря цикличности
# $\lVert F(G(a)) - a\rVert_1 + \lVert G(F(b)) - b\rVert_1$: перевод туда и обратно должен вернуть исходное изображение,
# иначе генератор мог бы выдавать любую правдоподобную зебру, не связанную с входной лошадью.

# %%
def draw_style_and_cycle():
    """Две схемы: внедрение стиля в StyleGAN и цикл CycleGAN."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    ax = axes[0]
    utils.draw_blocks([(0, 1.9, 1.2, 0.6, "z", "tab:gray"), (1.6, 1.9, 1.6, 0.6, "отображение\n8 слоёв MLP", "tab:purple")],
                      ax=ax, alpha=0.3, fontsize=8)
    ax.text(3.7, 1.9, "w", ha="center", va="center")
    ax.annotate("", xy=(3.6, 1.9), xytext=(3.22, 1.9), arrowprops=dict(arrowstyle="->"))
    layers = [(4.3 + i * 1.4, 0.55, 1.1, 0.7, res, "tab:green") for i, res in enumerate(("4×4", "8×8", "…", "1024×1024"))]
    utils.draw_blocks(layers, ax=ax, chain=False, alpha=0.3, fontsize=8)
    for x0, *_ in layers:
        ax.annotate("", xy=(x0 + 0.55, 0.92), xytext=(3.8, 1.75), arrowprops=dict(arrowstyle="->", color="tab:purple"))
    ax.text(7.0, 2.25, "AdaIN(w) на каждом слое", ha="center", color="tab:purple", fontsize=9)
    ax.set_xlim(-0.2, 10)
    ax.set_ylim(0, 2.5)
    ax.set_title("StyleGAN: стиль w управляет каждым разрешением")
    ax = axes[1]
    for x0, text in ((0.5, "домен A\n(лошади)"), (4.5, "домен B\n(зебры)")):
        ax.add_patch(plt.Circle((x0 + 0.6, 1.2), 0.75, color="tab:blue", alpha=0.2))
        ax.text(x0 + 0.6, 1.2, text, ha="center", va="center", fontsize=9)
    ax.annotate("", xy=(4.3, 1.6), xytext=(1.9, 1.6), arrowprops=dict(arrowstyle="->", connectionstyle="arc3,rad=-0.3"))
    ax.annotate("", xy=(1.9, 0.8), xytext=(4.3, 0.8), arrowprops=dict(arrowstyle="->", connectionstyle="arc3,rad=-0.3"))
    ax.text(3.1, 2.25, "G: A → B", ha="center")
    ax.text(3.1, 0.05, "F: B → A", ha="center")
    ax.text(3.1, 1.2, "F(G(a)) ≈ a", ha="center", color="tab:red")
    ax.set_xlim(0, 6.2)
    ax.set_ylim(-0.2, 2.6)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title("CycleGAN: перевод туда и обратно возвращает исходное")
    fig.tight_layout()
    return fig


draw_style_and_cycle();

# %% [markdown]
# ## 9. Итоги эксперимента

# %%
print("режим:", "быстрый" if FAST else "полный")
# строки таблицы раздела 5: (модель, параметров, шагов, секунд, FID-оценка, уверенных, мин. доля цифры)
_, _, mlp_steps, _, mlp_fid, mlp_conf, mlp_min = rows[0]
_, _, dc_steps, _, dc_fid, dc_conf, dc_min = rows[1]
utils.summary([
    ("seconds_per_model", "бюджет времени на модель, с", CFG["seconds_per_model"]),
    ("mlp_steps", "шагов MLP GAN", mlp_steps),
    ("dcgan_steps", "шагов DCGAN", dc_steps),
    ("mlp_fid", "FID-оценка MLP GAN", mlp_fid, ".1f"),
    ("dcgan_fid", "FID-оценка DCGAN", dc_fid, ".1f"),
    ("fid_ratio", "отношение MLP / DCGAN", ratio, ".2f"),
    ("mlp_confident_share", "уверенных сэмплов MLP GAN", mlp_conf, ".1%"),
    ("dcgan_confident_share", "уверенных сэмплов DCGAN", dc_conf, ".1%"),
    ("mlp_min_share", "мин. доля цифры у MLP GAN", mlp_min, ".1%"),
    ("dcgan_min_share", "мин. доля цифры у DCGAN", dc_min, ".1%"),
    ("fashion_steps", "шагов DCGAN на Fashion-MNIST", steps_f),
    ("fashion_fid", "FID-оценка DCGAN на Fashion-MNIST", fashion_fid, ".1f"),
])

# %% [markdown]
# ## 10. Вопросы (проверяет преподаватель)

# %% [markdown]
# **Вопрос 1.** Почему при одинаковом времени DCGAN обычно генерирует лучше, чем MLP GAN, хотя делает меньше шагов?
# Ответьте, опираясь на свои числа (параметры, шаги, оценка).

# %% [markdown] grade_id="q_dcgan_better" points=2 solution=true
# ### BEGIN SOLUTION
# Свёртки используют локальность и повторяемость структуры изображения: одни и те же фильтры применяются
# во всех позициях, поэтому параметров меньше, а индуктивное смещение соответствует данным. Генератору проще
# строить штрихи, дискриминатор сравнивает локальные признаки, а не отдельные пиксели. BatchNorm и init из статьи
# стабилизируют игру, и каждый шаг полезнее, несмотря на то что шагов меньше.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 2.** Зачем в CycleGAN потеря цикличности? Что сгенерирует модель без неё?

# %% [markdown] grade_id="q_cycle" points=2 solution=true
# ### BEGIN SOLUTION
# Без неё генератор A→B обязан лишь выдавать правдоподобные изображения домена B, и может отображать все входы
# в несколько «хороших» зебр, не связанных с входной лошадью (коллапс мод, потеря содержания). Требование
# F(G(a)) ≈ a заставляет перевод сохранять информацию о входе: позу, фон, форму.
# ### END SOLUTION

# %% [markdown]
# ## 11. Что дальше
#
# **Мы узнали:** правила DCGAN (шаговые свёртки, BatchNorm, LeakyReLU, init $\mathcal N(0, 0.02)$, Adam с $\beta_1 = 0.5$),
# честное сравнение моделей при равном времени и по метрике, идеи StyleGAN и CycleGAN.
#
# **Дальше:** в главе 5 — диффузионные модели, которые генерируют, постепенно убирая шум.
#
# **Домашнее задание:**
# 1. Условный DCGAN: подайте метку цифры генератору (one-hot, добавленный к $z$) и дискриминатору (дополнительный канал).
# 2. Уберите `weights_init` или BatchNorm и сравните оценку при том же времени.
# 3. Поменяйте $\beta_1$ на 0,9 и посмотрите на кривые потерь.
