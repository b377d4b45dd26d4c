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
# # Глава 5. Диффузионные модели: от прямого процесса до DDIM
#
# {{badges}}
#
# **Цели главы.** После этой главы вы сможете:
# - записать прямой (зашумляющий) процесс DDPM и получить $x_t$ из $x_0$ за один шаг;
# - сравнить линейное и косинусное расписания шума;
# - построить небольшой U-Net с временным эмбеддингом и обучить его предсказывать шум;
# - реализовать обратный процесс DDPM и быстрый детерминированный сэмплер DDIM;
# - измерить, во сколько раз DDIM быстрее и чем диффузия отличается от GAN по скорости, качеству и покрытию.
#
# **Что нужно знать заранее:** главы 2 (VAE) и 3–4 (GAN), свёртки, нормальное распределение.
#
# **Время:** 2–3 часа. Быстрый режим (`FAST_MODE = True` в ячейке подготовки или `COURSE_FAST=1`) — около минуты на CPU; полный режим берёт готовую
# обученную сеть из `data/checkpoints/`, а без неё обучает свою (на GPU — минуты, на CPU — около часа).

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
import math
import time

CFG = dict(
    timesteps=1000,  # T, число шагов диффузии (как в статье DDPM)
    n_train=utils.by_mode(8000, None),  # None = все доступные обучающие изображения
    batch_size=128,
    lr=1e-3,
    train_steps=utils.by_mode(30, 300),  # шагов Adam для вашей сети, когда есть готовая
    n_eval=utils.by_mode(100, 1000),  # сколько изображений оценивать метрикой (не меньше 100)
    n_ddpm=utils.by_mode(2, 1000),  # сколько изображений генерировать полным DDPM (он медленный)
)
CFG

# %% [markdown]
# ## 1. Прямой процесс: как испортить изображение шумом
#
# Диффузионная модель учится **обращать** постепенное зашумление. Прямой процесс — это цепочка из $T$ шагов,
# на каждом из которых к изображению добавляется немного гауссова шума:
#
# $$q(x_t \mid x_{t-1}) = \mathcal N\big(\sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\big),\qquad t = 1, \dots, T.$$
#
# Числа $\beta_1 < \dots < \beta_T$ — **расписание шума**. Множитель $\sqrt{1-\beta_t}$ слегка сжимает сигнал, так что
# дисперсия не растёт: если $x_{t-1}$ имеет единичную дисперсию, то и $x_t$ тоже. Обозначим
# $\alpha_t = 1 - \beta_t$ и $\bar\alpha_t = \prod_{s \le t} \alpha_s$. Композиция гауссовых шагов — снова гауссиана, поэтому
# $x_t$ можно получить из $x_0$ **за один шаг**:
#
# $$q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big)
# \quad\Longleftrightarrow\quad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\ \ \varepsilon \sim \mathcal N(0, I).$$
#
# Когда $\bar\alpha_T \approx 0$, $x_T$ почти не зависит от $x_0$: это чистый шум $\mathcal N(0, I)$, с которого и
# начнётся генерация.
#
# В коде шаги нумеруются с нуля: индекс `t = 0, …, T-1` соответствует шагу $t+1$ формул, а `betas[t]` — это
# $\beta_{t+1}$. Изображения масштабированы в $[-1, 1]$, как у GAN.
#
# **Два расписания.**
# - Линейное (Ho и др., 2020): $\beta$ растёт линейно от $10^{-4}$ до $0.02$.
# - Косинусное (Nichol и Dhariwal, 2021): задаётся сама кривая
#   $\bar\alpha_t = f(t)/f(0)$, $f(t) = \cos^2\!\big(\frac{t/T + s}{1 + s}\cdot\frac{\pi}{2}\big)$, $s = 0.008$, а
#   $\beta_t = 1 - \bar\alpha_t / \bar\alpha_{t-1}$, обрезанные сверху числом $0.999$ (иначе последний шаг был бы
#   $\beta = 1$). При линейном расписании $\bar\alpha_t$ падает почти до нуля уже к середине цепочки, и последние
#   сотни шагов тратятся на почти чистый шум; косинусное разрушает изображение равномернее.

# %% [markdown]
# ## 2. Упражнение 1: расписания шума и `NoiseSchedule`
#
# - `linear_beta_schedule(timesteps, beta_start=1e-4, beta_end=0.02)` → тензор `(T,)` из $T$ равноотстоящих значений
#   от `beta_start` до `beta_end` включительно.
# - `cosine_beta_schedule(timesteps, s=0.008)` → тензор `(T,)` по формулам выше: вычислите $f$ в точках
#   $t = 0, 1, \dots, T$ (их $T + 1$), затем $\bar\alpha_t = f(t)/f(0)$ и $\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t-1}$
#   для $t = 1..T$; обрежьте сверху на $0.999$.
# - `NoiseSchedule(betas)` хранит тензоры длины $T$ (`float32`):
#   `betas`; `alphas` $= 1 - \beta$; `alphas_cumprod` $= \bar\alpha$; `alphas_cumprod_prev` — $\bar\alpha$, сдвинутые на
#   шаг вправо, с единицей в начале ($\bar\alpha_0 = 1$: до первого шага шума нет);
#   `posterior_variance` $= \beta_t\,(1 - \bar\alpha_{t-1}) / (1 - \bar\alpha_t)$ (понадобится в разделе 6).
# - Метод `q_sample(x0, t, noise)`: `t` — `LongTensor` формы `(B,)`, у каждого примера свой шаг; верните
#   $\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$. Коэффициенты формы `(B,)` превратите в `(B, 1, 1, 1)`
#   (в общем случае — `(B, 1, …, 1)` по числу измерений `x0`), чтобы они умножались на целые изображения, и перенесите
#   их на устройство `x0`.

# %% grade_id="schedules" solution=true
def linear_beta_schedule(timesteps, beta_start=1e-4, beta_end=0.02):
    ### BEGIN SOLUTION
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float32)
    ### END SOLUTION


def cosine_beta_schedule(timesteps, s=0.008):
    ### BEGIN SOLUTION
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * torch.pi / 2) ** 2
    alphas_cumprod = f / f[0]
    betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
    return betas.clamp(max=0.999).float()
    ### END SOLUTION


class NoiseSchedule:
    def __init__(self, betas):
        ### BEGIN SOLUTION
        self.betas = betas.float()
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1), self.alphas_cumprod[:-1]])
        self.posterior_variance = self.betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        ### END SOLUTION

    def q_sample(self, x0, t, noise):
        ### BEGIN SOLUTION
        shape = (-1,) + (1,) * (x0.dim() - 1)
        abar = self.alphas_cumprod.to(x0.device)[t].view(shape)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        ### END SOLUTION


# %% grade_id="schedules_tests" points=3
_t_lin = linear_beta_schedule(1000)
utils.assert_shape(_t_lin, (1000,), "linear_beta_schedule(1000)")
utils.assert_close(_t_lin[[0, -1]], torch.tensor([1e-4, 0.02]), "первая и последняя beta линейного расписания")
_t_s = NoiseSchedule(linear_beta_schedule(1000))
utils.assert_close(_t_s.alphas_cumprod[:3], torch.cumprod(1 - _t_lin[:3], 0), "alphas_cumprod[:3]")
_t_x0 = torch.rand(2, 1, 4, 4) * 2 - 1
utils.assert_shape(_t_s.q_sample(_t_x0, torch.tensor([0, 999]), torch.randn_like(_t_x0)), (2, 1, 4, 4), "q_sample")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
import math as _t_math


def _t_ref_cosine(T, s=0.008):
    f = [_t_math.cos(((i / T) + s) / (1 + s) * _t_math.pi / 2) ** 2 for i in range(T + 1)]
    return torch.tensor([min(1 - f[i + 1] / f[i], 0.999) for i in range(T)], dtype=torch.float64)


# Линейное: равномерный шаг, оба конца включены, аргументы учитываются.
utils.assert_close(linear_beta_schedule(5, 0.1, 0.5), torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]),
                   "linear_beta_schedule(5, 0.1, 0.5)", rtol=1e-5)
# Косинусное: beta по Nichol-Dhariwal, обрезанные на 0.999 (последние beta короткой цепочки упираются в обрезку).
for _t_T in (1000, 10):
    _t_cos = cosine_beta_schedule(_t_T)
    utils.assert_shape(_t_cos, (_t_T,), f"cosine_beta_schedule({_t_T})")
    utils.assert_close(_t_cos.double(), _t_ref_cosine(_t_T), f"cosine_beta_schedule({_t_T})", rtol=1e-4, atol=1e-7)
assert float(cosine_beta_schedule(1000).max()) <= 0.999 + 1e-6, "beta косинусного расписания обрезаются на 0.999"
utils.assert_close(cosine_beta_schedule(20, s=0.1).double(), _t_ref_cosine(20, 0.1), "cosine_beta_schedule(20, s=0.1)",
                   rtol=1e-4, atol=1e-7)
