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
# # Глава 2. Вариационные автоэнкодеры (VAE)
#
# {{badges}}
#
# **Цели главы.** После этой главы вы сможете:
# - объяснить, почему обычный автоэнкодер не умеет генерировать, а VAE умеет;
# - вывести ELBO, записать KL-дивергенцию двух нормальных распределений в закрытой форме и применить трюк репараметризации;
# - обучить VAE на MNIST и сравнить результат с эталонным числом из примеров PyTorch;
# - сэмплировать новые цифры, интерполировать между ними и исследовать β-VAE.
#
# **Что нужно знать заранее:** глава 1 (автоэнкодеры), нормальное распределение, логарифм правдоподобия,
# бинарная кросс-энтропия.
#
# **Время:** 2–3 часа. Быстрый режим (`FAST_MODE = True` в ячейке подготовки или `COURSE_FAST=1`) выполняет ноутбук примерно за минуту на CPU;
# полный режим обучает эталонную модель 784-400-20 за 10 эпох (на GPU — около минуты).

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
CFG = dict(
    n_train=utils.by_mode(8000, None),   # None = все доступные обучающие изображения
    n_test=utils.by_mode(2000, None),
    batch_size=128,
    lr=1e-3,
    hidden_dim=400,
    latent_dim=20,
    epochs=utils.by_mode(5, 10),          # эталон PyTorch: 10 эпох
    epochs_2d=utils.by_mode(5, 20),
    epochs_beta=utils.by_mode(3, 10),
    betas=(0.5, 1.0, 4.0),
    reference_nelbo=105.6,                # 784-400-20, 10 эпох, тестовая выборка (примеры PyTorch)
)
CFG

# %% [markdown]
# ## 1. Почему автоэнкодер не генерирует
#
# В главе 1 автоэнкодер разложил цифры по латентному пространству отдельными облаками. Чтобы сгенерировать
# новую цифру, нужно выбрать код $z$ и декодировать его. Но **откуда брать $z$?** Коды обучающих
# изображений лежат в какой-то неизвестной области произвольной формы, между облаками — пустоты, которые
# декодер никогда не видел. Случайная точка почти наверняка попадёт в пустоту, и декодер выдаст кашу.
#
# VAE решает обе проблемы — откуда брать $z$ и что делать с пустотами — тремя приёмами:
# 1. задаёт **априорное распределение** кодов $p(z) = \mathcal N(0, I)$ — понятно, откуда сэмплировать;
# 2. кодирует изображение не точкой, а **распределением** $q_\phi(z\mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$,
#    так что декодер учится на целых окрестностях кодов, и пространство становится сплошным;
# 3. штрафует расхождение $q_\phi(z\mid x)$ с $p(z)$, чтобы коды не разъезжались далеко от $\mathcal N(0, I)$.

# %% [markdown]
# ## 2. ELBO
#
# Модель порождает изображение так: $z \sim p(z)$, затем $x \sim p_\theta(x\mid z)$, где декодер выдаёт
# вероятности пикселей, а $p_\theta(x\mid z) = \prod_j \hat x_j^{x_j}(1-\hat x_j)^{1-x_j}$ (распределение Бернулли).
# Хочется максимизировать правдоподобие $\log p_\theta(x) = \log \int p_\theta(x\mid z)p(z)\,dz$, но интеграл
# не берётся. Вместо него максимизируют нижнюю оценку (**ELBO**, evidence lower bound):
#
# $$\log p_\theta(x) \;\ge\; \underbrace{\mathbb E_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]}_{\text{качество восстановления}}
#   \;-\; \underbrace{\mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)}_{\text{близость к априорному}} = \mathrm{ELBO}.$$
#
# Разница между левой и правой частью равна $\mathrm{KL}(q_\phi(z\mid x)\,\|\,p_\theta(z\mid x)) \ge 0$.
# Функция потерь — **отрицательный ELBO**: бинарная кросс-энтропия, *просуммированная* по 784 пикселям,
# плюс KL. Она измеряется в натах на изображение, и её можно сравнивать с опубликованными числами.
#
# Для двух диагональных нормальных распределений KL считается в закрытой форме (по каждой координате $k$ латентного вектора):
#
# $$\mathrm{KL}\big(\mathcal N(\mu, \sigma^2)\,\|\,\mathcal N(0, 1)\big) = \tfrac12\big(\mu^2 + \sigma^2 - 1 - \log\sigma^2\big),
# \qquad \mathrm{KL}_{\text{всего}} = \sum_{k=1}^{d} \tfrac12\big(\mu_k^2 + e^{\ell_k} - 1 - \ell_k\big),$$
#
# где $\ell_k = \log\sigma_k^2$ — то, что выдаёт энкодер (`logvar`). Предсказывать логарифм дисперсии удобно:
# он может быть любым числом, а $\sigma^2 = e^{\ell}$ всегда положительна.

# %% [markdown]
# ## 3. Трюк репараметризации
#
# Ожидание по $q_\phi(z\mid x)$ оценивают одним сэмплом $z$. Но «сэмплировать» — не дифференцируемая операция:
# градиент не пройдёт к $\mu$ и $\sigma$. Выход — вынести случайность в отдельный шум:
#
# $$z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal N(0, I), \qquad \sigma = e^{\ell / 2}.$$
#
# Теперь $z$ — обычная дифференцируемая функция от $\mu$ и $\ell$, а случайность живёт в $\varepsilon$, от параметров не зависящем:
# $\partial z/\partial\mu = 1$, $\partial z/\partial \ell = \tfrac12\sigma\varepsilon$.

