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
# # Глава 3. Генеративно-состязательные сети (GAN)
#
# {{badges}}
#
# **Цели главы.** После этой главы вы сможете:
# - объяснить игру генератора и дискриминатора и записать её функции потерь;
# - понять, почему дискриминатор должен выдавать логиты, а генератор — учиться на «ненасыщающей» потере;
# - написать шаг обучения GAN без классических ошибок (`detach`, не тот оптимизатор);
# - измерить качество сэмплов и увидеть коллапс мод по покрытию классов.
#
# **Что нужно знать заранее:** главы 1–2, бинарная кросс-энтропия, `torch.optim`.
#
# **Время:** 2–3 часа. Быстрый режим (`FAST_MODE = True` в ячейке подготовки или `COURSE_FAST=1`) — около минуты на CPU, полный — несколько минут на GPU.

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
CFG = dict(
    n_train=utils.by_mode(6000, None),   # None = все доступные обучающие изображения
    batch_size=64,
    latent_dim=100,
    lr=utils.by_mode(4e-4, 2e-4),        # быстрый режим: вдвое больше, чтобы обучение успело проявиться
    betas=(0.5, 0.999),                  # как в DCGAN: меньший momentum стабилизирует игру
    epochs=utils.by_mode(8, 40),          # полный режим: около 11 с на эпоху на H100, до 10 минут
    snapshots=utils.by_mode((1, 4, 8), (1, 10, 40)),
    n_eval=utils.by_mode(500, 2000),     # сэмплов для метрик после каждой эпохи
)
CFG

# %% [markdown]
# ## 1. Игра двух сетей
#
# **Генератор** $G$ превращает шум $z \sim \mathcal N(0, I)$ в изображение $G(z)$. **Дискриминатор** $D$ получает
# изображение и выдаёт вероятность того, что оно настоящее. Они играют в игру (Goodfellow и др., 2014):
#
# $$\min_G \max_D \; V(D, G) = \mathbb E_{x\sim p_{\text{data}}}\big[\log D(x)\big] + \mathbb E_{z\sim p(z)}\big[\log\big(1 - D(G(z))\big)\big].$$
#
# При оптимальном дискриминаторе $D^*(x) = \frac{p_{\text{data}}(x)}{p_{\text{data}}(x) + p_G(x)}$ генератор минимизирует
# (с точностью до констант) расхождение Йенсена–Шеннона между $p_{\text{data}}$ и $p_G$; минимум достигается при $p_G = p_{\text{data}}$,
# и тогда $D^* \equiv 1/2$. В отличие от VAE, правдоподобие нигде не вычисляется: вся «оценка качества» — это дискриминатор.
#
# На практике делают по шагу градиентного спуска поочерёдно:
# 1. **шаг D:** увеличить $\log D(x) + \log(1 - D(G(z)))$ — настоящие к 1, подделки к 0 (генератор при этом заморожен);
# 2. **шаг G:** сделать так, чтобы $D(G(z))$ росло.

# %% [markdown]
# ### Логиты вместо вероятностей
#
# Во многих учебных примерах дискриминатор заканчивается `Sigmoid`, а потеря — `nn.BCELoss`. Это работает, но численно
# опасно: когда $D$ уверен, $\sigma(\ell)$ округляется до 0 или 1 во float32, $\log$ даёт $-\infty$, и PyTorch обрезает его до $-100$ —
# градиент пропадает. Поэтому наш дискриминатор выдаёт **логит** $\ell$ (число до сигмоиды), а потеря считается
# `F.binary_cross_entropy_with_logits`, которая использует устойчивую формулу $\log\sigma(\ell) = -\operatorname{softplus}(-\ell)$.

# %%
logits = torch.tensor([-120.0, -20.0, 0.0, 20.0, 120.0])
target = torch.ones_like(logits)
naive = F.binary_cross_entropy(torch.sigmoid(logits), target, reduction="none")
stable = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
print(f"{'логит':>8}{'Sigmoid + BCELoss':>20}{'BCEWithLogits':>16}")
for logit, a, b in zip(logits.tolist(), naive.tolist(), stable.tolist(), strict=True):
    print(f"{logit:>8.0f}{a + 0.0:>20.4f}{b + 0.0:>16.4f}")  # + 0.0 печатает -0.0 (log 1 во float32) как 0.0