# Каждый атрибут NoiseSchedule сверяется с его определением.
_t_b = torch.tensor([0.1, 0.2, 0.3, 0.4])
_t_ns = NoiseSchedule(_t_b)
_t_ab = torch.tensor([0.9, 0.9 * 0.8, 0.9 * 0.8 * 0.7, 0.9 * 0.8 * 0.7 * 0.6])
_t_abp = torch.cat([torch.ones(1), _t_ab[:-1]])
utils.assert_close(_t_ns.betas, _t_b, "NoiseSchedule.betas")
utils.assert_close(_t_ns.alphas, 1 - _t_b, "NoiseSchedule.alphas")
utils.assert_close(_t_ns.alphas_cumprod, _t_ab, "NoiseSchedule.alphas_cumprod (произведение alphas)")
utils.assert_close(_t_ns.alphas_cumprod_prev, _t_abp, "NoiseSchedule.alphas_cumprod_prev (с единицей в начале)")
utils.assert_close(_t_ns.posterior_variance, _t_b * (1 - _t_abp) / (1 - _t_ab), "NoiseSchedule.posterior_variance")
# q_sample: замкнутая формула со своим шагом у каждого примера, broadcasting по любому числу размерностей картинки.
_t_x0 = torch.randn(4, 1, 3, 3)
_t_eps = torch.randn(4, 1, 3, 3)
_t_tt = torch.tensor([3, 0, 2, 1])
_t_want = _t_ab[_t_tt].sqrt().view(4, 1, 1, 1) * _t_x0 + (1 - _t_ab[_t_tt]).sqrt().view(4, 1, 1, 1) * _t_eps
utils.assert_close(_t_ns.q_sample(_t_x0, _t_tt, _t_eps), _t_want, "q_sample(x0, t, noise)")
_t_x2 = torch.randn(4, 5)
utils.assert_close(_t_ns.q_sample(_t_x2, _t_tt, torch.zeros(4, 5)), _t_ab[_t_tt].sqrt().view(4, 1) * _t_x2,
                   "q_sample для тензоров (B, D)")
# При t = T линейное расписание оставляет (почти) чистый N(0, I), каким бы ни был x0.
torch.manual_seed(0)
_t_big = torch.ones(4000, 1, 8, 8)
_t_xT = _t_s.q_sample(_t_big, torch.full((4000,), 999), torch.randn_like(_t_big))
assert abs(float(_t_xT.mean())) < 0.02 and abs(float(_t_xT.std()) - 1) < 0.02, \
    f"x_T должен быть близок к N(0, I): среднее {float(_t_xT.mean()):.3f}, std {float(_t_xT.std()):.3f}"
### END HIDDEN TESTS

# %% [markdown]
# Посмотрим, как оба расписания разрушают цифры и как ведёт себя $\bar\alpha_t$.

# %%
T = CFG["timesteps"]
schedules = {"линейное": NoiseSchedule(linear_beta_schedule(T)), "косинусное": NoiseSchedule(cosine_beta_schedule(T))}

x_train, y_train = utils.load_mnist("train", n=CFG["n_train"], scale="-11")
print(f"обучение: {tuple(x_train.shape)}, значения в [{x_train.min():.0f}, {x_train.max():.0f}]")

fig, ax = plt.subplots(1, 2, figsize=(11, 3.4))
for name, sch in schedules.items():
    ax[0].plot(sch.alphas_cumprod, label=name)
    ax[1].plot(sch.alphas_cumprod.sqrt() / (1 - sch.alphas_cumprod).sqrt(), label=name)
ax[0].set(title=r"$\bar\alpha_t$: сколько осталось от сигнала", xlabel="шаг t")
ax[1].set(title=r"отношение сигнал/шум $\sqrt{\bar\alpha_t}/\sqrt{1-\bar\alpha_t}$", xlabel="шаг t", yscale="log")
for a in ax:
    a.legend()
plt.show()

show_t = [0, 50, 100, 250, 500, 750, 999]
digits = x_train[:4]
torch.manual_seed(0)
eps = torch.randn_like(digits)
rows = {}
for name, sch in schedules.items():
    for i in range(2):
        rows[f"{name}, цифра {i + 1}"] = torch.cat(
            [sch.q_sample(digits[i:i + 1], torch.tensor([t]), eps[i:i + 1]) for t in show_t])
utils.plot_image_rows(rows, value_range=(-1, 1), col_titles=[f"t={t}" for t in show_t]);

# %% [markdown]
# При линейном расписании цифра ещё видна при $t = 250$, едва угадывается к $t \approx 500$ и исчезает к
# $t = 750$: последняя четверть шагов уходит на шум, в котором почти нечего восстанавливать (сигнал/шум на правом
# графике — меньше 0,1). Косинусное расписание дольше сохраняет структуру. Дальше в главе мы
# используем линейное расписание с $T = 1000$, как в статье DDPM: на нём обучена готовая сеть курса.

# %% [markdown]
# ## 3. Что учит сеть
#
# Обратный процесс тоже гауссов, если шаги малы: $p_\theta(x_{t-1} \mid x_t) = \mathcal N(\mu_\theta(x_t, t), \sigma_t^2 I)$.
# Ho и др. (2020) показали, что удобнее всего учить сеть $\varepsilon_\theta(x_t, t)$ **предсказывать шум**, добавленный
# к $x_0$. Упрощённая функция потерь — обычная MSE:
#
# $$L_\text{simple} = \mathbb E_{x_0,\ t,\ \varepsilon}\ \big\|\varepsilon - \varepsilon_\theta(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\ t)\big\|^2,$$
#
# где $t$ выбирается равномерно. Одна сеть обслуживает все шаги, поэтому ей нужно знать $t$: номер шага
# превращается в вектор **синусоидальным эмбеддингом** (как позиции в трансформере) и добавляется к признакам
# в каждом блоке.
#
# ### Упражнение 2: синусоидальный эмбеддинг
#
# `sinusoidal_embedding(t, dim)`: `t` — тензор `(B,)` (целый или вещественный), результат — `(B, dim)` (`float32`):
# `half = dim // 2`, частоты `freqs = exp(-ln(10000) · arange(half) / half)`, выход — `cat(sin(t·freqs), cos(t·freqs))`
# по последнему измерению. Частоты создавайте на устройстве `t`.

# %% grade_id="embedding" solution=true
def sinusoidal_embedding(t, dim):
    ### BEGIN SOLUTION
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    ### END SOLUTION


# %% grade_id="embedding_tests" points=2
_t_e = sinusoidal_embedding(torch.tensor([0, 1, 500]), 16)
utils.assert_shape(_t_e, (3, 16), "sinusoidal_embedding(t, 16)")
utils.assert_close(_t_e[0], torch.cat([torch.zeros(8), torch.ones(8)]), "эмбеддинг шага 0")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
import math as _t_math


def _t_ref_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-_t_math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    a = t.double()[:, None] * freqs[None]
    return torch.cat([a.sin(), a.cos()], 1)


for _t_dim in (128, 32, 6):
    _t_steps = torch.tensor([0, 1, 7, 250, 999])
    utils.assert_close(sinusoidal_embedding(_t_steps, _t_dim).double(), _t_ref_embedding(_t_steps, _t_dim),
                       f"sinusoidal_embedding(t, {_t_dim})", atol=2e-4, rtol=1e-4)