# %%
def draw_vae():
    """Схема VAE с трюком репараметризации."""
    fig, ax = plt.subplots(figsize=(9, 2.8))
    boxes = [(0.0, "x\n784", "tab:gray"), (1.6, "энкодер\n784→400", "tab:blue"),
             (3.4, "μ, log σ²\n20 + 20", "tab:blue"), (5.2, "z = μ + σ·ε\n20", "tab:red"),
             (7.0, "декодер\n20→400→784", "tab:green"), (8.8, "x̂\n784", "tab:gray")]
    utils.draw_blocks([(x0, 0.7, 1.2, 1.0, text, color) for x0, text, color in boxes], ax=ax,
                      alpha=0.25, fontsize=8.5)
    ax.text(5.8, 1.75, "ε ~ N(0, I)", ha="center", color="tab:red")
    ax.annotate("", xy=(5.8, 1.22), xytext=(5.8, 1.6), arrowprops=dict(arrowstyle="->", color="tab:red"))
    ax.text(4.0, -0.25, "KL(N(μ, σ²) ‖ N(0, I))", ha="center", color="tab:blue")
    ax.set_xlim(-0.2, 10.2)
    ax.set_ylim(-0.5, 2.0)
    ax.set_title("VAE: энкодер выдаёт распределение, шум вынесен в ε")
    return fig


draw_vae();

# %% [markdown]
# ### Данные
#
# MNIST с яркостями в $[0, 1]$ («непрерывный» MNIST, как в примерах PyTorch): бинарная кросс-энтропия
# допускает и дробные цели.

# %%
x_train, y_train = utils.load_mnist("train", n=CFG["n_train"], flatten=True)
x_test, y_test = utils.load_mnist("test", n=CFG["n_test"], flatten=True)
print(f"обучение: {tuple(x_train.shape)}, тест: {tuple(x_test.shape)}")

# %% [markdown]
# ## 4. Упражнение 1: класс `VAE`
#
# Реализуйте `VAE(input_dim=784, hidden_dim=400, latent_dim=20)` — наследник `nn.Module` с архитектурой из примеров PyTorch:
#
# - энкодер: `Linear(input_dim, hidden_dim)` → ReLU → две «головы» `Linear(hidden_dim, latent_dim)`: одна выдаёт $\mu$,
#   другая $\ell = \log\sigma^2$ (можно и одной головой `Linear(hidden_dim, 2 * latent_dim)`, разрезанной пополам);
# - декодер: `Linear(latent_dim, hidden_dim)` → ReLU → `Linear(hidden_dim, input_dim)` → Sigmoid;
# - сохраните `latent_dim` в атрибуте `self.latent_dim` (он понадобится для сэмплирования);
# - `encode(x)` → `(mu, logvar)`, каждый формы `(B, latent_dim)`;
# - `reparameterize(mu, logvar)` → `mu + exp(0.5 * logvar) * eps`, где `eps ~ N(0, I)` — **новый при каждом вызове**;
# - `decode(z)` → `(B, input_dim)` со значениями в $[0, 1]$;
# - `forward(x)` → `(recon, mu, logvar)`, где `recon` — декодированный **репараметризованный** $z$ (не $\mu$!).

# %% grade_id="vae_class" solution=true
class VAE(nn.Module):
    def __init__(self, input_dim=784, hidden_dim=400, latent_dim=20):
        super().__init__()
        ### BEGIN SOLUTION
        self.latent_dim = latent_dim
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.fc_mu = nn.Linear(hidden_dim, latent_dim)
        self.fc_logvar = nn.Linear(hidden_dim, latent_dim)
        self.fc3 = nn.Linear(latent_dim, hidden_dim)
        self.fc4 = nn.Linear(hidden_dim, input_dim)
        ### END SOLUTION

    def encode(self, x):
        ### BEGIN SOLUTION
        h = F.relu(self.fc1(x))
        return self.fc_mu(h), self.fc_logvar(h)
        ### END SOLUTION

    def reparameterize(self, mu, logvar):
        ### BEGIN SOLUTION
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        ### END SOLUTION

    def decode(self, z):
        ### BEGIN SOLUTION
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar
        ### END SOLUTION


# %% grade_id="vae_tests" points=4
torch.manual_seed(0)
_t_vae = VAE()
_t_x = torch.rand(6, 784)
_t_mu, _t_lv = _t_vae.encode(_t_x)
utils.assert_shape(_t_mu, (6, 20), "mu из encode(x)")
utils.assert_shape(_t_lv, (6, 20), "logvar из encode(x)")
assert _t_vae.latent_dim == 20, "сохраните latent_dim в self.latent_dim"
_t_out = _t_vae(_t_x)
assert isinstance(_t_out, tuple) and len(_t_out) == 3, "forward(x) должен возвращать (recon, mu, logvar)"
_t_rec = _t_out[0].detach()
utils.assert_shape(_t_rec, (6, 784), "recon из forward(x)")
assert float(_t_rec.min()) >= 0 and float(_t_rec.max()) <= 1, "decode(z) должен возвращать значения в [0, 1]"
# reparameterize: среднее mu, стандартное отклонение exp(logvar / 2).
_t_z = _t_vae.reparameterize(torch.full((20000, 3), 1.0), torch.full((20000, 3), float(np.log(4.0))))
assert abs(float(_t_z.mean()) - 1.0) < 0.05, f"среднее z равно {float(_t_z.mean()):.3f}, ожидалось mu = 1"
assert abs(float(_t_z.std()) - 2.0) < 0.05, \
    f"стандартное отклонение z равно {float(_t_z.std()):.3f}, ожидалось exp(0.5 * logvar) = 2"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Каждый аргумент конструктора учитывается: формы и число параметров описанной архитектуры.