# %% [markdown]
# При логите $-120$ правильная потеря равна 120, а связка `Sigmoid + BCELoss` выдаёт обрезанные 100 — и нулевой градиент.
#
# ### Данные
# Генератор заканчивается `Tanh`, поэтому изображения масштабируем в $[-1, 1]$.

# %%
x_train, y_train = utils.load_mnist("train", n=CFG["n_train"], flatten=True, scale="-11")
print(f"обучение: {tuple(x_train.shape)}, значения в [{x_train.min():.0f}, {x_train.max():.0f}]")

# %% [markdown]
# ## 2. Упражнение 1: генератор и дискриминатор
#
# Архитектура — классический полносвязный GAN для MNIST:
#
# - `Generator(latent_dim=100, hidden_dims=(256, 512, 1024), out_dim=784)`: `Linear` слои
#   `latent_dim → hidden_dims[0] → … → hidden_dims[-1] → out_dim`, после каждого скрытого — `LeakyReLU(0.2)`,
#   на выходе `Tanh`. `forward(z)` → `(B, out_dim)` в $[-1, 1]$.
# - `Discriminator(in_dim=784, hidden_dims=(1024, 512, 256), dropout=0.3)`: `Linear` слои
#   `in_dim → hidden_dims[0] → … → hidden_dims[-1] → 1`, после каждого скрытого — `LeakyReLU(0.2)` и `Dropout(dropout)`.
#   `forward(x)` → **логиты** `(B, 1)`, без сигмоиды.
#
# Все аргументы конструкторов должны учитываться.

# %% grade_id="gan_models" solution=true
class Generator(nn.Module):
    def __init__(self, latent_dim=100, hidden_dims=(256, 512, 1024), out_dim=784):
        super().__init__()
        ### BEGIN SOLUTION
        layers, width = [], latent_dim
        for h in hidden_dims:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers += [nn.Linear(width, out_dim), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, z):
        ### BEGIN SOLUTION
        return self.net(z)
        ### END SOLUTION


class Discriminator(nn.Module):
    def __init__(self, in_dim=784, hidden_dims=(1024, 512, 256), dropout=0.3):
        super().__init__()
        ### BEGIN SOLUTION
        layers, width = [], in_dim
        for h in hidden_dims:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.net(x)
        ### END SOLUTION


# %% grade_id="gan_models_tests" points=3
torch.manual_seed(0)
_t_g, _t_d = Generator(), Discriminator()
_t_fake = _t_g(torch.randn(5, 100)).detach()
utils.assert_shape(_t_fake, (5, 784), "Generator()(z)")
assert float(_t_fake.min()) >= -1 and float(_t_fake.max()) <= 1, "выход генератора должен быть в [-1, 1] (Tanh)"
_t_logits = _t_d(_t_fake).detach()
utils.assert_shape(_t_logits, (5, 1), "Discriminator()(x)")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
def _t_widths(module):
    return [m.out_features for m in module.modules() if isinstance(m, nn.Linear)]