assert sinusoidal_embedding(torch.tensor([3, 4]), 8).dtype == torch.float32, "эмбеддинг должен быть float32"
utils.assert_close(sinusoidal_embedding(torch.tensor([2.5]), 4).double(), _t_ref_embedding(torch.tensor([2.5]), 4),
                   "эмбеддинг дробного t", atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Упражнение 3: небольшой U-Net с временем
#
# Сеть $\varepsilon_\theta(x_t, t)$ должна вернуть тензор той же формы, что и вход. U-Net подходит для этого
# идеально: кодировщик уменьшает разрешение и собирает контекст, декодер возвращает разрешение, а **skip-связи**
# передают ему мелкие детали напрямую из кодировщика. Самая частая ошибка в U-Net — число каналов на стыке
# skip-связи и декодера не сходится; ниже — схема, в которой каждое число проверено.
#
# **Остаточный блок** `ResidualBlock(in_channels, out_channels, time_dim)` (атрибуты с такими именами):
# `norm1 = GroupNorm(8, in)`, `conv1 = Conv2d(in, out, 3, padding=1)`, `time_proj = Linear(time_dim, out)`,
# `norm2 = GroupNorm(8, out)`, `conv2 = Conv2d(out, out, 3, padding=1)`, `skip = Conv2d(in, out, 1)`, если
# `in != out`, иначе `Identity()`. `forward(x, temb)`:
# $h = \mathrm{conv1}(\mathrm{SiLU}(\mathrm{norm1}(x))) + \mathrm{time\_proj}(\mathrm{SiLU}(temb))$ (вектор `(B, out)`
# превратите в `(B, out, 1, 1)`), затем $h = \mathrm{conv2}(\mathrm{SiLU}(\mathrm{norm2}(h)))$, выход $h + \mathrm{skip}(x)$.
#
# **U-Net** `UNet(in_channels=1, base_channels=32, time_dim=128)`, $c = $ `base_channels`; запомните `self.time_dim`:
#
# | атрибут | слой | выход для 28×28 |
# |---|---|---|
# | `time_mlp` | `Sequential(Linear(time_dim, 4·time_dim), SiLU(), Linear(4·time_dim, time_dim))` поверх `sinusoidal_embedding(t, time_dim)` | `temb`: `(B, time_dim)` |
# | `inc` | `Conv2d(in_channels, c, 3, padding=1)` | c×28×28 |
# | `down1` | `ResidualBlock(c, c)` | c×28×28 → skip `h1` |
# | `downsample1` | `Conv2d(c, c, 3, stride=2, padding=1)` | c×14×14 |
# | `down2` | `ResidualBlock(c, 2c)` | 2c×14×14 → skip `h2` |
# | `downsample2` | `Conv2d(2c, 2c, 3, stride=2, padding=1)` | 2c×7×7 |
# | `mid1`, `mid2` | `ResidualBlock(2c, 2c)` дважды | 2c×7×7 |
# | `upsample2` | `ConvTranspose2d(2c, 2c, 4, stride=2, padding=1)` | 2c×14×14 |
# | `up2` | `ResidualBlock(4c, 2c)` на `cat([h, h2], dim=1)` | 2c×14×14 |
# | `upsample1` | `ConvTranspose2d(2c, c, 4, stride=2, padding=1)` | c×28×28 |
# | `up1` | `ResidualBlock(2c, c)` на `cat([h, h1], dim=1)` | c×28×28 |
# | `out` | `Sequential(GroupNorm(8, c), SiLU(), Conv2d(c, in_channels, 3, padding=1))` | in×28×28 |
#
# Все остаточные блоки получают `temb`: время влияет на каждом разрешении. Для входа 32×32 те же слои дают
# 32 → 16 → 8 → 16 → 32. Если назвать атрибуты, как в таблице, в вашу сеть загрузятся веса готовой сети курса
# (раздел 8); другая архитектура тоже засчитывается, если проходит тесты.

# %%
def draw_unet(c=32):
    """Блок-схема U-Net главы: разрешения, каналы, skip-связи и куда входит эмбеддинг времени."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    blocks = [  # (x, y, label, height)
        (0.0, 2.0, f"inc\n{c}×28²", 1.6), (1.6, 2.0, f"down1\n{c}×28²", 1.6), (3.2, 1.0, f"down2\n{2 * c}×14²", 1.1),
        (4.8, 0.0, f"mid1, mid2\n{2 * c}×7²", 0.8), (6.4, 1.0, f"up2\n{2 * c}×14²", 1.1), (8.0, 2.0, f"up1\n{c}×28²", 1.6),
        (9.6, 2.0, "out\n1×28²", 1.6),
    ]
    timed = range(1, len(blocks) - 1)  # блоки, которые получают эмбеддинг времени
    utils.draw_blocks([(x, y, 1.1, h, label, "tab:green" if i in timed else "tab:gray")
                       for i, (x, y, label, h) in enumerate(blocks)], ax=ax)
    for i in timed:
        x, y, _, h = blocks[i]
        ax.annotate("", xy=(x + 0.55, y + h / 2), xytext=(x + 0.55, 3.3),
                    arrowprops=dict(arrowstyle="->", color="tab:orange", lw=1))
    for (a, b) in [(1, 5), (2, 4)]:
        xa, ya, _, ha = blocks[a]
        xb, yb, _, hb = blocks[b]
        ax.annotate("", xy=(xb + 0.2, yb - hb / 2), xytext=(xa + 0.9, ya - ha / 2),
                    arrowprops=dict(arrowstyle="->", color="tab:blue", connectionstyle="arc3,rad=0.25", ls="--"))
    ax.text(5.35, 3.45, "temb = time_mlp(sinusoidal_embedding(t)) — в каждый остаточный блок", ha="center",
            color="tab:orange", fontsize=9)
    ax.text(5.35, -0.9, "синие пунктирные стрелки — skip-связи (конкатенация по каналам)", ha="center",
            color="tab:blue", fontsize=9)
    ax.set_xlim(-0.3, 11)
    ax.set_ylim(-1.2, 3.7)
    return fig


draw_unet();

# %% grade_id="unet" solution=true
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, time_dim):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm1 = nn.GroupNorm(8, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_channels)
        self.norm2 = nn.GroupNorm(8, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        ### END SOLUTION

    def forward(self, x, temb):
        ### BEGIN SOLUTION
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)
        ### END SOLUTION


class UNet(nn.Module):
    def __init__(self, in_channels=1, base_channels=32, time_dim=128):
        super().__init__()
        ### BEGIN SOLUTION
        c = base_channels
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, 4 * time_dim), nn.SiLU(), nn.Linear(4 * time_dim, time_dim))
        self.inc = nn.Conv2d(in_channels, c, 3, padding=1)
        self.down1 = ResidualBlock(c, c, time_dim)
        self.downsample1 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.down2 = ResidualBlock(c, 2 * c, time_dim)
        self.downsample2 = nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1)
        self.mid1 = ResidualBlock(2 * c, 2 * c, time_dim)
        self.mid2 = ResidualBlock(2 * c, 2 * c, time_dim)
        self.upsample2 = nn.ConvTranspose2d(2 * c, 2 * c, 4, stride=2, padding=1)
        self.up2 = ResidualBlock(4 * c, 2 * c, time_dim)
        self.upsample1 = nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1)
        self.up1 = ResidualBlock(2 * c, c, time_dim)
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, in_channels, 3, padding=1))
        ### END SOLUTION

    def forward(self, x, t):
        ### BEGIN SOLUTION
        temb = self.time_mlp(sinusoidal_embedding(t, self.time_dim))
        h1 = self.down1(self.inc(x), temb)
        h2 = self.down2(self.downsample1(h1), temb)
        h = self.mid2(self.mid1(self.downsample2(h2), temb), temb)
        h = self.up2(torch.cat([self.upsample2(h), h2], dim=1), temb)
        h = self.up1(torch.cat([self.upsample1(h), h1], dim=1), temb)
        return self.out(h)
        ### END SOLUTION


# %% grade_id="unet_tests" points=4
# Вместо вашей sinusoidal_embedding сети здесь получают другое вложение времени той же формы: ошибка в
# упражнении 2 не отнимает баллы этого упражнения.
def _t_unet(**kwargs):
    net = UNet(**kwargs)
    net.forward = utils.with_stand_ins(
        net.forward, sinusoidal_embedding=lambda t, dim: torch.cos(t.float()[:, None] / (1.0 + torch.arange(dim))))
    return net


torch.manual_seed(0)
_t_net = _t_unet()
_t_n_params = sum(p.numel() for p in _t_net.parameters())
print(f"параметров: {utils.grouped(_t_n_params)}")
assert _t_n_params <= 3_000_000, f"не больше 3M параметров, сейчас {utils.grouped(_t_n_params)}"
with torch.no_grad():
    utils.assert_shape(_t_net(torch.randn(2, 1, 28, 28), torch.tensor([0, 999])), (2, 1, 28, 28), "UNet()(x 28×28, t)")
    with utils.checking("UNet()(x 32×32, t): размеры при подъёме разрешения берутся из входа, а не фиксированы"):
        _t_o32 = _t_net(torch.randn(2, 1, 32, 32), torch.tensor([5, 6]))
    utils.assert_shape(_t_o32, (2, 1, 32, 32), "UNet()(x 32×32, t)")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
with torch.no_grad():
    # Другие числа каналов: 3-канальные картинки 32x32, больший base_channels, другой time_dim.
    utils.assert_shape(_t_unet(in_channels=3, base_channels=16, time_dim=64)(torch.randn(2, 3, 32, 32), torch.tensor([1, 2])),
                       (2, 3, 32, 32), "UNet(in_channels=3, base_channels=16, time_dim=64) на 32×32")
    # Выход зависит от t: та же картинка, разные шаги — разные предсказания.
    _t_x = torch.randn(1, 1, 28, 28).repeat(2, 1, 1, 1)
    _t_o = _t_net(_t_x, torch.tensor([10, 900]))
    assert float((_t_o[0] - _t_o[1]).abs().max()) > 1e-4, "выход UNet должен зависеть от t"
    # Выход зависит от входа на каждом масштабе пикселей и от далёких пикселей (контекст через узкое место).
    _t_x2 = _t_x[:1].clone()
    _t_x2[..., 0, 0] += 1.0
    _t_d = (_t_net(_t_x2, torch.tensor([10])) - _t_net(_t_x[:1], torch.tensor([10]))).abs()[0, 0]
    assert float(_t_d[-1, -1]) > 0 or float(_t_d[20:, 20:].max()) > 0, \
        "пиксель в углу должен влиять на далёкие выходы: нужен путь через низкое разрешение"
# Условие по времени начиная со входного разрешения: изменение t меняет выход свёртки 28x28, вычисленный до
# первого уменьшения разрешения в сети (поэтому подачи времени только в узкое место недостаточно).
_t_order, _t_acts = [], {}


def _t_hook(name):
    def hook(module, inputs, output):
        if name not in _t_acts:
            _t_order.append(name)
        _t_acts.setdefault(name, []).append(output.detach())
    return hook


_t_hooks = [m.register_forward_hook(_t_hook(n)) for n, m in _t_net.named_modules()
            if isinstance(m, nn.Conv2d) and not isinstance(m, nn.ConvTranspose2d)]
with torch.no_grad():
    _t_net(_t_x[:1], torch.tensor([10]))
    _t_net(_t_x[:1], torch.tensor([900]))
for _t_h in _t_hooks:
    _t_h.remove()
_t_full = []
for _t_name in _t_order:
    if tuple(_t_acts[_t_name][0].shape[-2:]) != (28, 28):
        break
    _t_full.append(_t_name)
assert any(len(_t_acts[n]) == 2 and float((_t_acts[n][0] - _t_acts[n][1]).abs().max()) > 1e-6 for n in _t_full), \
    "время должно влиять на признаки уже на входном разрешении 28×28, до первого уменьшения"
_t_changed = {tuple(v[0].shape[-2:]) for v in _t_acts.values()
              if len(v) == 2 and float((v[0] - v[1]).abs().max()) > 1e-6}
for _t_res in ((14, 14), (7, 7)):
    assert _t_res in _t_changed, f"время должно влиять на признаки разрешения {_t_res[0]}×{_t_res[1]}"
# Skip-связи: если выход каждой свёртки 7x7 заменить нулями, выход сети всё равно должен зависеть от входа,
# а это возможно только через пути в обход узкого места.
def _t_freeze(module, inputs, output):
    return torch.zeros_like(output)


_t_small = [n for n, v in _t_acts.items() if tuple(v[0].shape[-2:]) == (7, 7)]
_t_hooks = [dict(_t_net.named_modules())[n].register_forward_hook(_t_freeze) for n in _t_small]
with torch.no_grad():
    _t_a = _t_net(_t_x[:1], torch.tensor([10]))
    _t_b2 = _t_net(_t_x[:1] + torch.randn_like(_t_x[:1]), torch.tensor([10]))
for _t_h in _t_hooks:
    _t_h.remove()
assert float((_t_a - _t_b2).abs().max()) > 1e-5, \
    "нужны skip-связи: при отключённом узком месте (7×7) выход всё равно должен зависеть от входа"
# Обучаемость: один шаг оптимизатора на фиксированном батче уменьшает потерю.
_t_opt = torch.optim.Adam(_t_net.parameters(), lr=1e-3)
_t_xb, _t_tb, _t_nb = torch.randn(8, 1, 28, 28), torch.randint(0, 1000, (8,)), torch.randn(8, 1, 28, 28)
_t_l0 = F.mse_loss(_t_net(_t_xb, _t_tb), _t_nb)
for _ in range(5):
    _t_opt.zero_grad()
    _t_l = F.mse_loss(_t_net(_t_xb, _t_tb), _t_nb)
    _t_l.backward()
    _t_opt.step()
assert float(_t_l.detach()) < float(_t_l0.detach()), "сеть должна обучаться: пять шагов Adam снижают ошибку"
### END HIDDEN TESTS

# %% [markdown]
# ### Упражнение 4: функция потерь
#
# `diffusion_loss(model, x0, t, noise, schedule)`: зашумите `x0` методом `schedule.q_sample(x0, t, noise)`, подайте
# результат и `t` в модель и верните MSE (среднее по всем элементам) между `noise` и предсказанием модели.

# %% grade_id="loss" solution=true
def diffusion_loss(model, x0, t, noise, schedule):
    ### BEGIN SOLUTION
    return F.mse_loss(model(schedule.q_sample(x0, t, noise), t), noise)
    ### END SOLUTION


# %% grade_id="loss_tests" points=2
_t_s = NoiseSchedule(linear_beta_schedule(1000))
_t_x0, _t_eps, _t_tt = torch.rand(4, 1, 6, 6) * 2 - 1, torch.randn(4, 1, 6, 6), torch.tensor([0, 10, 500, 999])
_t_l = diffusion_loss(lambda x, t: torch.zeros_like(x), _t_x0, _t_tt, _t_eps, _t_s)
utils.assert_close(_t_l, (_t_eps ** 2).mean(), "потери модели, которая всегда предсказывает 0")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
import types as _t_types


def _t_reference(betas):
    """Расписание, посчитанное здесь, чтобы эти тесты не зависели от вашего NoiseSchedule."""
    b = betas.double()
    ab = torch.cumprod(1 - b, 0)
    abp = torch.cat([ab.new_ones(1), ab[:-1]])
    ns = _t_types.SimpleNamespace(betas=b.float(), alphas=(1 - b).float(), alphas_cumprod=ab.float(),
                                  alphas_cumprod_prev=abp.float(), posterior_variance=(b * (1 - abp) / (1 - ab)).float())

    def q_sample(x0, t, noise):
        a = ns.alphas_cumprod[t].view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    ns.q_sample = q_sample
    return ns


class _TOracle(nn.Module):
    """Знает x0, поэтому точно восстанавливает настоящий шум по x_t: eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar)."""

    def __init__(self, x0, schedule):
        super().__init__()
        self.x0, self.schedule, self.calls = x0, schedule, []

    def forward(self, x, t):
        self.calls.append(t.detach().clone())
        abar = self.schedule.alphas_cumprod[t].view(-1, *([1] * (x.dim() - 1)))
        return (x - abar.sqrt() * self.x0[: len(x)]) / (1 - abar).sqrt()


_t_s = _t_reference(torch.linspace(1e-4, 0.02, 1000))
# Потеря оракула равна 0; потеря — простое среднее по всем элементам.
_t_oracle = _TOracle(_t_x0, _t_s)
_t_lo = diffusion_loss(_t_oracle, _t_x0, _t_tt, _t_eps, _t_s)
assert float(_t_lo) < 1e-8, f"у модели, знающей настоящий шум, потери должны быть 0, получено {float(_t_lo):.3g}"
assert len(_t_oracle.calls) == 1 and torch.equal(_t_oracle.calls[0], _t_tt), "модель получает те же шаги t"
_t_pred = torch.randn(4, 1, 6, 6)
utils.assert_close(diffusion_loss(lambda x, t: _t_pred, _t_x0, _t_tt, _t_eps, _t_s), ((_t_pred - _t_eps) ** 2).mean(),
                   "MSE между шумом и предсказанием")
# Модель должна видеть зашумлённую картинку, а не x0: модель, возвращающая свой вход, получает MSE от q_sample.
_t_want = ((_t_s.q_sample(_t_x0, _t_tt, _t_eps) - _t_eps) ** 2).mean()
utils.assert_close(diffusion_loss(lambda x, t: x, _t_x0, _t_tt, _t_eps, _t_s), _t_want, "модель получает q_sample(x0, t, noise)")
# Градиенты доходят до модели.
_t_lin = nn.Conv2d(1, 1, 1)
with utils.checking("backward() по потере: градиент должен доходить до модели (не отсоединяйте её выход)"):
    diffusion_loss(lambda x, t: _t_lin(x), _t_x0, _t_tt, _t_eps, _t_s).backward()
assert _t_lin.weight.grad is not None and float(_t_lin.weight.grad.abs().sum()) > 0, "потери должны быть дифференцируемы"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Обучение
#
# Шаг обучения: взять батч $x_0$, случайные шаги $t$ и шум $\varepsilon$, посчитать `diffusion_loss`, сделать шаг
# Adam. Приём из статьи DDPM: для генерации берут не сами веса, а их **экспоненциальное скользящее среднее**
# (EMA, $\theta_\text{ema} \leftarrow 0.999\,\theta_\text{ema} + 0.001\,\theta$): оно сглаживает шум последних шагов
# оптимизатора, и картинки заметно чище.

# %%
def train_diffusion(model, images, schedule, steps, batch_size=128, lr=1e-3, ema_decay=0.999, seed=0):
    """Учит ``model`` предсказывать шум; возвращает EMA-копию и потерю после каждого шага."""
    import copy

    torch.manual_seed(seed)
    dev = utils.model_device(model)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # Разогрев: 5% шагов, но не меньше двух (OneCycleLR делит на ноль, если разогрев кончается на шаге 0).
    warmup = min(0.3, max(0.05, 2 / steps))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=warmup)
    T = len(schedule.betas)
    losses = []
    model.train()
    for _ in utils.progress(range(steps), desc="обучение"):
        x0 = images[torch.randint(0, len(images), (batch_size,))].to(dev)
        t = torch.randint(0, T, (batch_size,), device=dev)
        loss = diffusion_loss(model, x0, t, torch.randn_like(x0), schedule)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
                p_ema.lerp_(p, 1 - ema_decay)
        losses.append(loss.item())
    model.eval()
    return ema, losses


# %% [markdown]
# ## 6. Обратный процесс: DDPM
#
# Зная $x_t$ и предсказанный шум $\hat\varepsilon = \varepsilon_\theta(x_t, t)$, можно оценить $x_0$:
# $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon)/\sqrt{\bar\alpha_t}$. Апостериорное распределение прямого процесса
# $q(x_{t-1} \mid x_t, x_0)$ — гауссиана со средним
# $\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t$
# и дисперсией $\tilde\beta_t = \beta_t\,\frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}$ (это `posterior_variance`). Подставив $\hat x_0$,
# получаем шаг DDPM:
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\hat\varepsilon\Big) + \sqrt{\tilde\beta_t}\,z,
# \qquad z \sim \mathcal N(0, I),$$
#
# и на последнем шаге (индекс `t = 0`) шум **не добавляется**: возвращаем само среднее.
#
# ### Упражнение 5: `p_sample` и `sample`
#
# - `p_sample(model, x_t, t, schedule)`: `t` — обычное целое число, общее для всего батча; модели передайте
#   `LongTensor` формы `(B,)`, заполненный `t`, на устройстве `x_t`. Верните $x_{t-1}$ по формуле выше.
# - `sample(model, shape, schedule)`: начните с $x_T \sim \mathcal N(0, I)$ формы `shape` на устройстве модели
#   (`utils.model_device(model)`), пройдите `t = T-1, …, 0` вызовами `p_sample` и верните $x_0$. Оберните цикл в
#   `utils.progress(...)`, чтобы видеть индикатор.
#
# Обе функции — только вывод: пометьте их `@torch.no_grad()`.

# %% grade_id="sampling" solution=true
@torch.no_grad()
def p_sample(model, x_t, t, schedule):
    ### BEGIN SOLUTION
    t_batch = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
    eps = model(x_t, t_batch)
    beta, alpha, abar = float(schedule.betas[t]), float(schedule.alphas[t]), float(schedule.alphas_cumprod[t])
    mean = (x_t - beta / math.sqrt(1 - abar) * eps) / math.sqrt(alpha)
    if t == 0:
        return mean
    return mean + math.sqrt(float(schedule.posterior_variance[t])) * torch.randn_like(x_t)
    ### END SOLUTION


@torch.no_grad()
def sample(model, shape, schedule):
    ### BEGIN SOLUTION
    x = torch.randn(shape, device=utils.model_device(model))
    for t in utils.progress(reversed(range(len(schedule.betas))), desc="DDPM", total=len(schedule.betas)):
        x = p_sample(model, x, t, schedule)
    return x
    ### END SOLUTION


# %% grade_id="sampling_tests" points=4
_t_s = NoiseSchedule(linear_beta_schedule(1000))
_t_x = torch.randn(3, 1, 5, 5)
utils.assert_shape(p_sample(lambda x, t: torch.zeros_like(x), _t_x, 10, _t_s), (3, 1, 5, 5), "p_sample")
utils.assert_close(p_sample(lambda x, t: torch.zeros_like(x), _t_x, 0, _t_s), _t_x / _t_s.alphas[0].sqrt(),
                   "p_sample при t = 0 и нулевом предсказании шума", atol=1e-4, rtol=1e-3)
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
import types as _t_types


def _t_reference(betas):
    """Расписание, посчитанное здесь, чтобы эти тесты не зависели от вашего NoiseSchedule."""
    b = betas.double()
    ab = torch.cumprod(1 - b, 0)
    abp = torch.cat([ab.new_ones(1), ab[:-1]])
    ns = _t_types.SimpleNamespace(betas=b.float(), alphas=(1 - b).float(), alphas_cumprod=ab.float(),
                                  alphas_cumprod_prev=abp.float(), posterior_variance=(b * (1 - abp) / (1 - ab)).float())

    def q_sample(x0, t, noise):
        a = ns.alphas_cumprod[t].view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    ns.q_sample = q_sample
    return ns


class _TOracle(nn.Module):
    """Знает x0, поэтому точно восстанавливает настоящий шум по x_t: eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar)."""

    def __init__(self, x0, schedule):
        super().__init__()
        self.x0, self.schedule, self.calls = x0, schedule, []

    def forward(self, x, t):
        self.calls.append(t.detach().clone())
        abar = self.schedule.alphas_cumprod[t].view(-1, *([1] * (x.dim() - 1)))
        return (x - abar.sqrt() * self.x0[: len(x)]) / (1 - abar).sqrt()


_t_s = _t_reference(torch.linspace(1e-4, 0.02, 1000))
# Оракул: с настоящим шумом x0_hat точен, поэтому последний шаг возвращает сам x0 (без шума при t = 0).
torch.manual_seed(1)
_t_x0 = torch.rand(4, 1, 5, 5) * 2 - 1
_t_orc = _TOracle(_t_x0, _t_s)
_t_x1 = _t_s.q_sample(_t_x0, torch.zeros(4, dtype=torch.long), torch.randn_like(_t_x0))
utils.assert_close(p_sample(_t_orc, _t_x1, 0, _t_s), _t_x0, "шаг t = 0 с точным шумом должен вернуть x0 (без шума)",
                   atol=1e-4, rtol=1e-4)
assert _t_orc.calls[-1].dtype == torch.long and _t_orc.calls[-1].tolist() == [0, 0, 0, 0], \
    "модель получает LongTensor (B,), заполненный t"
# При t = 0 шума нет, что бы ни стояло там в таблице дисперсий (posterior_variance[0] равно 0, а betas[0] — нет).
_t_sb = _t_reference(torch.linspace(1e-4, 0.02, 1000))
_t_sb.posterior_variance = _t_sb.betas.clone()
utils.assert_close(p_sample(_TOracle(_t_x0, _t_sb), _t_x1, 0, _t_sb), _t_x0, "на шаге t = 0 шум не добавляется",
                   atol=1e-4, rtol=1e-4)


def _t_posterior_mean(x0, xt, t, s):
    ab, abp, b, a = s.alphas_cumprod[t], s.alphas_cumprod_prev[t], s.betas[t], s.alphas[t]
    return abp.sqrt() * b / (1 - ab) * x0 + a.sqrt() * (1 - abp) / (1 - ab) * xt


# При t > 0 шаг оракула — настоящее апостериорное q(x_{t-1} | x_t, x0): его среднее и дисперсия проверяются
# на 20000 копиях одного x_t (среднее — в пределах 5 стандартных ошибок, дисперсия — в пределах 4%).
for _t_step in (1, 3, 400, 999):
    _t_x0 = torch.rand(1, 1, 2, 2).repeat(20000, 1, 1, 1) * 2 - 1
    _t_xt = _t_s.q_sample(_t_x0, torch.full((20000,), _t_step), torch.randn(1, 1, 2, 2).repeat(20000, 1, 1, 1))
    _t_prev = p_sample(_TOracle(_t_x0, _t_s), _t_xt, _t_step, _t_s)
    _t_mu = _t_posterior_mean(_t_x0, _t_xt, _t_step, _t_s)
    _t_var = float(_t_s.posterior_variance[_t_step])
    _t_dev = (_t_prev - _t_mu)
    _t_se = (_t_var / 20000) ** 0.5
    assert float(_t_dev.mean(0).abs().max()) < 5 * _t_se + 1e-5, \
        f"t={_t_step}: среднее p_sample с точным шумом должно совпадать со средним апостериорного распределения"
    assert abs(float(_t_dev.var()) / _t_var - 1) < 0.04, \
        f"t={_t_step}: дисперсия шага {float(_t_dev.var()):.3g}, нужна posterior_variance = {_t_var:.3g}"
# sample: T вызовов от t = T-1 до 0, начиная с N(0, I); с оракулом результат — ровно x0.
_t_small = _t_reference(torch.linspace(0.05, 0.4, 6))
_t_x0 = torch.rand(3, 1, 4, 4) * 2 - 1
_t_orc = _TOracle(_t_x0, _t_small)
torch.manual_seed(0)
_t_out = sample(_t_orc, (3, 1, 4, 4), _t_small)
utils.assert_shape(_t_out, (3, 1, 4, 4), "sample(model, shape, schedule)")
assert [int(c[0]) for c in _t_orc.calls] == [5, 4, 3, 2, 1, 0], \
    f"sample проходит t = T-1, …, 0 по одному разу; получено {[int(c[0]) for c in _t_orc.calls]}"
utils.assert_close(_t_out, _t_x0, "sample с точным шумом должен вернуть x0", atol=1e-4, rtol=1e-4)
# Начинает с шума единичной дисперсии и случаен: два вызова различаются, нулевая модель даёт разбросанные значения.
_t_z = sample(lambda x, t: torch.zeros_like(x), (2000, 1, 1, 1), _t_reference(torch.full((1,), 0.5)))
assert abs(float(_t_z.std()) - 1 / 0.5 ** 0.5) < 0.08, "x_T должен быть из N(0, I)"
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Упражнение 6: DDIM — те же веса, в 20–50 раз меньше шагов
#
# DDPM делает $T = 1000$ вызовов сети на одно изображение. Song и др. (2021) заметили, что обученная так сеть
# годится и для другого, **немарковского** обратного процесса с теми же маргиналами $q(x_t \mid x_0)$, в котором можно
# прыгать сразу через много шагов. Возьмём равномерную подпоследовательность шагов $\tau_1 < \dots < \tau_S$ из
# `0, …, T-1` (например, `torch.linspace(0, T - 1, S).round().long()`), и для каждого шага $t = \tau_i$ с предыдущим
# $t' = \tau_{i-1}$ (для $i = 1$ считаем $\bar\alpha_{t'} = 1$):
#
# $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}},\qquad
# \sigma = \eta\sqrt{\frac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}\Big(1 - \frac{\bar\alpha_t}{\bar\alpha_{t'}}\Big)},\qquad
# x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\hat\varepsilon + \sigma z.$$
#
# При $\eta = 0$ шум не добавляется: генерация **детерминирована**, один и тот же $x_T$ всегда даёт одно и то же
# изображение (это позволяет, например, интерполировать в пространстве шумов). При $\eta = 1$ и $S = T$ получается
# DDPM.
#
# `ddim_sample(model, shape, schedule, num_steps=50, eta=0.0)`: начните с $x_T \sim \mathcal N(0, I)$ на устройстве
# модели, сделайте ровно `num_steps` вызовов модели от большего шага к меньшему (последний — на шаге 0) и верните
# $x_0$ (результат шага с $\bar\alpha_{t'} = 1$). Пометьте функцию `@torch.no_grad()`.

# %% grade_id="ddim" solution=true
@torch.no_grad()
def ddim_sample(model, shape, schedule, num_steps=50, eta=0.0):
    ### BEGIN SOLUTION
    T = len(schedule.betas)
    steps = torch.linspace(0, T - 1, num_steps).round().long().tolist()
    x = torch.randn(shape, device=utils.model_device(model))
    for i in utils.progress(reversed(range(num_steps)), desc="DDIM", total=num_steps):
        t = steps[i]
        abar = float(schedule.alphas_cumprod[t])
        abar_prev = float(schedule.alphas_cumprod[steps[i - 1]]) if i > 0 else 1.0
        eps = model(x, torch.full((shape[0],), t, dtype=torch.long, device=x.device))
        x0_hat = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
        sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
        x = math.sqrt(abar_prev) * x0_hat + math.sqrt(max(1 - abar_prev - sigma ** 2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn_like(x)
    return x
    ### END SOLUTION


# %% grade_id="ddim_tests" points=3
# Расписание для теста задано здесь (постоянные beta = 0,01, тогда alpha_bar_t = 0,99^(t+1)), а не вашим
# NoiseSchedule: ошибка в упражнении 1 не отнимает баллы этого упражнения.
import types as _t_types_visible

_t_s = _t_types_visible.SimpleNamespace(betas=torch.full((1000,), 0.01), alphas=torch.full((1000,), 0.99),
                                alphas_cumprod=0.99 ** torch.arange(1, 1001, dtype=torch.float32),
                                alphas_cumprod_prev=0.99 ** torch.arange(0, 1000, dtype=torch.float32))
_t_zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
utils.assert_shape(ddim_sample(_t_zero, (2, 1, 4, 4), _t_s, num_steps=10), (2, 1, 4, 4), "ddim_sample")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
import types as _t_types


def _t_reference(betas):
    """Расписание, посчитанное здесь, чтобы эти тесты не зависели от вашего NoiseSchedule."""
    b = betas.double()
    ab = torch.cumprod(1 - b, 0)
    abp = torch.cat([ab.new_ones(1), ab[:-1]])
    ns = _t_types.SimpleNamespace(betas=b.float(), alphas=(1 - b).float(), alphas_cumprod=ab.float(),
                                  alphas_cumprod_prev=abp.float(), posterior_variance=(b * (1 - abp) / (1 - ab)).float())

    def q_sample(x0, t, noise):
        a = ns.alphas_cumprod[t].view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    ns.q_sample = q_sample
    return ns


class _TOracle(nn.Module):
    """Знает x0, поэтому точно восстанавливает настоящий шум по x_t: eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar)."""

    def __init__(self, x0, schedule):
        super().__init__()
        self.x0, self.schedule, self.calls = x0, schedule, []

    def forward(self, x, t):
        self.calls.append(t.detach().clone())
        abar = self.schedule.alphas_cumprod[t].view(-1, *([1] * (x.dim() - 1)))
        return (x - abar.sqrt() * self.x0[: len(x)]) / (1 - abar).sqrt()


_t_s = _t_reference(torch.linspace(1e-4, 0.02, 1000))
# Оракул: с настоящим шумом каждый шаг DDIM сохраняет x0_hat = x0, поэтому результат — x0 при любой
# подпоследовательности шагов и любом eta.
for _t_steps, _t_eta in ((50, 0.0), (20, 0.0), (7, 1.0)):
    _t_x0 = torch.rand(3, 1, 4, 4) * 2 - 1
    _t_orc = _TOracle(_t_x0, _t_s)
    _t_out = ddim_sample(_t_orc, (3, 1, 4, 4), _t_s, num_steps=_t_steps, eta=_t_eta)
    utils.assert_close(_t_out, _t_x0, f"ddim_sample с точным шумом (num_steps={_t_steps}, eta={_t_eta}) должен вернуть x0",
                       atol=2e-3, rtol=1e-3)
    _t_ts = [int(c[0]) for c in _t_orc.calls]
    assert len(_t_ts) == _t_steps, f"num_steps={_t_steps}: модель вызвана {len(_t_ts)} раз"
    assert all(a > b for a, b in zip(_t_ts[:-1], _t_ts[1:], strict=True)) and _t_ts[-1] == 0, \
        f"шаги должны убывать до 0, получено {_t_ts[:3]}…{_t_ts[-3:]}"
    assert _t_ts[0] >= 1000 - 1000 // _t_steps - 1, f"первый шаг должен быть около T-1, получено {_t_ts[0]}"
    _t_gaps = [a - b for a, b in zip(_t_ts[:-1], _t_ts[1:], strict=True)]
    assert max(_t_gaps) - min(_t_gaps) <= 2, "подпоследовательность шагов должна быть равномерной"


# Гладкая модель, не оракул: при eta = 0 результат детерминирован при заданном x_T, при eta = 1 — нет.
class _TShrink(nn.Module):
    def forward(self, x, t):
        return 0.5 * x + 0.001 * t.view(-1, 1, 1, 1)


torch.manual_seed(3)
_t_a = ddim_sample(_TShrink(), (4, 1, 3, 3), _t_s, num_steps=10, eta=0.0)
torch.manual_seed(3)
_t_b = ddim_sample(_TShrink(), (4, 1, 3, 3), _t_s, num_steps=10, eta=0.0)
utils.assert_close(_t_a, _t_b, "при eta = 0 одинаковый x_T даёт одинаковый результат")


class _TRecord(nn.Module):
    """_TShrink, который запоминает шаги, на которых его вызывали."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def forward(self, x, t):
        self.steps.append(int(t[0]))
        return 0.5 * x + 0.001 * t.view(-1, 1, 1, 1)