for _t_args in (dict(input_dim=50, hidden_dim=30, latent_dim=4), dict(hidden_dim=64, latent_dim=2)):
    _t_m = VAE(**_t_args)
    _t_d, _t_h, _t_l = _t_args.get("input_dim", 784), _t_args["hidden_dim"], _t_args["latent_dim"]
    _t_r, _t_mu2, _t_lv2 = _t_m(torch.rand(3, _t_d))
    utils.assert_shape(_t_r, (3, _t_d), f"recon при {_t_args}")
    utils.assert_shape(_t_mu2, (3, _t_l), f"mu при {_t_args}")
    assert _t_m.latent_dim == _t_l, f"self.latent_dim при {_t_args}"
    _t_expected = (_t_d * _t_h + _t_h) + 2 * (_t_h * _t_l + _t_l) + (_t_l * _t_h + _t_h) + (_t_h * _t_d + _t_d)
    _t_count = sum(p.numel() for p in _t_m.parameters())
    assert _t_count == _t_expected, \
        f"VAE({_t_args}): {_t_count} параметров, у описанной архитектуры {_t_expected}"
# Новый шум при каждом вызове.
_t_mu0, _t_lv0 = torch.zeros(4, 20), torch.zeros(4, 20)
assert not torch.equal(_t_vae.reparameterize(_t_mu0, _t_lv0), _t_vae.reparameterize(_t_mu0, _t_lv0)), \
    "eps должен быть новым при каждом вызове reparameterize"
# Градиенты: dz/dmu = 1 и dz/dlogvar = (z - mu) / 2, какой бы шум ни выпал.
_t_mu1 = torch.randn(5, 7, requires_grad=True)
_t_lv1 = torch.randn(5, 7, requires_grad=True)
_t_z1 = _t_vae.reparameterize(_t_mu1, _t_lv1)
_t_z1.sum().backward()
assert _t_mu1.grad is not None and _t_lv1.grad is not None, "градиент должен доходить до mu и logvar"
utils.assert_close(_t_mu1.grad, torch.ones(5, 7), "градиент z по mu")
utils.assert_close(_t_lv1.grad, 0.5 * (_t_z1 - _t_mu1).detach(), "градиент z по logvar", atol=1e-5)
# forward декодирует сэмплированный z, а не mu: два прохода различаются, а mu — нет.
torch.manual_seed(1)
_t_a, _t_mua, _ = _t_vae(_t_x)
_t_b, _t_mub, _ = _t_vae(_t_x)
utils.assert_close(_t_mua, _t_mub, "mu не должен зависеть от шума")
assert not torch.allclose(_t_a, _t_b), "forward должен декодировать репараметризованный z, а не mu"
# decode даёт корректное среднее распределения Бернулли при любом коде.
_t_big = _t_vae.decode(50 * torch.randn(16, 20)).detach()
assert float(_t_big.min()) >= 0 and float(_t_big.max()) <= 1, "decode должен выдавать значения в [0, 1] при любом z"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Упражнение 2: KL-дивергенция в закрытой форме
#
# Напишите `kl_divergence(mu, logvar)`: для батча параметров `(B, d)` верните тензор формы `(B,)` —
# $\mathrm{KL}\big(\mathcal N(\mu, \operatorname{diag} e^{\ell})\,\|\,\mathcal N(0, I)\big)$, **просуммированную по $d$ координатам**.

# %% grade_id="kl_divergence_impl" solution=true
def kl_divergence(mu, logvar):
    ### BEGIN SOLUTION
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
    ### END SOLUTION


# %% grade_id="kl_divergence_tests" points=2
from torch.distributions import Normal
from torch.distributions import kl_divergence as _t_torch_kl

torch.manual_seed(0)
_t_mu, _t_lv = torch.randn(8, 5), torch.randn(8, 5)
_t_kl = kl_divergence(_t_mu, _t_lv)
utils.assert_shape(_t_kl, (8,), "kl_divergence")
_t_ref = _t_torch_kl(Normal(_t_mu, torch.exp(0.5 * _t_lv)), Normal(0.0, 1.0)).sum(dim=1)
utils.assert_close(_t_kl, _t_ref, "KL в сравнении с torch.distributions", atol=1e-5)
utils.assert_close(kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3), "KL(N(0, I) ‖ N(0, I))")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Другие размеры и экстремальные значения; неотрицательность.
_t_mu, _t_lv = 3 * torch.randn(16, 20), 2 * torch.randn(16, 20)
_t_ref = _t_torch_kl(Normal(_t_mu, torch.exp(0.5 * _t_lv)), Normal(0.0, 1.0)).sum(dim=1)
utils.assert_close(kl_divergence(_t_mu, _t_lv), _t_ref, "KL при d = 20", atol=1e-4, rtol=1e-5)
assert bool((kl_divergence(_t_mu, _t_lv) >= 0).all()), "KL-дивергенция не может быть отрицательной"
# Одна латентная размерность с известным значением: mu = 2, sigma^2 = 1 дают 2.
utils.assert_close(kl_divergence(torch.tensor([[2.0]]), torch.tensor([[0.0]])), torch.tensor([2.0]), "KL при mu=2, σ=1")
# Входы не изменяются; градиенты доходят до обоих аргументов.
_t_mu2 = torch.randn(4, 3, requires_grad=True)
_t_lv2 = torch.randn(4, 3, requires_grad=True)
_t_mu_copy, _t_lv_copy = _t_mu2.detach().clone(), _t_lv2.detach().clone()
kl_divergence(_t_mu2, _t_lv2).sum().backward()
utils.assert_close(_t_mu2.grad, _t_mu_copy, "градиент KL по mu равен mu")
utils.assert_close(_t_lv2.grad, 0.5 * (_t_lv_copy.exp() - 1), "градиент KL по logvar", atol=1e-6)
utils.assert_close(_t_mu2.detach(), _t_mu_copy, "mu не должен меняться")
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Упражнение 3: функция потерь VAE
#
# Напишите `vae_loss(recon_x, x, mu, logvar, beta=1.0)` — скаляр, **среднее по батчу** от
#
# $$\underbrace{\sum_{j=1}^{D} \mathrm{BCE}(\hat x_j, x_j)}_{\text{сумма по пикселям}} \;+\; \beta\cdot\mathrm{KL}.$$
#
# Это отрицательный ELBO в натах на изображение (при $\beta = 1$). Используйте свою `kl_divergence`.
# *Частая ошибка:* `F.binary_cross_entropy(recon_x, x)` по умолчанию **усредняет** по пикселям — тогда
# реконструкция весит в 784 раза меньше, чем KL, и модель выдаёт размытое «среднее».