# Ширины следуют каждому аргументу.
assert _t_widths(Generator()) == [256, 512, 1024, 784], f"ширины генератора {_t_widths(Generator())}"
assert _t_widths(Generator(latent_dim=8, hidden_dims=(16, 32), out_dim=10)) == [16, 32, 10], "hidden_dims/out_dim генератора"
assert [m.in_features for m in Generator(latent_dim=8).modules() if isinstance(m, nn.Linear)][0] == 8, "latent_dim генератора"
assert _t_widths(Discriminator()) == [1024, 512, 256, 1], f"ширины дискриминатора {_t_widths(Discriminator())}"
assert _t_widths(Discriminator(in_dim=10, hidden_dims=(7,))) == [7, 1], "hidden_dims дискриминатора"
assert [m.in_features for m in Discriminator(in_dim=10).modules() if isinstance(m, nn.Linear)][0] == 10, "in_dim дискриминатора"
# LeakyReLU(0.2) в обеих сетях, Tanh на выходе генератора (есть отрицательные значения, в отличие от Sigmoid).
for _t_net in (Generator(), Discriminator()):
    _t_slopes = [m.negative_slope for m in _t_net.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(_t_slopes) == 3 and all(abs(s - 0.2) < 1e-9 for s in _t_slopes), "нужны LeakyReLU(0.2) после скрытых слоёв"
_t_big = Generator()
with torch.no_grad():
    [m for m in _t_big.modules() if isinstance(m, nn.Linear)][-1].weight.mul_(100)
_t_out = _t_big(torch.randn(64, 100)).detach()
assert float(_t_out.min()) < -0.99 and float(_t_out.max()) > 0.99, "на выходе генератора нужен Tanh"
assert float(_t_out.abs().max()) <= 1.0, "выход генератора должен оставаться в [-1, 1] при любых весах (Tanh)"
# Сырые логиты: большое смещение последнего слоя даёт логиты намного больше 1 (Sigmoid удержал бы их ниже 1).
_t_disc = Discriminator().eval()
with torch.no_grad():
    [m for m in _t_disc.modules() if isinstance(m, nn.Linear)][-1].bias.fill_(5.0)
assert float(_t_disc(torch.zeros(4, 784)).detach().min()) > 2, "дискриминатор должен выдавать логиты, без Sigmoid"
# Dropout с заданной вероятностью: работает в режиме train, выключен в режиме eval.
_t_rates = [m.p for m in Discriminator(dropout=0.5).modules() if isinstance(m, nn.Dropout)]
assert len(_t_rates) == 3 and all(abs(p - 0.5) < 1e-9 for p in _t_rates), "Dropout(dropout) после каждого скрытого слоя"
_t_disc = Discriminator()
_t_in = torch.randn(8, 784)
assert not torch.equal(_t_disc(_t_in), _t_disc(_t_in)), "в режиме train Dropout должен работать"
_t_disc.eval()
assert torch.equal(_t_disc(_t_in), _t_disc(_t_in)), "в режиме eval выход должен быть детерминированным"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Упражнение 2: функции потерь
#
# - `discriminator_loss(real_logits, fake_logits)` — сумма двух средних по батчу:
#   BCE-with-logits настоящих логитов с целью 1 и BCE-with-logits поддельных с целью 0.
# - `generator_loss(fake_logits)` — **ненасыщающая** потеря: BCE-with-logits поддельных логитов с целью 1,
#   то есть $-\log D(G(z))$ вместо $\log(1 - D(G(z)))$ из исходной игры (почему — в разделе 6).

# %% grade_id="gan_losses" solution=true
def discriminator_loss(real_logits, fake_logits):
    ### BEGIN SOLUTION
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake
    ### END SOLUTION


def generator_loss(fake_logits):
    ### BEGIN SOLUTION
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    ### END SOLUTION


# %% grade_id="gan_losses_tests" points=3
def _t_softplus(v):
    return np.logaddexp(0.0, v)

torch.manual_seed(0)
_t_real, _t_fake = torch.randn(16, 1) + 1, torch.randn(16, 1) - 1
_t_r, _t_f = _t_real.double().numpy(), _t_fake.double().numpy()
utils.assert_close(discriminator_loss(_t_real, _t_fake),
                   torch.tensor(_t_softplus(-_t_r).mean() + _t_softplus(_t_f).mean()), "discriminator_loss", atol=1e-5)
utils.assert_close(generator_loss(_t_fake), torch.tensor(_t_softplus(-_t_f).mean()), "generator_loss", atol=1e-5)
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Скаляры; устойчивость при уверенных логитах (логарифм сигмоиды дал бы inf или обрезался бы на 100).
_t_extreme = torch.tensor([[-150.0], [150.0]])
utils.assert_close(generator_loss(_t_extreme), torch.tensor(75.0), "generator_loss при логитах ±150", atol=1e-3)
utils.assert_close(discriminator_loss(_t_extreme, _t_extreme), torch.tensor(150.0), "discriminator_loss при логитах ±150",
                   atol=1e-3)
assert discriminator_loss(_t_real, _t_fake).dim() == 0 and generator_loss(_t_fake).dim() == 0, "потери — скаляры"
# Каждое слагаемое важно и имеет правильную цель: только настоящие, только поддельные.
utils.assert_close(discriminator_loss(torch.full((4, 1), 50.0), _t_fake),
                   torch.tensor(_t_softplus(_t_f).mean()), "слагаемое поддельных (цель 0)", atol=1e-5)
utils.assert_close(discriminator_loss(_t_real, torch.full((4, 1), -50.0)),
                   torch.tensor(_t_softplus(-_t_r).mean()), "слагаемое настоящих (цель 1)", atol=1e-5)
# Ненасыщающийся градиент: d/dl [-log sigmoid(l)] = sigmoid(l) - 1, он велик, когда D отвергает подделку.
_t_l = torch.tensor([[-4.0], [0.0], [3.0]], requires_grad=True)
generator_loss(_t_l).backward()
utils.assert_close(_t_l.grad, (torch.sigmoid(_t_l.detach()) - 1) / 3, "градиент generator_loss", atol=1e-6)
# Средние по батчу, а не суммы.
utils.assert_close(generator_loss(torch.zeros(10, 1)), torch.tensor(float(np.log(2))), "среднее по батчу", atol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Упражнение 3: шаг обучения
#
# Напишите `train_step(generator, discriminator, real, opt_g, opt_d, latent_dim)` для одного батча `real`:
#
# 1. сгенерируйте батч подделок из $z \sim \mathcal N(0, I)$ (размер батча — как у `real`, на устройстве `real`);
# 2. **шаг D:** `discriminator_loss` на логитах настоящих и **отсоединённых** (`detach()`) подделок; `opt_d.zero_grad()`,
#    `backward()`, `opt_d.step()`. Градиент не должен попасть в генератор;
# 3. **шаг G:** `generator_loss` на логитах подделок (уже без `detach`: градиент идёт через D в G); `opt_g.zero_grad()`,
#    `backward()`, шаг делает **только** `opt_g`;
# 4. верните словарь чисел (`float`): `d_loss`, `g_loss`, `d_real`, `d_fake` — последние два это средние вероятности
#    $\sigma(\ell)$ дискриминатора на настоящих и поддельных изображениях во время шага D.

# %% grade_id="train_step_impl" solution=true
def train_step(generator, discriminator, real, opt_g, opt_d, latent_dim):
    ### BEGIN SOLUTION
    z = torch.randn(real.shape[0], latent_dim, device=real.device)
    fake = generator(z)

    real_logits = discriminator(real)
    fake_logits = discriminator(fake.detach())
    d_loss = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    g_loss = generator_loss(discriminator(fake))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return {
        "d_loss": d_loss.item(),
        "g_loss": g_loss.item(),
        "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(),
    }
    ### END SOLUTION


# %% grade_id="train_step_tests" points=4
class _TSpy:
    """Обёртка оптимизатора: считает шаги и запоминает градиенты генератора на каждом шаге."""

    def __init__(self, optimizer, watch):
        self.optimizer, self.watch, self.calls, self.watched_grads = optimizer, watch, 0, []

    def zero_grad(self, *args, **kwargs):
        self.optimizer.zero_grad(*args, **kwargs)

    def step(self, *args, **kwargs):
        self.calls += 1
        self.watched_grads.append(sum(float(p.grad.abs().sum()) for p in self.watch.parameters() if p.grad is not None))
        return self.optimizer.step(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


def _t_models(latent_dim, hidden):
    """Заглушки G и D (не ваши классы): ошибка в упражнении 1 стоит баллов только упражнения 1."""
    g = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, 12), nn.Tanh())
    d = nn.Sequential(nn.Linear(12, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
    return g, d


def _t_setup(seed=0):
    torch.manual_seed(seed)
    g, d = _t_models(8, 16)
    opt_g = _TSpy(torch.optim.SGD(g.parameters(), lr=0.1), watch=g)
    opt_d = _TSpy(torch.optim.SGD(d.parameters(), lr=0.1), watch=g)
    return g, d, opt_g, opt_d


# Потери-заглушки (наименьшие квадраты на логитах, а не ответ упражнения 2) — по той же причине.
_t_train_step = utils.with_stand_ins(
    train_step, discriminator_loss=lambda real, fake: ((real - 1) ** 2).mean() + (fake**2).mean(),
    generator_loss=lambda fake: ((fake - 1) ** 2).mean())
_t_g, _t_dn, _t_og, _t_od = _t_setup()
_t_real = torch.rand(10, 12) * 2 - 1
with utils.checking("train_step на заглушках G и D (нет ли второго backward через уже освобождённый граф?)"):
    _t_out = _t_train_step(_t_g, _t_dn, _t_real, _t_og, _t_od, latent_dim=8)
assert isinstance(_t_out, dict) and set(_t_out) >= {"d_loss", "g_loss", "d_real", "d_fake"}, \
    "train_step должен вернуть словарь с d_loss, g_loss, d_real, d_fake"
assert all(isinstance(_t_out[k], float) for k in ("d_loss", "g_loss", "d_real", "d_fake")), "значения — числа float"
assert _t_od.calls == 1 and _t_og.calls == 1, \
    f"каждый оптимизатор должен сделать ровно один шаг (opt_d: {_t_od.calls}, opt_g: {_t_og.calls})"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Шаг D не оставляет градиентов в генераторе (detach), а шаг G оставляет.
assert _t_od.watched_grads[0] == 0.0, "во время шага D у генератора есть градиенты: забыли detach()?"
assert _t_og.watched_grads[0] > 0.0, "во время шага G градиент должен доходить до генератора"
# d_real — средняя вероятность дискриминатора (до его обновления) на настоящем батче.
_t_g, _t_dn, _t_og, _t_od = _t_setup(seed=1)
with torch.no_grad():
    _t_expected_real = float(torch.sigmoid(_t_dn(_t_real)).mean())
_t_out = _t_train_step(_t_g, _t_dn, _t_real, _t_og, _t_od, latent_dim=8)
assert abs(_t_out["d_real"] - _t_expected_real) < 1e-5, "d_real — средняя вероятность D на настоящих (до шага D)"
assert 0.0 < _t_out["d_fake"] < 1.0, "d_fake — вероятность, должна быть в (0, 1)"
assert _t_out["d_loss"] > 0 and _t_out["g_loss"] > 0, "потери положительны"
# Шаг D меняет только D, шаг G меняет только G.
_t_g, _t_dn, _t_og, _t_od = _t_setup(seed=2)
_t_g0 = [p.detach().clone() for p in _t_g.parameters()]
_t_d_after = {}
_t_od_step = _t_od.step
def _t_record_step(*a, **k):
    _t_res = _t_od_step(*a, **k)
    _t_d_after["d"] = [p.detach().clone() for p in _t_dn.parameters()]
    _t_d_after["g"] = [p.detach().clone() for p in _t_g.parameters()]
    return _t_res
_t_od.step = _t_record_step
_t_train_step(_t_g, _t_dn, _t_real, _t_og, _t_od, latent_dim=8)
assert all(torch.equal(a, b) for a, b in zip(_t_g0, _t_d_after["g"], strict=True)), "шаг D изменил веса генератора"
assert all(torch.equal(a, b.detach()) for a, b in zip(_t_d_after["d"], _t_dn.parameters(), strict=True)), \
    "после шага D веса дискриминатора не должны меняться (шаг G делает только opt_g)"
assert not all(torch.equal(a, b.detach()) for a, b in zip(_t_g0, _t_g.parameters(), strict=True)), "шаг G должен изменить генератор"
# Батч шума совпадает по размеру с настоящим батчем (видно по хуку на входе генератора).
_t_g, _t_dn, _t_og, _t_od = _t_setup(seed=3)
_t_seen = []
_t_hook = _t_g.register_forward_hook(lambda module, inputs, output: _t_seen.append(tuple(inputs[0].shape)))
_t_train_step(_t_g, _t_dn, torch.rand(7, 12), _t_og, _t_od, latent_dim=8)
_t_hook.remove()
assert _t_seen and all(s == (7, 8) for s in _t_seen), f"z должен иметь форму (размер батча, latent_dim) = (7, 8), было {_t_seen}"
# Размер батча и размер латентного вектора следуют аргументам.
_t_g2 = Generator(latent_dim=5, hidden_dims=(8,), out_dim=12)
_t_d2 = Discriminator(in_dim=12, hidden_dims=(8,), dropout=0.0)
_t_res = _t_train_step(_t_g2, _t_d2, torch.rand(3, 12), torch.optim.SGD(_t_g2.parameters(), lr=0.01),
                    torch.optim.SGD(_t_d2.parameters(), lr=0.01), latent_dim=5)
assert np.isfinite(_t_res["g_loss"]), "train_step с latent_dim=5 и батчем 3"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Обучение
#
# Обучаем с гиперпараметрами DCGAN (Adam, lr = $2\cdot10^{-4}$, $\beta_1 = 0.5$). В быстром режиме lr вдвое больше,
# $4\cdot10^{-4}$, а эпох 8 (744 шага на 6000 изображениях): за несколько сотен шагов с маленьким lr генератор
# часто не успевает выйти из шума, и по графикам нельзя понять, учится ли он вообще. Для коротких запусков lr
# увеличивают, для долгих — возвращают к рекомендованному: так устойчивее. После каждой эпохи сохраняем средние
# потери и вероятности дискриминатора, а по `n_eval` сэмплам (500 в быстром режиме, 2000 в полном) считаем две
# метрики из `utils.metrics` на основе небольшого классификатора MNIST (точность 99%):
# - **покрытие классов** — какая доля сэмплов распознаётся как каждая цифра (при коллапсе мод остаются одна-две цифры);
# - **уверенность** — доля сэмплов, которые классификатор относит к какой-то цифре с вероятностью > 0,9
#   (у шума она близка к нулю).

# %%
def evaluate_generator(generator, n):
    """Покрытие и уверенность на ``n`` новых сэмплах (фиксированный поток шума, поток обучения не трогаем)."""
    generator.eval()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())), torch.no_grad():
        torch.manual_seed(123)
        samples = generator(torch.randn(n, CFG["latent_dim"], device=device)).cpu()
    generator.train()
    return utils.metrics.class_coverage(samples, value_range="-11"), samples


utils.seed_everything(42)
G = Generator(latent_dim=CFG["latent_dim"]).to(device)
D = Discriminator().to(device)
opt_g = torch.optim.Adam(G.parameters(), lr=CFG["lr"], betas=CFG["betas"])
opt_d = torch.optim.Adam(D.parameters(), lr=CFG["lr"], betas=CFG["betas"])
loader = utils.make_loader(x_train, batch_size=CFG["batch_size"], seed=0, drop_last=True)

coverage0, _ = evaluate_generator(G, CFG["n_eval"])
history = {k: [] for k in ("d_loss", "g_loss", "d_real", "d_fake", "уверенность", "классов")}
snapshots, coverage = {}, []
for epoch in utils.progress(range(1, CFG["epochs"] + 1), desc="GAN"):
    sums = {k: 0.0 for k in ("d_loss", "g_loss", "d_real", "d_fake")}
    for (real,) in loader:
        stats = train_step(G, D, real.to(device), opt_g, opt_d, CFG["latent_dim"])
        for k in sums:
            sums[k] += stats[k] / len(loader)
    cov, samples = evaluate_generator(G, CFG["n_eval"])
    for k, v in sums.items():
        history[k].append(v)
    history["уверенность"].append(cov["confident_share"])
    history["классов"].append(cov["classes_present"])
    coverage.append(cov["histogram"])
    if epoch in CFG["snapshots"]:
        snapshots[f"эпоха {epoch}"] = samples[:16]

print(f"{'эпоха':>5}{'D loss':>8}{'G loss':>8}{'D(x)':>7}{'D(G(z))':>9}{'уверенных':>11}{'цифр ≥1%':>10}")
print(f"{0:>5}{'':>8}{'':>8}{'':>7}{'':>9}{coverage0['confident_share']:>11.1%}{coverage0['classes_present']:>10}")
for i in range(CFG["epochs"]):
    print(f"{i + 1:>5}{history['d_loss'][i]:>8.3f}{history['g_loss'][i]:>8.3f}{history['d_real'][i]:>7.2f}"
          f"{history['d_fake'][i]:>9.2f}{history['уверенность'][i]:>11.1%}{history['классов'][i]:>10}")

# %% [markdown]
# До обучения генератор выдаёт шум, и классификатор почти ни в чём не уверен; после обучения доля уверенно
# распознанных сэмплов должна заметно вырасти. Посмотрим на сэмплы в разные моменты обучения (один и тот же шум $z$).

# %%
utils.plot_image_rows(snapshots, n=16, title="Сэмплы GAN по эпохам (одинаковый шум z)");

# %% [markdown]
# **Чего ждать.** В быстром режиме за несколько сотен шагов генератор успевает лишь наметить штрихи. На
# промежуточной эпохе все сэмплы нередко рисуют одну и ту же цифру — это коллапс мод (см. «Как читать графики»
# ниже); в коротком обучении он часто временный. Это не поломка, а начало обучения. Учится ли генератор, видно
# по числам в таблице выше: до обучения классификатор не уверен ни в одном сэмпле, а после — в заметной их доле,
# хотя от эпохи к эпохе эта доля скачет: GAN — игра двух сетей, а не спуск по одной функции потерь.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
utils.plot_history({"D": history["d_loss"], "G": history["g_loss"]}, title="Потери", ax=axes[0])
utils.plot_history({"D(x)": history["d_real"], "D(G(z))": history["d_fake"]}, title="Вероятности дискриминатора",
                   ylabel="вероятность", ax=axes[1])
axes[1].axhline(0.5, color="gray", ls="--")
im = axes[2].imshow(np.array(coverage).T, aspect="auto", cmap="viridis", vmin=0, vmax=0.3,
                    extent=(0.5, len(coverage) + 0.5, 9.5, -0.5))
axes[2].set_xlabel("Эпоха")
axes[2].set_ylabel("цифра (по классификатору)")
axes[2].set_title("Покрытие классов")
fig.colorbar(im, ax=axes[2], label="доля сэмплов")
fig.tight_layout()

# %% [markdown]
# **Как читать графики.** Потери GAN не падают монотонно, как в обычном обучении: это игра, и рост потерь D
# может означать как успехи G, так и проблемы. Полезнее следить за $D(x)$ и $D(G(z))$: если $D(G(z)) \to 0$ и не
# растёт, дискриминатор «задавил» генератор. Покрытие классов показывает **коллапс мод**: если какие-то цифры
# исчезают из сэмплов (тёмные строки), генератор нашёл несколько «безопасных» изображений и выдаёт только их.

# %% [markdown]
# ## 6. Насыщающая и ненасыщающая потеря генератора
#
# В исходной игре генератор минимизирует $\log(1 - D(G(z)))$. В начале обучения $D$ легко отличает шум:
# $D(G(z)) \approx 0$, и кривая $\log(1 - D)$ там почти плоская — градиент крошечный, генератор не учится.
# Ненасыщающий вариант $-\log D(G(z))$ имеет ту же неподвижную точку, но большой градиент именно там, где генератор плох.
# Посчитаем градиенты по логиту $\ell$ дискриминатора с помощью autograd для вашей `generator_loss`.

# %%
ell = torch.linspace(-8, 8, 200, requires_grad=True)
saturating = -F.binary_cross_entropy_with_logits(ell, torch.zeros_like(ell), reduction="sum")  # сумма log(1 - D)
(grad_sat,) = torch.autograd.grad(saturating, ell)
(grad_ns,) = torch.autograd.grad(generator_loss(ell.unsqueeze(1)) * len(ell), ell)
d_of_g = torch.sigmoid(ell).detach()
fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(d_of_g, grad_sat.abs(), label="насыщающая: log(1 − D(G(z)))")
ax.plot(d_of_g, grad_ns.abs(), label="ненасыщающая: −log D(G(z))")
ax.axvspan(0, 0.1, color="tab:red", alpha=0.1, label="начало обучения")
ax.set_xlabel("D(G(z))")
ax.set_ylabel("|градиент по логиту|")
ax.set_title("Градиент для генератора")
ax.legend();

# %% [markdown]
# ## 7. Итоги эксперимента

# %%
print("режим:", "быстрый" if FAST else "полный")
utils.summary([
    ("n_train", "обучающих изображений", len(x_train)),
    ("epochs", "эпох", CFG["epochs"]),
    ("confident_share_untrained", "уверенных сэмплов до обучения", coverage0["confident_share"], ".1%"),
    ("confident_share", "уверенных сэмплов после", history["уверенность"][-1], ".1%"),
    ("confident_share_best", "уверенных сэмплов в лучшую эпоху", max(history["уверенность"]), ".1%"),
    ("digits_present", "цифр с долей ≥1% после", history["классов"][-1]),
    ("min_digit_share", "минимальная доля цифры", coverage[-1].min(), ".1%"),
])

# %% [markdown]
# ## 8. Вопросы (проверяет преподаватель)

# %% [markdown]
# **Вопрос 1.** Почему GAN сложно обучать? Опишите, что происходит, когда дискриминатор слишком силён и когда слишком слаб,
# и что такое коллапс мод (используйте свои графики).

# %% [markdown] grade_id="q_gan_hard" points=2 solution=true
# ### BEGIN SOLUTION
# Нужно балансировать две сети: это поиск седловой точки, а не минимума, и потери не показывают прогресс.
# Если D слишком силён, D(G(z)) ≈ 0, и (для насыщающей потери) градиент для G исчезает; если слаб, он не
# даёт генератору полезного сигнала. Коллапс мод: G находит несколько изображений, которые обманывают текущий D,
# и выдаёт только их; на графике покрытия часть цифр пропадает. Помогают ненасыщающая потеря, логиты
# и устойчивые потери, подбор lr и betas, dropout в D, архитектуры вроде DCGAN.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 2.** Зачем в шаге D нужен `detach()` и что изменится без него? Почему шаг G делает только `opt_g`?

# %% [markdown] grade_id="q_detach" points=2 solution=true
# ### BEGIN SOLUTION
# Без detach backward потерь D пройдёт через подделки в генератор и накопит в нём градиенты, направленные
# на то, чтобы подделки легче распознавались (против цели G), и лишние вычисления. Если их не обнулить,
# они смешаются с градиентом шага G. Шаг G делает только opt_g, потому что генератор учится обманывать
# текущий D; обновление D градиентом generator_loss учило бы D ошибаться в пользу G.
# ### END SOLUTION

# %% [markdown]
# ## 9. Что дальше
#
# **Мы узнали:** GAN — игра двух сетей; дискриминатор должен выдавать логиты, генератор — учиться на ненасыщающей
# потере; шаг обучения требует `detach` и раздельных оптимизаторов; покрытие классов делает видимым коллапс мод.
#
# **Дальше:** в главе 4 (DCGAN) полносвязные слои заменим свёрточными и сравним качество при одинаковом времени обучения.
#
# **Домашнее задание (из материалов курса):**
# 1. Сравните сэмплы на разных эпохах при более длинном обучении (полный режим) и опишите, что меняется.
# 2. Замените ненасыщающую потерю насыщающей и сравните уверенность сэмплов после тех же эпох.
# 3. Уберите Dropout из дискриминатора или увеличьте его lr в 4 раза: что происходит с D(x), D(G(z)) и покрытием классов?