def _t_ref_ddim(xT, s, steps):
    """Детерминированный DDIM в float64 по заданным убывающим шагам."""
    x = xT.double()
    for i, t in enumerate(steps):
        ab = s.alphas_cumprod[t].double()
        abp = s.alphas_cumprod[steps[i + 1]].double() if i + 1 < len(steps) else torch.tensor(1.0, dtype=torch.float64)
        e = 0.5 * x + 0.001 * t
        x0 = (x - (1 - ab).sqrt() * e) / ab.sqrt()
        x = abp.sqrt() * x0 + (1 - abp).sqrt() * e
    return x


torch.manual_seed(3)
_t_xT = torch.randn(4, 1, 3, 3)
_t_rec = _TRecord()
torch.manual_seed(3)
_t_r = ddim_sample(_t_rec, (4, 1, 3, 3), _t_s, num_steps=10, eta=0.0)
utils.assert_close(_t_r.double(), _t_ref_ddim(_t_xT, _t_s, _t_rec.steps), "ddim_sample при eta = 0 (формула DDIM)",
                   atol=1e-3, rtol=1e-3)
torch.manual_seed(3)
_t_c = ddim_sample(_TShrink(), (4, 1, 3, 3), _t_s, num_steps=10, eta=1.0)
assert float((_t_c - _t_a).abs().max()) > 1e-3, "при eta = 1 должен добавляться шум"
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Готовая сеть курса и ваша сеть
#
# Хорошие образцы требуют больше обучения, чем позволяет CPU за минуту. Поэтому в `data/checkpoints/` лежит сеть,
# обученная отдельным скриптом курса ровно с этим U-Net, этим расписанием и этой функцией потерь (как и
# сколько — печатается ниже из файла контрольной точки). Правило простое: есть контрольная точка — загружаем,
# нет — обучаем. Её веса подходят к вашему `UNet`, если слои названы, как в таблице раздела 4; иначе сеть
# загружается как программа `torch.export`, которой ваш класс не нужен.
#
# Вашу сеть мы тоже обучаем — несколько десятков шагов в быстром режиме и несколько сотен в полном, чтобы увидеть,
# что потери падают; если готовой сети нет, в полном режиме ваша сеть обучается с настройками готовой, но 5000
# шагов вместо 11 800 (минуты на GPU, около часа на CPU), и генерирует сама.