# %% grade_id="vae_loss_impl" solution=true
def vae_loss(recon_x, x, mu, logvar, beta=1.0):
    ### BEGIN SOLUTION
    bce = F.binary_cross_entropy(recon_x, x, reduction="none").sum(dim=1)
    return (bce + beta * kl_divergence(mu, logvar)).mean()
    ### END SOLUTION


# %% grade_id="vae_loss_tests" points=2
# Вместо вашей kl_divergence здесь подставлена другая функция от (mu, logvar): тест проверяет, как vae_loss
# складывает слагаемые, и ошибка в упражнении 2 не отнимает баллы этого упражнения.
def _t_fake_kl(mu, logvar):
    return (mu - logvar).pow(2).sum(dim=1)


_t_vae_loss = utils.with_stand_ins(vae_loss, kl_divergence=_t_fake_kl)
# Реконструкция 0,5 при x = 0: BCE каждого пикселя — ln 2, у примера из 30 пикселей — 30·ln 2. Подставная KL при
# mu = 1, logvar = 0 — (1 − 0)² по 4 координатам = 4. Итого на пример (и в среднем по батчу) 30·ln 2 + 4.
_t_r, _t_x = torch.full((8, 30), 0.5), torch.zeros(8, 30)
_t_mu, _t_lv = torch.ones(8, 4), torch.zeros(8, 4)
_t_loss = _t_vae_loss(_t_r, _t_x, _t_mu, _t_lv)
assert isinstance(_t_loss, torch.Tensor) and _t_loss.dim() == 0, "vae_loss должна возвращать скалярный тензор"
utils.assert_close(_t_loss, torch.tensor(30 * np.log(2) + 4), "vae_loss при beta=1: 30·ln 2 + 4", atol=1e-4)
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
def _t_reference(recon, x, mu, logvar, beta, kl):
    r, t = recon.double(), x.double()
    bce = -(t * torch.log(r) + (1 - t) * torch.log(1 - r)).sum(dim=1)
    return (bce + beta * kl(mu.double(), logvar.double())).mean()


# beta учитывается, включая 0 (чистая реконструкция) и большое значение.
for _t_beta in (0.0, 0.5, 4.0):
    utils.assert_close(_t_vae_loss(_t_r, _t_x, _t_mu, _t_lv, beta=_t_beta),
                       _t_reference(_t_r, _t_x, _t_mu, _t_lv, _t_beta, _t_fake_kl), f"vae_loss при beta={_t_beta}",
                       atol=1e-4)
# Батч размеров MNIST: среднее по батчу (а не сумма) от сумм по каждой картинке.
_t_r2, _t_x2 = torch.rand(32, 784) * 0.98 + 0.01, (torch.rand(32, 784) > 0.5).float()
_t_mu2, _t_lv2 = torch.randn(32, 20), torch.randn(32, 20)
utils.assert_close(_t_vae_loss(_t_r2, _t_x2, _t_mu2, _t_lv2),
                   _t_reference(_t_r2, _t_x2, _t_mu2, _t_lv2, 1.0, _t_fake_kl), "vae_loss на батче 32×784",
                   atol=1e-3, rtol=1e-5)
# KL-слагаемое берётся из kl_divergence (другая заглушка соответственно меняет потерю).
utils.assert_close(utils.with_stand_ins(vae_loss, kl_divergence=lambda mu, lv: mu.sum(dim=1))(_t_r, _t_x, _t_mu, _t_lv),
                   _t_reference(_t_r, _t_x, _t_mu, _t_lv, 1.0, lambda mu, lv: mu.sum(dim=1)),
                   "KL-слагаемое должно вычисляться вашей kl_divergence", atol=1e-4)
# Градиенты доходят до recon, mu и logvar.
_t_rg = _t_r.clone().requires_grad_(True)
_t_mug = _t_mu.clone().requires_grad_(True)
_t_lvg = _t_lv.clone().requires_grad_(True)
utils.with_stand_ins(vae_loss, kl_divergence=lambda mu, lv: 0.5 * mu.pow(2).sum(dim=1) + lv.sum(dim=1))(
    _t_rg, _t_x, _t_mug, _t_lvg).backward()
for _t_name, _t_p in (("recon_x", _t_rg), ("mu", _t_mug), ("logvar", _t_lvg)):
    assert _t_p.grad is not None and float(_t_p.grad.abs().sum()) > 0, f"градиент не доходит до {_t_name}"
utils.assert_close(_t_mug.grad, _t_mu / 8, "градиент по mu (среднее по батчу)", atol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Обучение и сравнение с эталоном
#
# Обучим VAE 784-400-20 ровно как в примерах PyTorch (Adam, lr = $10^{-3}$, батч 128) и после каждой эпохи
# посчитаем на тестовой выборке отрицательный ELBO на изображение и два его слагаемых. Эталон: после 10 эпох
# на полном MNIST (60 000 изображений) такая модель даёт около **105,6 нат**. В быстром режиме данных и эпох
# меньше, поэтому число будет хуже — важно, что оно уверенно падает.

# %%
def evaluate_vae(model, x, batch_size=1000):
    """Отрицательный ELBO на тесте на одно изображение и два его слагаемых (в натах), по одному сэмплу z на изображение."""
    model.eval()
    rec_sum, kl_sum = 0.0, 0.0
    # Одни и те же сэмплы z при каждой оценке, не сбивая случайный поток обучения.
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())), torch.no_grad():
        torch.manual_seed(0)
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device)
            recon, mu, logvar = model(xb)
            rec_sum += F.binary_cross_entropy(recon, xb, reduction="sum").item()
            kl_sum += kl_divergence(mu, logvar).sum().item()
    rec, kl = rec_sum / len(x), kl_sum / len(x)
    return {"-ELBO": rec + kl, "реконструкция": rec, "KL": kl}


def train_vae(model, epochs, beta=1.0, desc="VAE", verbose=False):
    """Обучает с вашей vae_loss; возвращает метрики на тесте по эпохам (эпоха 0 — до обучения)."""
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=CFG["lr"])
    loader = utils.make_loader(x_train, batch_size=CFG["batch_size"], seed=0)
    history = [evaluate_vae(model, x_test)]
    if verbose:
        print(f"{'эпоха':>5}{'-ELBO, нат':>12}{'реконстр.':>11}{'KL':>8}{'эталон':>9}")
        print(f"{0:>5}{history[0]['-ELBO']:>12.1f}{history[0]['реконструкция']:>11.1f}{history[0]['KL']:>8.1f}")
    for epoch in utils.progress(range(1, epochs + 1), desc=desc):
        model.train()
        for (xb,) in loader:
            xb = xb.to(device)
            recon, mu, logvar = model(xb)
            loss = vae_loss(recon, xb, mu, logvar, beta=beta)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        history.append(evaluate_vae(model, x_test))
        if verbose:
            h = history[-1]
            ref = f"{CFG['reference_nelbo']:>9.1f}" if epoch == 10 else ""
            print(f"{epoch:>5}{h['-ELBO']:>12.1f}{h['реконструкция']:>11.1f}{h['KL']:>8.1f}{ref}")
    return history


utils.seed_everything(42)
vae = VAE(hidden_dim=CFG["hidden_dim"], latent_dim=CFG["latent_dim"])
history = train_vae(vae, CFG["epochs"], verbose=True)
final = history[-1]["-ELBO"]
print(f"\nТестовый -ELBO: до обучения {history[0]['-ELBO']:.1f} → после {CFG['epochs']} эпох {final:.1f} нат "
      f"на {len(x_train)} обучающих изображениях; эталон PyTorch: {CFG['reference_nelbo']} нат "
      "(10 эпох, 60 000 изображений).")
utils.plot_history({k: [h[k] for h in history[1:]] for k in ("-ELBO", "реконструкция", "KL")},
                   title="VAE 784-400-20: тестовые потери по эпохам", ylabel="нат на изображение");

# %% [markdown]
# Реконструкции VAE чуть более размыты, чем у обычного автоэнкодера: код зашумлён, и декодер учится
# восстанавливать изображение по целой окрестности $\mu$.

# %%
vae.eval()
with torch.no_grad():
    recon, _, _ = vae(x_test[:12].to(device))
utils.plot_reconstructions(x_test[:12], recon.cpu(), n=12, title="VAE: тестовые цифры и реконструкции");

# %% [markdown]
# ## 8. Упражнение 4: сэмплирование из априорного распределения
#
# Напишите `sample(model, n)`: сгенерируйте `n` кодов $z \sim \mathcal N(0, I)$ размерности `model.latent_dim`
# **на том же устройстве, что и параметры модели**, декодируйте их и верните тензор `(n, input_dim)`.
# Граф вычислений строить не нужно (`torch.no_grad()`).

# %% grade_id="sample_impl" solution=true
def sample(model, n):
    ### BEGIN SOLUTION
    device_ = next(model.parameters()).device
    with torch.no_grad():
        z = torch.randn(n, model.latent_dim, device=device_)
        return model.decode(z)
    ### END SOLUTION


# %% grade_id="sample_tests" points=2
class _TStubDecoder(nn.Module):
    """Модель-заглушка (не зависит от вашего VAE): линейный декодер с сигмоидой."""

    def __init__(self, latent_dim, out_dim=784):
        super().__init__()
        self.latent_dim = latent_dim
        self.fc = nn.Linear(latent_dim, out_dim)

    def decode(self, z):
        return torch.sigmoid(self.fc(z))


torch.manual_seed(0)
with utils.checking("sample(модель с кодом размера 6, 10): размер кода берётся из model.latent_dim"):
    _t_s = sample(_TStubDecoder(6), 10)