# %%
def load_course_unet():
    """Готовая сеть курса и запись о её обучении или (None, None), если контрольной точки нет.

    Веса загружаются в ваш UNet, если его слои названы, как в таблице; иначе та же сеть загружается
    как программа torch.export, которой не нужен класс на Python.
    """
    try:
        ckpt = torch.load(utils.datasets.subset_file("checkpoints/ddpm_mnist.pt"), map_location="cpu",
                          weights_only=True)
    except (OSError, KeyError, utils.DataFileError) as err:
        print(f"Готовой сети нет ({err}).")
        return None, None
    try:
        # Ширина сети записана в контрольной точке (старые точки её не пишут: там 32, значение по умолчанию).
        net = UNet(base_channels=ckpt["info"].get("base_channels", 32))
        net.load_state_dict(ckpt["state_dict"])  # веса, сохранённые во float16, приводятся к float32
        print("Веса готовой сети загружены в ваш UNet.")
        # channels_last — другой порядок хранения тензоров: свёртки на CPU примерно в 1.5 раза быстрее, веса те же.
        return net.to(device, memory_format=torch.channels_last).eval(), ckpt
    except (RuntimeError, TypeError):
        print("Ваш UNet устроен не так, как в таблице: загружаем готовую сеть как программу torch.export.")
    try:
        program = torch.export.load(utils.datasets.subset_file("checkpoints/ddpm_mnist.pt2")).module()
        return program.to(device), ckpt
    except Exception as err:  # noqa: BLE001 -- старый torch не читает программу: сообщаем об этом и обучаем сами
        print(f"Программу загрузить не удалось ({type(err).__name__}: {err}).")
        return None, None


schedule = schedules["линейное"]
course_net, course_ckpt = load_course_unet()
if course_ckpt is not None:
    info = course_ckpt["info"]
    print(f"Готовая сеть: UNet(base_channels={info.get('base_channels', 32)}), {utils.grouped(info['parameters'])} параметров, "
          f"{info['steps']} шагов Adam (батч {info['batch_size']}, "
          f"lr {info['lr']}, EMA {info['ema_decay']}) на {info['n_train']} изображениях MNIST, "
          f"{info['seconds'] / 60:.0f} мин на {utils.machine_words(info['device'])}; итоговые потери {info['final_loss']}.")

own_steps = CFG["train_steps"] if course_net is not None or FAST else 5000
own_net = UNet().to(device)
print(f"параметров в вашем UNet: {utils.grouped(sum(p.numel() for p in own_net.parameters()))}; обучаем {own_steps} шагов")
start = time.perf_counter()
own_ema, own_losses = train_diffusion(own_net, x_train, schedule, steps=own_steps,
                                      batch_size=utils.by_mode(16, CFG["batch_size"]), lr=CFG["lr"])
print(f"{own_steps} шагов за {time.perf_counter() - start:.1f} с; потери: первые 10 шагов "
      f"{np.mean(own_losses[:10]):.3f}, последние 10 — {np.mean(own_losses[-10:]):.3f}")
net = course_net if course_net is not None else own_ema

fig, ax = plt.subplots(1, 2, figsize=(11, 3.2))
ax[0].plot(own_losses, alpha=0.8)
ax[0].set(title="ваша сеть: потери по шагам", xlabel="шаг", ylabel="MSE шума", yscale="log")
if course_ckpt is not None:
    curve = course_ckpt["loss_curve"]
    ax[1].plot(np.arange(len(curve)) * 10, curve, alpha=0.6)
    ax[1].set(title="готовая сеть: потери по шагам", xlabel="шаг", yscale="log")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 9. Образцы и траектория расшумления
#
# Сначала быстрые образцы: DDIM за 50 шагов (в разделе 10 измерим, чем это отличается от полного DDPM; в быстром
# режиме там оцениваются эти же образцы, чтобы не генерировать их дважды). Затем
# настоящий DDPM — ваша `sample`, все 1000 шагов `p_sample`. Чтобы увидеть траекторию, обернём сеть в «регистратор»:
# он ничего не меняет в вычислениях, но запоминает вход сети $x_t$ и её оценку $\hat x_0$ на нескольких шагах.
# Крупная форма цифры появляется рано, детали — в последние сотни шагов.

# %%
def generate(sampler, n, batch=250, seed=0):
    """``n`` изображений из ``sampler(shape)`` пачками, обрезанных до [-1, 1], на CPU."""
    torch.manual_seed(seed)
    return torch.cat([sampler((min(batch, n - i), 1, 28, 28)).cpu() for i in range(0, n, batch)]).clamp(-1, 1)


# Раздел 10 оценивает DDIM-50 по n_eval образцам. Если он не сгенерирует их сам для замера времени (быстрый
# режим: n_ddpm < n_eval), генерируем их здесь, один раз; иначе здесь хватит 64 образцов для картинки.
n_ddim50 = CFG["n_eval"] if CFG["n_ddpm"] < CFG["n_eval"] else 64
ddim50_images = generate(lambda shape: ddim_sample(net, shape, schedule, num_steps=50), n_ddim50)
utils.show_images(ddim50_images[: utils.by_mode(32, 64)], nrow=16, value_range=(-1, 1), title="DDIM, 50 шагов");