utils.assert_shape(_t_s, (10, 784), "sample(model, 10)")
assert float(_t_s.min()) >= 0 and float(_t_s.max()) <= 1, "сэмплы должны быть в [0, 1]"
assert not _t_s.requires_grad, "сэмплирование не должно строить граф: используйте torch.no_grad()"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
class _TIdentityDecoder(nn.Module):
    """Декодирует z в него же, так что возвращённый тензор — это сам сэмплированный z."""

    def __init__(self, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim
        self.scale = nn.Parameter(torch.ones(()))

    def decode(self, z):
        return z * self.scale


# z ~ N(0, I): среднее 0, std 1, независимые координаты (ловит torch.rand и общий шум).
_t_z = sample(_TIdentityDecoder(50), 4000)
utils.assert_shape(_t_z, (4000, 50), "sample при latent_dim=50")
assert abs(float(_t_z.mean())) < 0.02, f"среднее z {float(_t_z.mean()):.3f}, ожидалось 0"
assert abs(float(_t_z.std()) - 1.0) < 0.02, f"стандартное отклонение z {float(_t_z.std()):.3f}, ожидалось 1"
_t_corr = torch.corrcoef(_t_z.T)
assert float((_t_corr - torch.eye(50)).abs().max()) < 0.1, "координаты z должны быть независимы"
assert not _t_z.requires_grad, "граф не должен строиться"
# Новые сэмплы при каждом вызове, n учитывается, используется собственный latent_dim модели.
assert not torch.equal(sample(_TIdentityDecoder(3), 5), sample(_TIdentityDecoder(3), 5)), "сэмплы должны быть случайными"
utils.assert_shape(sample(_TStubDecoder(2, out_dim=20), 3), (3, 20), "sample для модели с кодом 2 и выходом 20")
# Тензор создаётся на устройстве модели (модель на устройстве meta показывает, где создаётся тензор).
_t_meta = _TIdentityDecoder(4).to("meta")
with utils.checking("sample для модели на другом устройстве: z нужно создавать на устройстве модели"):
    _t_meta_s = sample(_t_meta, 2)
assert _t_meta_s.device.type == "meta", "z нужно создавать на устройстве модели"
### END HIDDEN TESTS

# %% [markdown]
# Сгенерируем цифры из обученного VAE и, для сравнения, попробуем то же с обычным автоэнкодером из главы 1
# (та же ширина, код 20, но без шума и без KL). Для автоэнкодера непонятно, откуда брать код: возьмём
# $z \sim \mathcal N(0, I)$, как у VAE, и, честнее, нормальное распределение с теми же средним и разбросом,
# что у настоящих кодов обучающей выборки.

# %%
class PlainAE(nn.Module):
    """Идея главы 1 с ширинами слоёв VAE: детерминированный код, без KL."""

    def __init__(self, input_dim=784, hidden_dim=400, latent_dim=20):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(),
                                     nn.Linear(hidden_dim, input_dim), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


utils.seed_everything(42)
plain = PlainAE(hidden_dim=CFG["hidden_dim"], latent_dim=CFG["latent_dim"]).to(device)
opt = torch.optim.Adam(plain.parameters(), lr=CFG["lr"])
for _ in utils.progress(range(CFG["epochs"]), desc="обычный AE"):
    for (xb,) in utils.make_loader(x_train, batch_size=CFG["batch_size"], seed=0):
        xb = xb.to(device)
        loss = F.binary_cross_entropy(plain(xb), xb, reduction="sum") / len(xb)
        opt.zero_grad()
        loss.backward()
        opt.step()

torch.manual_seed(3)
with torch.no_grad():
    codes = plain.encoder(x_train[:5000].to(device))
    ae_from_prior = plain.decoder(torch.randn(16, CFG["latent_dim"], device=device)).cpu()
    ae_matched = plain.decoder(codes.mean(0) + codes.std(0) * torch.randn(16, CFG["latent_dim"], device=device)).cpu()
vae_samples = sample(vae, 16).cpu()
print(f"Разброс кодов обычного AE по координатам: от {float(codes.std(0).min()):.1f} до {float(codes.std(0).max()):.1f} "
      "(у VAE коды прижаты к N(0, I))")
utils.plot_image_rows({"VAE: z ~ N(0, I)": vae_samples, "AE: z ~ N(0, I)": ae_from_prior,
                       "AE: z ~ N(среднее, разброс кодов)": ae_matched}, n=16,
                      title="Генерация: VAE против обычного автоэнкодера");

# %% [markdown]
# Даже с «подогнанным» распределением автоэнкодер часто выдаёт не цифры: его коды занимают не всю
# нормальную «шапку», а извилистую область с дырами. VAE сам подгоняет коды под $\mathcal N(0, I)$ —
# за это и отвечает слагаемое KL.

# %% [markdown]
# ## 9. Двумерное латентное пространство
#
# С кодом размерности 2 латентное пространство можно нарисовать целиком. Обучим такой VAE, а затем:
# (1) декодируем сетку точек, равномерную по квантилям $\mathcal N(0, 1)$, — получится «карта» всех цифр;
# (2) закодируем тестовые цифры (средние $\mu$) и раскрасим по классу.

# %%
utils.seed_everything(42)
vae2 = VAE(hidden_dim=CFG["hidden_dim"], latent_dim=2)
history2 = train_vae(vae2, CFG["epochs_2d"], desc="VAE, код 2")
print(f"Тестовый -ELBO двумерного VAE: {history2[-1]['-ELBO']:.1f} нат")

grid = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, 15))
zz = torch.stack(torch.meshgrid(grid, grid.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)
with torch.no_grad():
    manifold = vae2.decode(zz.to(device)).cpu()
    mu2, _ = vae2.encode(x_test.to(device))
fig, axes = plt.subplots(1, 2, figsize=(12, 5.8))
utils.show_images(manifold, nrow=15, ax=axes[0], title="Декодированная сетка кодов (квантили N(0, 1))")
utils.plot_latent_2d(mu2.cpu(), y_test, ax=axes[1], title="Тестовые цифры: μ энкодера")
fig.tight_layout()

# %% [markdown]
# ## 10. Упражнение 5: интерполяция
#
# Напишите `interpolate(model, x_a, x_b, steps=10)`: `x_a` и `x_b` — отдельные изображения формы `(input_dim,)`.
# Закодируйте их и возьмите **средние** $\mu_a, \mu_b$ (без шума), постройте `steps` равноотстоящих точек на отрезке
# $\mu_a \to \mu_b$ **включая концы**, декодируйте и верните `(steps, input_dim)`. Граф не нужен.

# %% grade_id="interpolate_impl" solution=true
def interpolate(model, x_a, x_b, steps=10):
    ### BEGIN SOLUTION
    with torch.no_grad():
        mu_a, _ = model.encode(x_a.unsqueeze(0))
        mu_b, _ = model.encode(x_b.unsqueeze(0))
        t = torch.linspace(0.0, 1.0, steps, device=mu_a.device).unsqueeze(1)
        return model.decode((1 - t) * mu_a + t * mu_b)
    ### END SOLUTION


# %% grade_id="interpolate_tests" points=2
class _TStubVAE(nn.Module):
    """Модель-заглушка (не зависит от вашего VAE): линейные средние энкодера, линейный декодер."""

    def __init__(self, input_dim, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim
        self.enc = nn.Linear(input_dim, 2 * latent_dim)
        self.dec = nn.Linear(latent_dim, input_dim)

    def encode(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z):
        return torch.sigmoid(self.dec(z))


torch.manual_seed(0)
_t_vae = _TStubVAE(784, 4)
_t_a, _t_b = torch.rand(784), torch.rand(784)
_t_path = interpolate(_t_vae, _t_a, _t_b, steps=7)
utils.assert_shape(_t_path, (7, 784), "interpolate(..., steps=7)")
with torch.no_grad():
    _t_mua, _t_mub = _t_vae.encode(_t_a[None])[0], _t_vae.encode(_t_b[None])[0]
    utils.assert_close(_t_path[0], _t_vae.decode(_t_mua)[0], "первый кадр = decode(mu_a)", atol=1e-6)
    utils.assert_close(_t_path[-1], _t_vae.decode(_t_mub)[0], "последний кадр = decode(mu_b)", atol=1e-6)
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
with torch.no_grad():
    # Средний кадр декодирует середину между средними (а не среднее двух картинок).
    utils.assert_close(_t_path[3], _t_vae.decode((_t_mua + _t_mub) / 2)[0], "средний кадр = decode((mu_a + mu_b) / 2)",
                       atol=1e-6)
    # Все кадры лежат на отрезке, через равные промежутки.
    _t_ts = torch.linspace(0, 1, 5)
    _t_ref = _t_vae.decode((1 - _t_ts[:, None]) * _t_mua + _t_ts[:, None] * _t_mub)
utils.assert_close(interpolate(_t_vae, _t_a, _t_b, steps=5), _t_ref, "5 кадров интерполяции", atol=1e-6)
# steps по умолчанию = 10, детерминированность (средние, а не сэмплы), без графа.
_t_p1, _t_p2 = interpolate(_t_vae, _t_a, _t_b), interpolate(_t_vae, _t_a, _t_b)
utils.assert_shape(_t_p1, (10, 784), "steps по умолчанию = 10")
assert torch.equal(_t_p1, _t_p2), "интерполяция должна идти по средним mu и не зависеть от шума"
assert not _t_p1.requires_grad, "граф не должен строиться"
# Работает и для другого размера входа.
_t_small = _TStubVAE(12, 2)
utils.assert_shape(interpolate(_t_small, torch.rand(12), torch.rand(12), steps=3), (3, 12),
                   "interpolate для модели 12 → 2")
### END HIDDEN TESTS

# %%
pairs = []
for a, b in ((0, 1), (3, 8), (4, 9), (7, 2)):
    ia = int((y_test == a).nonzero()[0])
    ib = int((y_test == b).nonzero()[0])
    pairs.append((f"{a} → {b}", interpolate(vae, x_test[ia].to(device), x_test[ib].to(device), steps=12).cpu()))
utils.plot_image_rows(dict(pairs), n=12, title="Интерполяция между цифрами в латентном пространстве VAE (код 20)");

# %% [markdown]
# ## 11. β-VAE: баланс между реконструкцией и KL
#
# В β-VAE слагаемое KL умножают на $\beta$. При $\beta > 1$ коды сильнее прижимаются к $\mathcal N(0, I)$:
# реконструкции хуже, зато латентные координаты чаще отвечают за независимые факторы (толщина, наклон).
# При $\beta < 1$ модель ближе к обычному автоэнкодеру. Посчитаем для каждого $\beta$ два слагаемых
# на тесте и число **активных** латентных координат: тех, у которых средняя по тесту KL больше 0,01 нат
# (у «выключенных» координат $q(z_k\mid x) \approx \mathcal N(0, 1)$ для любого $x$, и декодер их игнорирует).

# %%
def active_units(model, x, threshold=0.01):
    """Латентные измерения, у которых средний KL по ``x`` больше ``threshold`` нат."""
    with torch.no_grad():
        mu, logvar = model.encode(x.to(device))
        kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(dim=0)
    return int((kl_per_dim > threshold).sum())


beta_rows, beta_samples = [], {}
for beta in CFG["betas"]:
    utils.seed_everything(42)
    model = VAE(hidden_dim=CFG["hidden_dim"], latent_dim=CFG["latent_dim"])
    h = train_vae(model, CFG["epochs_beta"], beta=beta, desc=f"β = {beta:g}")[-1]
    beta_rows.append((beta, h["реконструкция"], h["KL"], h["-ELBO"], active_units(model, x_test)))
    key = f"beta_{beta:g}".replace(".", "_")  # имена для таблицы результатов курса (utils.record)
    utils.record(f"{key}_reconstruction", h["реконструкция"])
    utils.record(f"{key}_kl", h["KL"])
    utils.record(f"{key}_active_units", beta_rows[-1][-1])
    torch.manual_seed(0)
    beta_samples[f"β = {beta:g}"] = sample(model, 12).cpu()
print(f"{'β':>5}{'реконстр., нат':>16}{'KL, нат':>10}{'-ELBO':>9}{'активных из 20':>17}")
for beta, rec, kl, nelbo, active in beta_rows:
    print(f"{beta:>5g}{rec:>16.1f}{kl:>10.1f}{nelbo:>9.1f}{active:>17}")
utils.plot_image_rows(beta_samples, n=12, title="Сэмплы из N(0, I) при разных β");

# %% [markdown]
# ## 12. Итоги эксперимента

# %%
print("режим:", "быстрый" if FAST else "полный")
utils.summary([
    ("n_train", "обучающих изображений", len(x_train)),
    ("epochs", "эпох", CFG["epochs"]),
    ("test_nelbo_untrained", "тестовый -ELBO до обучения, нат", history[0]["-ELBO"], ".1f"),
    ("test_nelbo", "тестовый -ELBO после обучения, нат", final, ".1f"),
    ("test_reconstruction", "из них реконструкция, нат", history[-1]["реконструкция"], ".1f"),
    ("test_kl", "из них KL, нат", history[-1]["KL"], ".1f"),
    ("test_nelbo_2d", "-ELBO двумерного VAE, нат", history2[-1]["-ELBO"], ".1f"),
])
print(f"эталон PyTorch (10 эпох, 60k): {CFG['reference_nelbo']} нат")

# %% [markdown]
# ## 13. Вопросы (проверяет преподаватель)

# %% [markdown]
# **Вопрос 1.** Чем VAE отличается от GAN? Сравните, чему учится каждая модель, как устроена функция потерь
# и что можно получить от обученной модели (например, оценку правдоподобия или код для данного изображения).

# %% [markdown] grade_id="q_vae_vs_gan" points=2 solution=true
# ### BEGIN SOLUTION
# VAE — вероятностная модель с энкодером и декодером; она обучается максимизацией ELBO, нижней оценки
# правдоподобия, то есть через вероятностное кодирование. GAN обучается состязанием генератора
# и дискриминатора без явного правдоподобия. У VAE есть энкодер (код для любого изображения) и оценка
# log p(x) снизу; обучение устойчиво. Сэмплы VAE обычно размытее: BCE/гауссово правдоподобие штрафует
# усреднением, а GAN даёт резкие изображения, но рискует коллапсом мод и нестабильностью обучения.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 2.** Что произойдёт, если убрать из функции потерь слагаемое KL? А если оставить только KL?

# %% [markdown] grade_id="q_kl_role" points=2 solution=true
# ### BEGIN SOLUTION
# Без KL энкодер может сделать дисперсии сколь угодно малыми и разнести средние далеко друг от друга:
# получится обычный автоэнкодер с дырами в латентном пространстве, и сэмплы из N(0, I) будут плохими.
# Только с KL оптимум — q(z|x) = N(0, I) для всех x: код не несёт информации о входе, декодер выдаёт одно
# среднее изображение (posterior collapse).
# ### END SOLUTION

# %% [markdown]
# **Вопрос 3.** Зачем нужен трюк репараметризации? Почему нельзя просто сэмплировать $z$ из $\mathcal N(\mu, \sigma^2)$?

# %% [markdown] grade_id="q_reparam" points=2 solution=true
# ### BEGIN SOLUTION
# Операция сэмплирования не дифференцируема по параметрам распределения, и градиент функции потерь не дошёл
# бы до mu и sigma, то есть до энкодера. Запись z = mu + sigma * eps выносит случайность в eps, не зависящий
# от параметров; z становится дифференцируемой функцией mu и sigma, и градиент оценивается с низкой дисперсией.
# ### END SOLUTION

# %% [markdown]
# ## 14. Что дальше
#
# **Мы узнали:** VAE кодирует изображение распределением, обучается максимизацией ELBO (реконструкция + KL),
# градиент проходит через сэмплирование благодаря репараметризации, а сплошное латентное пространство
# позволяет сэмплировать и интерполировать. $\beta$ регулирует баланс между качеством и «порядком» в коде.
#
# **Дальше:** в главе 3 генеративная модель учится совсем иначе — через состязание генератора и дискриминатора (GAN).
#
# **Домашнее задание:**
# 1. Замените полносвязные слои свёрточными и сравните тестовый -ELBO при том же размере кода.
# 2. Обучите VAE на Fashion-MNIST (`utils.load_fashion_mnist`) и посмотрите на интерполяции между вещами.
# 3. Оцените $\log p(x)$ точнее методом importance sampling с $K = 100$ сэмплами и сравните с ELBO.
# 4. Для β-VAE с $\beta = 4$ и кодом 10 декодируйте изменение одной координаты кода при фиксированных остальных:
#    за какой фактор (наклон, толщина) она отвечает?