# %%
class TrajectoryRecorder(nn.Module):
    """Обёртка сети, предсказывающей шум: на выбранных шагах запоминает x_t и оценку x0 для первых изображений."""

    def __init__(self, net, schedule, keep, n_images=3):
        super().__init__()
        self.net, self.schedule, self.keep, self.n = net, schedule, set(keep), n_images
        self.x_t, self.x0_hat = {}, {}

    def forward(self, x, t):
        eps = self.net(x, t)
        step = int(t[0])
        if step in self.keep and step not in self.x_t:
            abar = float(self.schedule.alphas_cumprod[step])
            self.x_t[step] = x[: self.n].clamp(-1, 1).cpu()
            self.x0_hat[step] = ((x - math.sqrt(1 - abar) * eps) / math.sqrt(abar))[: self.n].clamp(-1, 1).cpu()
        return eps


keep = [999, 800, 600, 400, 300, 200, 100, 50, 0]
recorder = TrajectoryRecorder(net, schedule, keep)
start = time.perf_counter()
ddpm_images = generate(lambda shape: sample(recorder, shape, schedule), CFG["n_ddpm"])
ddpm_seconds = time.perf_counter() - start
print(f"DDPM: {ddpm_seconds:.1f} с на {CFG['n_ddpm']} изобр.")
rows = {}
for i in range(len(recorder.x_t[keep[0]])):  # первые 3 образца (в быстром режиме их всего n_ddpm = 2)
    rows[f"x_t, образец {i + 1}"] = torch.stack([recorder.x_t[t][i] for t in keep])
    rows[f"оценка x0, образец {i + 1}"] = torch.stack([recorder.x0_hat[t][i] for t in keep])
utils.plot_image_rows(rows, value_range=(-1, 1), col_titles=[f"t={t}" for t in keep]);

# %% [markdown]
# ## 10. DDPM против DDIM: время и качество
#
# Одна и та же сеть, четыре сэмплера: DDPM, детерминированный DDIM ($\eta = 0$) на 50 и 20 шагах и стохастический
# DDIM с $\eta = 1$ на 50 шагах — он добавляет на каждом большом шаге шум той же величины, что DDPM добавил бы при
# таком прыжке. Скорость меряем на одинаковом числе изображений (`n_ddpm`), качество — FID-подобной оценкой курса
# (признаки маленького классификатора MNIST, глава 3; **не** сравнима с Inception FID из статей) и покрытием классов.
# В быстром режиме полный DDPM запускается лишь для нескольких изображений, и оценивается только
# детерминированный DDIM-50 (у остальных сэмплеров — только время); ниже таблицы — те же измерения на 1000
# изображениях, записанные в контрольную точку готовой сети при её обучении.
#
# Две строки помогают читать оценку. **«Настоящие изображения»** — оценка стольких же настоящих тестовых цифр, не
# входивших в эталонный набор. Идеальный генератор не получит меньше: средние и ковариации признаков по конечной
# выборке сами шумят. На 1000 изображениях это {{result checkpoint:ddpm_mnist.pt evaluation.real.fid .1f}} (запись готовой
# сети), на 100 в быстром режиме — {{result 05_ddpm fast.values.real_image_score .0f}}: чем меньше выборка, тем больше
# этот порог, поэтому оценки быстрого режима грубы. **«Разброс»** — суммарная дисперсия признаков
# образцов, делённая на ту же величину у тестовых цифр: 1 — образцы так же разнообразны, как данные, меньше 1 — однообразнее. Это
# одна из двух частей расстояния Фреше (вторая — сдвиг средних), вынесенная отдельно.

# %%
def score(images):
    """Оценка в духе FID, разброс признаков и покрытие классов; None, если изображений слишком мало для 128-мерной статистики."""
    if len(images) < 100:
        return None
    cov = utils.metrics.class_coverage(images, value_range="-11")
    return {"fid": utils.metrics.fid_score(images, value_range="-11"),
            "spread": utils.metrics.feature_spread(images, value_range="-11"), **cov}


ddpm_key = f"DDPM, {T} шагов"
results = {ddpm_key: {"seconds": ddpm_seconds, "n_score": len(ddpm_images), "score": score(ddpm_images)}}
samples_by_sampler = {ddpm_key: ddpm_images[:10]}
for steps, eta in ((50, 0.0), (20, 0.0), (50, 1.0)):
    name = f"DDIM, {steps} шагов" + (f", η={eta:g}" if eta else "")

    def sampler(shape, steps=steps, eta=eta):
        return ddim_sample(net, shape, schedule, num_steps=steps, eta=eta)

    start = time.perf_counter()
    images = generate(sampler, CFG["n_ddpm"])
    seconds = time.perf_counter() - start
    if len(images) < CFG["n_eval"] and (steps, eta) == (50, 0.0):
        images = ddim50_images  # образцы раздела 9: их n_eval
    elif len(images) < CFG["n_eval"] and not FAST:  # быстрый режим оценивает только DDIM-50
        images = generate(sampler, CFG["n_eval"])
    results[name] = {"seconds": seconds, "n_score": len(images), "score": score(images)}
    samples_by_sampler[name] = images[:10]

print(f"Время на {CFG['n_ddpm']} изображениях; качество на столбце «изобр.»")
print(f"{'сэмплер':<24}{'время, с':>10}{'ускорение':>11}{'FID-оценка':>12}{'разброс':>9}{'мин. доля':>11}"
      f"{'уверенных':>11}{'изобр.':>8}")
for name, r in results.items():
    s = r["score"]
    speedup = results[ddpm_key]["seconds"] / r["seconds"]
    quality = (f"{s['fid']:>12.1f}{s['spread']:>9.2f}{s['min_share']:>11.1%}{s['confident_share']:>11.1%}" if s
               else f"{'—':>12}{'—':>9}{'—':>11}{'—':>11}")
    print(f"{name:<24}{r['seconds']:>10.1f}{speedup:>10.1f}×{quality}{r['n_score']:>8}")
floor = utils.metrics.real_image_score(CFG["n_eval"])
print(f"{'настоящие изображения':<24}{'—':>10}{'—':>11}{floor:>12.1f}{'≈1':>9}{'':>22}{CFG['n_eval']:>8}")

utils.plot_image_rows(samples_by_sampler, value_range=(-1, 1));

ddim50 = results["DDIM, 50 шагов"]
utils.summary([
    ("own_net_steps", "шагов обучения вашей сети", own_steps),
    ("own_net_loss_first10", "её потери, первые 10 шагов", float(np.mean(own_losses[:10])), ".3f"),
    ("own_net_loss_last10", "её потери, последние 10 шагов", float(np.mean(own_losses[-10:])), ".3f"),
    ("ddim50_fid", f"FID-оценка DDIM-50 на {ddim50['n_score']} изобр.", ddim50["score"]["fid"], ".1f"),
    ("ddim50_min_share", "наименьшая доля цифры у DDIM-50", ddim50["score"]["min_share"], ".1%"),
    ("real_image_score", f"настоящие изображения, {CFG['n_eval']} шт.", floor, ".1f"),
    ("ddpm_seconds_per_image", "DDPM, секунд на изображение", ddpm_seconds / CFG["n_ddpm"], ".2f"),
])

# %%
shipped = course_ckpt["info"].get("evaluation") if course_ckpt is not None and course_net is not None else None
if shipped:
    names = {"ddpm": ddpm_key, "ddim50": "DDIM, 50 шагов", "ddim20": "DDIM, 20 шагов",
             "ddim50_eta1": "DDIM, 50 шагов, η=1", "ddim20_eta1": "DDIM, 20 шагов, η=1"}
    where = utils.machine_words(course_ckpt["info"].get("evaluation_device", course_ckpt["info"]["device"]))
    print(f"Готовая сеть, 1000 изображений на сэмплер, {where}:")
    print(f"{'сэмплер':<24}{'время, с':>10}{'ускорение':>11}{'FID-оценка':>12}{'разброс':>9}{'мин. доля':>11}"
          f"{'уверенных':>11}")
    for key, r in shipped.items():
        if key == "real":  # не сэмплер: оценка 1000 настоящих изображений, печатается ниже
            continue
        timing = f"{r['seconds']:>10.1f}{shipped['ddpm']['seconds'] / r['seconds']:>10.1f}×"
        print(f"{names.get(key, key):<24}{timing}"
              f"{r['fid']:>12.1f}{r['spread']:>9.2f}{r['min_share']:>11.1%}{r['confident_share']:>11.1%}")
    print(f"{'настоящие изображения':<24}{'—':>10}{'—':>11}{shipped['real']['fid']:>12.1f}{'≈1':>9}")
    for other, ev in course_ckpt["info"].get("evaluation_elsewhere", {}).items():  # например, GPU, на котором обучали
        print(f"На {other}: DDPM {ev['ddpm']['seconds']:.1f} с, DDIM-50 {ev['ddim50']['seconds']:.1f} с "
              f"(в {ev['ddpm']['seconds'] / ev['ddim50']['seconds']:.0f} раз быстрее); FID-оценки "
              f"{ev['ddpm']['fid']:.1f} и {ev['ddim50']['fid']:.1f} (другой генератор случайных чисел).")
    print(f"\nЦели: DDIM-50 быстрее DDPM не менее чем в 15 раз, оценка не хуже чем в 1.5 раза; "
          f"наименьшая доля цифры у DDPM {shipped['ddpm']['min_share']:.1%} (цель ≥ 5%).")
    for key in ("ddim50", "ddim50_eta1"):
        if key in shipped:
            print(f"{names[key]}: в {shipped['ddpm']['seconds'] / shipped[key]['seconds']:.1f} раза быстрее DDPM, "
                  f"отношение оценок к DDPM {shipped[key]['fid'] / shipped['ddpm']['fid']:.2f}")
    plt.figure(figsize=(6, 2.6))
    plt.bar(range(10), shipped["ddpm"]["histogram"], color="tab:blue")
    plt.axhline(0.05, color="tab:red", ls="--", label="5%")
    plt.xticks(range(10))
    plt.title("DDPM, 1000 образцов: доли цифр по классификатору")
    plt.legend()
    plt.show()

# %% [markdown]
# Время растёт почти пропорционально числу вызовов сети: 1000 шагов DDPM против 50 шагов DDIM — в 20 раз меньше
# работы, и измеренное ускорение близко к 20. Цели курса: DDIM-50 быстрее DDPM не меньше чем в 15 раз и хуже его
# по оценке не больше чем в 1,5 раза.
#
# **Находка: детерминированному DDIM этой сети не хватает шума.** У готовой сети стохастический DDIM-50
# ($\eta = 1$) получает {{result checkpoint:ddpm_mnist.pt evaluation.ddim50_eta1.fid .1f}} при {{result checkpoint:ddpm_mnist.pt evaluation.ddpm.fid .1f}} у DDPM и укладывается в
# цель, а детерминированный ($\eta = 0$) — {{result checkpoint:ddpm_mnist.pt evaluation.ddim50.fid .1f}}, заметно хуже. На образцах видно, что
# теряется: у $\eta = 0$ чаще «недорисованные» цифры, классификатор реже в них уверен, «разброс» признаков ниже;
# классы при этом представлены ровно. Объяснение: сеть предсказывает шум с ошибкой, детерминированные шаги
# переносят каждую ошибку в готовое изображение, а свежий шум стохастического шага её «размывает», и следующие шаги
# расшумляют уже исправленную точку — как делает DDPM (Karras и др., 2022, так же объясняют пользу стохастического
# сэмплирования для неидеальной сети). В статье DDIM при 50 шагах, наоборот, лучше $\eta = 0$, но там сеть в
# десятки раз больше и обучена в десятки раз дольше. Цена шума: генерация снова случайна, и один $x_T$ больше не
# задаёт одно изображение. Проверьте на своей сети (домашнее задание 4).

# %% [markdown]
# ## 11. GAN против диффузии: измеренное сравнение
#
# Вместо качественной таблицы «быстрая/медленная генерация», «mode collapse / покрывает распределение» сравним
# числа. Время генерации GAN меряем здесь же на генераторе той же архитектуры, что в главе 4 (для времени
# обученность весов не важна); диффузия — готовая сеть курса из таблицы выше. Качество DCGAN берём из полного
# режима главы 4 (та же метрика, 1000 образцов): FID-оценка {{result 04_dcgan full.values.dcgan_fid .1f}}, наименьшая доля
# цифры {{result 04_dcgan full.values.dcgan_min_share .1%}} после {{result 04_dcgan full.values.seconds_per_model}} с обучения на GPU.

# %%
dcgan_like = nn.Sequential(  # слои генератора главы 4 (base_channels=64), не обученные: только для замера времени
    nn.ConvTranspose2d(100, 256, 7, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
    nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
    nn.ConvTranspose2d(128, 1, 4, 2, 1), nn.Tanh(),
).to(device).eval()
with torch.no_grad():
    start = time.perf_counter()
    for _ in range(4):
        dcgan_like(torch.randn(250, 100, 1, 1, device=device))
    gan_seconds = time.perf_counter() - start

rows = [("DCGAN (глава 4)", 1, gan_seconds)]
if shipped:
    # Время генерации 1000 изображений диффузией: в полном режиме меряем здесь, иначе берём замер из записи
    # (1000 изображений пачками по 250): по горстке изображений о скорости не судят.
    live = CFG["n_ddpm"] >= 1000
    for key, name, calls in (("ddpm", ddpm_key, T), ("ddim50", "DDIM, 50 шагов", 50)):
        sec = results[name]["seconds"] * 1000 / CFG["n_ddpm"] if live else shipped[key]["seconds"]
        rows.append((name, calls, sec))
    print("время GAN измерено здесь; время диффузии — " + ("здесь" if live else "из записи готовой сети"))
print(f"{'модель':<18}{'вызовов сети':>14}{'с на 1000 изобр.':>18}")
for name, calls, sec in rows:
    print(f"{name:<18}{calls:>14}{sec:>18.1f}")

# %% [markdown]
# Что показывают числа (проверьте на своих):
# - **скорость:** GAN делает один проход сети, DDPM — тысячу; даже DDIM-50 медленнее GAN в десятки раз;
# - **качество:** готовая диффузионная сеть курса получает FID-оценку {{result checkpoint:ddpm_mnist.pt evaluation.ddpm.fid .1f}} против
#   {{result 04_dcgan full.values.dcgan_fid .1f}} у DCGAN из главы 4 при сравнимом времени обучения на одном GPU (минуты);
# - **покрытие:** у DDPM наименьшая доля цифры {{result checkpoint:ddpm_mnist.pt evaluation.ddpm.min_share .1%}}, у DCGAN —
#   {{result 04_dcgan full.values.dcgan_min_share .1%}}: GAN легче недодаёт некоторые цифры — слабая форма коллапса мод;
# - **устойчивость:** кривая потерь диффузии монотонно падает (раздел 8); у GAN потери колеблются, и по ним нельзя
#   понять, стало ли лучше (глава 3).

# %% [markdown]
# ## 12. Вопросы (проверяет преподаватель)
#
# **Вопрос 1.** Почему диффузионная модель генерирует медленно? За счёт чего DDIM ускоряет генерацию без
# переобучения сети и чем за это приходится платить? Опирайтесь на свою таблицу из раздела 10.

# %% [markdown] grade_id="q_slow" points=2 solution=true
# ### BEGIN SOLUTION
# Каждый шаг обратного процесса — полный проход U-Net, и DDPM делает их T = 1000: шаги должны быть малыми, чтобы
# гауссово приближение обратного шага было верным. DDIM использует ту же сеть (обучение зависит только от
# маргиналов q(x_t | x0), а они у DDIM те же) и прыгает по подпоследовательности шагов, детерминированно
# двигаясь к оценке x0: 50 вызовов вместо 1000, около 20× быстрее. Плата — потеря качества, растущая при
# уменьшении числа шагов: у сети курса детерминированный DDIM-50 (eta = 0) заметно хуже DDPM
# ({{result checkpoint:ddpm_mnist.pt evaluation.ddim50.fid .1f}} против {{result checkpoint:ddpm_mnist.pt evaluation.ddpm.fid .1f}}), 20 шагов — ещё хуже ({{result checkpoint:ddpm_mnist.pt evaluation.ddim20.fid .1f}});
# стохастический DDIM (eta = 1) на тех же 50 шагах ближе к DDPM ({{result checkpoint:ddpm_mnist.pt evaluation.ddim50_eta1.fid .1f}}), но теряет
# детерминированность: один x_T больше не задаёт одно изображение.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 2.** Почему диффузионные модели покрывают распределение данных лучше, чем GAN?

# %% [markdown] grade_id="q_coverage" points=2 solution=true
# ### BEGIN SOLUTION
# Диффузия обучается правдоподобным способом: MSE по шуму — взвешенная вариационная граница на log p(x), и
# каждое обучающее изображение вносит вклад в потери; модель штрафуется за любую моду данных, которую она не
# умеет восстанавливать. Генератор GAN штрафуется только тогда, когда дискриминатор отличает его образцы, и может
# выдавать лишь часть мод (коллапс). Кроме того, генерация начинается с независимого шума, и на каждом шаге
# добавляется случайность, поэтому разные начальные точки ведут к разным модам.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 3.** В обратном шаге DDPM можно добавлять шум $\sqrt{\beta_t}\,z$ (так в некоторых реализациях), а у нас —
# $\sqrt{\tilde\beta_t}\,z$. Чем отличаются эти варианты и почему на последнем шаге шум не добавляют вовсе?

# %% [markdown] grade_id="q_variance" points=2 solution=true
# ### BEGIN SOLUTION
# Ho и др. пробовали обе дисперсии: σ² = β_t соответствует случаю x0 ~ N(0, I), σ² = β̃_t — случаю, когда x0
# известен точно; на практике обе дают похожие образцы, при больших t они почти равны, различие заметно при малых t,
# где β̃_t < β_t. β̃_t — дисперсия настоящего апостериорного распределения q(x_{t-1} | x_t, x0). На последнем шаге
# возвращается оценка x0: лишний шум испортил бы готовое изображение (β̃ на первом шаге равно 0).
# ### END SOLUTION

# %% [markdown]
# ## 13. Что дальше
#
# **Мы узнали:** прямой процесс и его замкнутую форму, расписания шума, U-Net с временным эмбеддингом, потери
# «предскажи шум», обратный процесс DDPM и сэмплер DDIM, как честно сравнивать скорость и качество генеративных
# моделей.
#
# **Дальше:** в главе 6 — обучение с подкреплением.
#
# **Домашнее задание:**
# 1. Обучите сеть с косинусным расписанием и сравните образцы и оценку при том же числе шагов.
# 2. Условная генерация: добавьте к `temb` эмбеддинг метки цифры и генерируйте нужную цифру
#    (classifier-free guidance: иногда заменяйте метку «пустой»).
# 3. Интерполяция: при $\eta = 0$ DDIM детерминирован — проинтерполируйте сферически между двумя $x_T$ и
#    посмотрите на цепочку цифр.
# 4. Шум там, где он нужен: сделайте $\eta$ в своём `ddim_sample` функцией шага $t$ (шум только на части шагов)
#    и найдите на своей сети, обученной в полном режиме, на каких шагах шум улучшает оценку DDIM-50 сильнее
#    всего: в начале траектории (большие $t$), в середине или в конце?
