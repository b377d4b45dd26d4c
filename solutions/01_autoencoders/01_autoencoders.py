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
# # Глава 1. Автоэнкодеры
#
# {{badges}}
#
# **Цели главы.** После этой главы вы сможете:
# - объяснить, как автоэнкодер сжимает данные через «бутылочное горлышко» и почему это обучение без учителя;
# - собрать и обучить полносвязный автоэнкодер на MNIST и сравнить его с PCA;
# - построить шумоподавляющий (denoising) и разреженный (sparse) автоэнкодеры;
# - использовать ошибку восстановления для поиска аномалий и измерить качество через ROC AUC.
#
# **Что нужно знать заранее:** PyTorch (`nn.Module`, оптимизатор, цикл обучения), MSE, основы PCA.
#
# **Время:** 2–3 часа. В быстром режиме (`FAST_MODE = True` в ячейке подготовки или `COURSE_FAST=1`) весь ноутбук выполняется примерно за минуту на CPU;
# в полном режиме обучение идёт дольше и на всех доступных данных.
#
# **Как работать с ноутбуком.** Ячейки с `# ВАШ КОД ЗДЕСЬ` — упражнения. Сразу после каждого идёт ячейка
# с тестами: запустите её, чтобы проверить решение (при автопроверке добавятся скрытые тесты).
# Письменные вопросы в конце проверяет преподаватель.

# %% [markdown]
# ## 0. Подготовка окружения
#
# Ячейка ниже находит пакет курса `utils` (в Colab сначала скачивает репозиторий), выбирает устройство
# (GPU, если он есть), фиксирует случайные зёрна и печатает, в каком режиме мы работаем.

# %%
{{setup_cell}}

# %% [markdown]
# Все гиперпараметры главы собраны в одном месте. `utils.by_mode(быстро, полностью)` выбирает значение
# по режиму: быстрый режим нужен для автопроверки и беглого знакомства, полный — для настоящих результатов.

# %%
CFG = dict(
    n_train=utils.by_mode(8000, None),   # None = все доступные обучающие изображения
    n_test=utils.by_mode(2000, None),
    batch_size=128,
    lr=1e-3,
    latent_dim=32,
    epochs=utils.by_mode(6, 30),
    dae_epochs=utils.by_mode(5, 30),
    sparse_epochs=utils.by_mode(3, 15),
    noise_factor=0.4,
    l1_weights=(0.0, 1e-4, 3e-4, 1e-3, 1e-2),
    tsne_points=utils.by_mode(800, 3000),
)
CFG

# %% [markdown]
# ## 1. Идея автоэнкодера
#
# Автоэнкодер — это сеть, которая учится **восстанавливать свой вход**. Она состоит из двух частей:
#
# - **энкодер** $f_\phi$ сжимает вход $x \in \mathbb{R}^{784}$ в короткий код $z = f_\phi(x) \in \mathbb{R}^{d}$, $d \ll 784$;
# - **декодер** $g_\theta$ восстанавливает по коду изображение $\hat x = g_\theta(z)$.
#
# Обе части обучаются вместе, минимизируя ошибку восстановления:
#
# $$\mathcal{L}(\phi, \theta) = \frac{1}{N}\sum_{i=1}^N \frac{1}{D}\,\lVert x_i - g_\theta(f_\phi(x_i)) \rVert_2^2 .$$
#
# Метки классов не нужны: учитель — сами данные. Самое важное в архитектуре — **узкое горлышко**:
# если бы код был не короче входа, сеть могла бы выучить тождественное отображение и ничего не узнать о данных.
# Узкий код заставляет её сохранять только самое существенное: толщину и наклон штрихов, форму цифры.
#
# Ниже — схема сети, которую мы построим (ширина столбика пропорциональна числу нейронов).

# %%
def draw_autoencoder(sizes=(784, 512, 256, 32, 256, 512, 784)):
    """Схема симметричного MLP-автоэнкодера: по столбику на слой."""
    fig, ax = plt.subplots(figsize=(8, 3))
    mid = len(sizes) // 2
    colors = ["tab:blue"] * mid + ["tab:red"] + ["tab:green"] * mid
    bars = [(i - 0.25, 0.0, 0.5, 0.3 + 2.7 * n / max(sizes), str(n), c)
            for i, (n, c) in enumerate(zip(sizes, colors, strict=True))]
    utils.draw_blocks(bars, ax=ax, alpha=0.75, fontsize=10, label_below=True)
    ax.text(mid / 2 - 0.5, 1.75, "энкодер $f_\\phi$", ha="center", color="tab:blue")
    ax.text(mid, 1.75, "код $z$", ha="center", color="tab:red")
    ax.text(mid + mid / 2 + 0.5, 1.75, "декодер $g_\\theta$", ha="center", color="tab:green")
    ax.set_xlim(-0.7, len(sizes) - 0.3)
    ax.set_ylim(-2.2, 2.1)
    ax.set_title("Полносвязный автоэнкодер 784 → 512 → 256 → 32 → 256 → 512 → 784")
    return fig


draw_autoencoder();

# %% [markdown]
# ### Данные
#
# Берём MNIST: изображения 28×28 превращаем в векторы длины 784 со значениями в $[0, 1]$.
# Загрузчик `utils.load_mnist` читает подмножество из папки `data/` репозитория (и проверяет контрольные суммы),
# а в полном режиме при наличии сети скачивает полный набор.

# %%
x_train, y_train = utils.load_mnist("train", n=CFG["n_train"], flatten=True)
x_test, y_test = utils.load_mnist("test", n=CFG["n_test"], flatten=True)
print(f"обучение: {tuple(x_train.shape)}, тест: {tuple(x_test.shape)}, "
      f"значения в [{x_train.min():.0f}, {x_train.max():.0f}]")
utils.show_images(x_train[:16], nrow=16, labels=y_train[:16].tolist(), title="Примеры из MNIST");

# %% [markdown]
# ## 2. Упражнение 1: класс `Autoencoder`
#
# Реализуйте `Autoencoder(input_dim=784, hidden_dims=(512, 256), latent_dim=32)` — наследник `nn.Module`:
#
# - подмодуль `self.encoder`: полносвязные слои `input_dim → hidden_dims[0] → … → hidden_dims[-1] → latent_dim`,
#   между ними ReLU; **после последнего слоя энкодера активации нет** (код может принимать любые значения);
# - подмодуль `self.decoder`: зеркально, `latent_dim → hidden_dims[-1] → … → hidden_dims[0] → input_dim`,
#   ReLU между слоями и `Sigmoid` на выходе, чтобы пиксели лежали в $[0, 1]$;
# - методы `encode(x)` → `(B, latent_dim)`, `decode(z)` → `(B, input_dim)`, `forward(x)` → реконструкция.
#
# Все аргументы конструктора должны учитываться: число и ширина слоёв берутся из `hidden_dims`
# (это может быть кортеж любой длины), а не записываются числами.
#
# *Подсказка:* удобно собрать список слоёв в цикле и передать его в `nn.Sequential(*layers)`.
#
# *Частая ловушка:* поставить ReLU и после последнего слоя энкодера, и перед `Sigmoid` декодера — «как после
# всех остальных слоёв». ReLU на коде обнуляет все отрицательные координаты (часть кода «умирает»),
# а ReLU перед `Sigmoid` делает все выходы не меньше $\sigma(0) = 0.5$ — чёрный фон восстановить нельзя.

# %% grade_id="autoencoder_class" solution=true
class Autoencoder(nn.Module):
    def __init__(self, input_dim=784, hidden_dims=(512, 256), latent_dim=32):
        super().__init__()
        ### BEGIN SOLUTION
        widths = [input_dim, *hidden_dims, latent_dim]
        enc = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            enc.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                enc.append(nn.ReLU())
        self.encoder = nn.Sequential(*enc)

        back = widths[::-1]
        dec = []
        for i, (a, b) in enumerate(zip(back[:-1], back[1:], strict=True)):
            dec.append(nn.Linear(a, b))
            dec.append(nn.ReLU() if i < len(back) - 2 else nn.Sigmoid())
        self.decoder = nn.Sequential(*dec)
        ### END SOLUTION

    def encode(self, x):
        ### BEGIN SOLUTION
        return self.encoder(x)
        ### END SOLUTION

    def decode(self, z):
        ### BEGIN SOLUTION
        return self.decoder(z)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.decode(self.encode(x))
        ### END SOLUTION


# %% grade_id="autoencoder_tests" points=4
# Видимые тесты: форма выходов, диапазон, forward = decode(encode(x)).
torch.manual_seed(0)
_t_model = Autoencoder()
_t_x = torch.rand(5, 784)
_t_z = _t_model.encode(_t_x).detach()
utils.assert_shape(_t_z, (5, 32), "encode(x)")
with utils.checking("decode(z) на кодах формы (5, 32): декодер должен принимать код размера latent_dim"):
    _t_r = _t_model.decode(_t_z).detach()
utils.assert_shape(_t_r, (5, 784), "decode(z)")
assert float(_t_r.min()) >= 0.0 and float(_t_r.max()) <= 1.0, "decode(z) должен возвращать значения в [0, 1]"
assert isinstance(_t_model.encoder, nn.Module) and isinstance(_t_model.decoder, nn.Module), \
    "нужны подмодули self.encoder и self.decoder"
utils.assert_close(_t_model(_t_x), _t_model.decode(_t_model.encode(_t_x)),
                   "forward(x) должен равняться decode(encode(x))")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
def _t_widths(module):
    return [m.out_features for m in module.modules() if isinstance(m, nn.Linear)]

# Ширины слоёв следуют каждому аргументу конструктора (ловит жёстко заданные размеры).
for _t_args, _t_enc, _t_dec in [
    (dict(), [512, 256, 32], [256, 512, 784]),
    (dict(input_dim=100, hidden_dims=(64,), latent_dim=3), [64, 3], [64, 100]),
    (dict(hidden_dims=(128, 64, 16), latent_dim=2), [128, 64, 16, 2], [16, 64, 128, 784]),
]:
    _t_m = Autoencoder(**_t_args)
    assert _t_widths(_t_m.encoder) == _t_enc, \
        f"Autoencoder({_t_args}): ширины слоёв энкодера {_t_widths(_t_m.encoder)}, ожидались {_t_enc}"
    assert _t_widths(_t_m.decoder) == _t_dec, \
        f"Autoencoder({_t_args}): ширины слоёв декодера {_t_widths(_t_m.decoder)}, ожидались {_t_dec}"
    _t_in = torch.rand(3, _t_args.get("input_dim", 784))
    utils.assert_shape(_t_m.encode(_t_in), (3, _t_args.get("latent_dim", 32)), f"encode при {_t_args}")
    utils.assert_shape(_t_m(_t_in), (3, _t_args.get("input_dim", 784)), f"forward при {_t_args}")

# Выход остаётся в [0, 1] даже при экстремальных кодах (ловит пропущенный Sigmoid).
_t_big = _t_model.decode(100 * torch.randn(64, 32)).detach()
assert float(_t_big.min()) >= 0.0 and float(_t_big.max()) <= 1.0, "выход декодера должен быть в [0, 1] при любом z"
# ...и может приближаться к 0 (ловит ReLU прямо перед Sigmoid, из-за которого выходы >= 0.5).
_t_lin = [m for m in _t_model.decoder.modules() if isinstance(m, nn.Linear)][-1]
with torch.no_grad():
    _t_lin.bias.fill_(-20.0)
assert float(_t_model.decode(torch.randn(4, 32)).detach().min()) < 0.01, \
    "декодер не может выдать чёрный пиксель: нет ли ReLU перед Sigmoid?"

# Код не сделан принудительно неотрицательным (ловит ReLU после последнего слоя энкодера).
torch.manual_seed(1)
_t_codes = Autoencoder().encode(torch.rand(256, 784)).detach()
assert float(_t_codes.min()) < 0.0, "код энкодера не должен проходить через ReLU на последнем слое"

# Градиенты доходят и до энкодера, и до декодера.
torch.manual_seed(2)
_t_m = Autoencoder(hidden_dims=(32, 16), latent_dim=4)
_t_x = torch.rand(8, 784)
_t_x_copy = _t_x.clone()
F.mse_loss(_t_m(_t_x), _t_x).backward()
assert torch.equal(_t_x, _t_x_copy), "forward не должен изменять вход"
for _t_name, _t_part in (("энкодер", _t_m.encoder), ("декодер", _t_m.decoder)):
    _t_grads = [p.grad for p in _t_part.parameters()]
    assert _t_grads and all(g is not None for g in _t_grads), f"градиент не доходит до параметров: {_t_name}"
    assert any(float(g.abs().sum()) > 0 for g in _t_grads), f"все градиенты нулевые: {_t_name}"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Упражнение 2: ошибка восстановления для каждого примера
#
# Напишите `reconstruction_error(model, x)`: по модели и батчу `x` формы `(B, D)` верните тензор формы `(B,)` —
# **среднеквадратичную ошибку по признакам** для каждого примера отдельно:
#
# $$e_i = \frac{1}{D} \sum_{j=1}^{D} \big(\hat x_{ij} - x_{ij}\big)^2, \qquad \hat x = \text{model}(x).$$
#
# Вычисление не должно строить граф вычислений (`torch.no_grad()`): это функция для оценки, а не для обучения.
# Она понадобится нам и для графиков обучения, и для поиска аномалий.

# %% grade_id="reconstruction_error_impl" solution=true
def reconstruction_error(model, x):
    ### BEGIN SOLUTION
    with torch.no_grad():
        return ((model(x) - x) ** 2).mean(dim=1)
    ### END SOLUTION


# %% grade_id="reconstruction_error_tests" points=2
torch.manual_seed(0)
_t_net = nn.Sequential(nn.Linear(10, 10), nn.Sigmoid())
_t_x = torch.rand(6, 10)
_t_err = reconstruction_error(_t_net, _t_x)
utils.assert_shape(_t_err, (6,), "reconstruction_error")
with torch.no_grad():
    _t_ref = torch.tensor([np.mean((_t_net(_t_x)[i].numpy() - _t_x[i].numpy()) ** 2) for i in range(6)])
utils.assert_close(_t_err, _t_ref, "ошибка по каждому примеру", atol=1e-6)
assert not _t_err.requires_grad, "результат не должен требовать градиента: используйте torch.no_grad()"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Другая модель и другой размер: аргумент используется, признаки усредняются (а не суммируются).
torch.manual_seed(3)
_t_net2 = nn.Sequential(nn.Linear(784, 20), nn.ReLU(), nn.Linear(20, 784), nn.Sigmoid())
_t_x2 = torch.rand(4, 784)
_t_x2_copy = _t_x2.clone()
_t_err2 = reconstruction_error(_t_net2, _t_x2)
with torch.no_grad():
    _t_ref2 = (_t_net2(_t_x2_copy).double() - _t_x2_copy.double()).pow(2).sum(dim=1) / 784
utils.assert_close(_t_err2, _t_ref2, "ошибка для модели 784→20→784", atol=1e-6)
assert torch.equal(_t_x2, _t_x2_copy), "reconstruction_error не должна изменять вход"
assert _t_err2.grad_fn is None, "граф вычислений не должен строиться"
# Батч из одного примера сохраняет размерность батча.
utils.assert_shape(reconstruction_error(_t_net2, _t_x2[:1]), (1,), "ошибка для батча из одного примера")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Обучение автоэнкодера
#
# Цикл обучения — обычный: батч → реконструкция → MSE → шаг Adam. Одна функция послужит всем моделям главы:
# аргумент `corrupt` портит вход (для шумоподавляющего автоэнкодера), а `loss_fn` заменяет MSE
# (для разреженного). После каждой эпохи считаем ошибку на тестовой выборке вашей функцией `reconstruction_error`.

# %%
def test_mse(model, x, corrupt=None, batch_size=1000):
    """Средняя ошибка восстановления на тесте; ``corrupt`` портит вход, цель остаётся чистой."""
    model.eval()
    errors = []
    for i in range(0, len(x), batch_size):
        clean = x[i:i + batch_size].to(device)
        noisy = corrupt(clean) if corrupt is not None else clean
        with torch.no_grad():
            errors.append(((model(noisy) - clean) ** 2).mean(dim=1).cpu())
    return torch.cat(errors).mean().item()


def train_autoencoder(model, epochs, corrupt=None, loss_fn=None, desc="обучение"):
    """Обучает на ``x_train``; возвращает MSE на обучении и тесте по эпохам, первым — MSE на тесте до обучения."""
    torch.manual_seed(0)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=CFG["lr"])
    loader = utils.make_loader(x_train, batch_size=CFG["batch_size"], seed=0)
    history = {"обучение": [], "тест": [], "тест до обучения": test_mse(model, x_test, corrupt)}
    for _ in utils.progress(range(epochs), desc=desc):
        model.train()
        total, count = 0.0, 0
        for (clean,) in loader:
            clean = clean.to(device)
            inputs = corrupt(clean) if corrupt is not None else clean
            if loss_fn is None:
                loss = F.mse_loss(model(inputs), clean)
            else:
                z = model.encode(inputs)
                loss = loss_fn(model.decode(z), clean, z)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(clean)
            count += len(clean)
        history["обучение"].append(total / count)
        history["тест"].append(test_mse(model, x_test, corrupt))
    return history


utils.seed_everything(42)
ae = Autoencoder(latent_dim=CFG["latent_dim"])
history = train_autoencoder(ae, CFG["epochs"], desc="автоэнкодер")
ae_mse = history["тест"][-1]
print(f"Тестовая MSE: до обучения {history['тест до обучения']:.4f} → после {ae_mse:.4f} "
      f"(в {history['тест до обучения'] / ae_mse:.1f} раза меньше)")
utils.plot_history({k: v for k, v in history.items() if isinstance(v, list)},
                   title="Автоэнкодер на MNIST", ylabel="MSE");

# %% [markdown]
# Посмотрим на восстановленные тестовые изображения. Код из 32 чисел в 24 раза короче входа,
# но цифры узнаваемы: теряются в основном мелкие детали и резкость штрихов.

# %%
ae.eval()
with torch.no_grad():
    recon = ae(x_test[:12].to(device)).cpu()
utils.plot_reconstructions(x_test[:12], recon, n=12, title="Тестовые цифры и их реконструкции");

# %% [markdown]
# ## 5. Автоэнкодер против PCA
#
# PCA — линейный автоэнкодер: код $z = W^\top (x - \mu)$, реконструкция $\hat x = \mu + W z$, где столбцы $W$ —
# первые $d$ главных компонент. Известно, что линейный автоэнкодер с MSE находит то же подпространство, что и PCA.
# Нелинейный автоэнкодер может изогнуть «поверхность» данных и при том же размере кода восстанавливать точнее.
# Проверим при $d = 32$ на одних и тех же данных.

# %%
from sklearn.decomposition import PCA

pca = PCA(n_components=CFG["latent_dim"], random_state=0).fit(x_train.numpy())
pca_recon = pca.inverse_transform(pca.transform(x_test.numpy()))
pca_mse = float(np.mean((pca_recon - x_test.numpy()) ** 2))
print(f"{'метод':<22}{'размер кода':>12}{'тестовая MSE':>14}")
print(f"{'PCA':<22}{CFG['latent_dim']:>12}{pca_mse:>14.4f}")
print(f"{'автоэнкодер':<22}{CFG['latent_dim']:>12}{ae_mse:>14.4f}")
print(f"Отношение MSE автоэнкодер / PCA: {ae_mse / pca_mse:.2f}"
      + ("  (в быстром режиме обучение короткое: сравнивайте в полном)" if FAST else ""))

# %% [markdown]
# ## 6. Латентное пространство
#
# Код автоэнкодера 32-мерный; чтобы на него посмотреть, спроецируем его на плоскость двумя способами:
# PCA (линейная проекция, сохраняет дальние расстояния) и t-SNE (нелинейная, сохраняет соседства).
# Метки цифр при обучении не использовались, но раскрасим точки по ним.

# %%
from sklearn.manifold import TSNE

n_pts = CFG["tsne_points"]
with torch.no_grad():
    codes = ae.encode(x_test[:n_pts].to(device)).cpu().numpy()
codes_pca = PCA(n_components=2, random_state=0).fit_transform(codes)
codes_tsne = TSNE(n_components=2, init="pca", perplexity=30, random_state=0).fit_transform(codes)
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
utils.plot_latent_2d(codes_pca, y_test[:n_pts], title="Код автоэнкодера: PCA", ax=axes[0])
utils.plot_latent_2d(codes_tsne, y_test[:n_pts], title="Код автоэнкодера: t-SNE", ax=axes[1])
axes[1].get_legend().remove()
fig.tight_layout()

# %% [markdown]
# На t-SNE цифры образуют отдельные облака: автоэнкодер сам, без меток, разложил их по форме.
# Похожие цифры (4 и 9, 3 и 5) соседствуют. Но между облаками — пустоты: коды, которые не получаются
# ни из одного изображения. Если декодировать точку оттуда, выйдет каша. Это и мешает
# обычному автоэнкодеру генерировать новые изображения — в следующей главе VAE исправит именно это.

# %% [markdown]
# ## 7. Упражнение 3: шум для denoising-автоэнкодера
#
# Шумоподавляющий автоэнкодер получает на вход испорченное изображение, а восстанавливать должен **чистое**.
# Скопировать вход уже нельзя — приходится выучить, как устроены настоящие цифры.
#
# Напишите `add_noise(x, noise_factor=0.3)`: верните **новый** тензор $\operatorname{clip}(x + \text{noise\_factor}\cdot\varepsilon,\ 0,\ 1)$,
# где $\varepsilon \sim \mathcal N(0, 1)$ независимо для каждого элемента. Исходный `x` менять нельзя.

# %% grade_id="add_noise_impl" solution=true
def add_noise(x, noise_factor=0.3):
    ### BEGIN SOLUTION
    return (x + noise_factor * torch.randn_like(x)).clamp(0.0, 1.0)
    ### END SOLUTION


# %% grade_id="add_noise_tests" points=2
_t_x = torch.full((2000, 50), 0.5)
_t_copy = _t_x.clone()
torch.manual_seed(0)
_t_y = add_noise(_t_x, noise_factor=0.1)
utils.assert_shape(_t_y, (2000, 50), "add_noise(x)")
assert _t_y is not _t_x and torch.equal(_t_x, _t_copy), "add_noise не должна изменять x: верните новый тензор"
assert float(_t_y.min()) >= 0.0 and float(_t_y.max()) <= 1.0, "результат должен быть обрезан до [0, 1]"
_t_d = (_t_y - _t_x).double()
assert abs(float(_t_d.mean())) < 0.003, f"среднее шума {float(_t_d.mean()):.4f}, ожидалось около 0"
assert abs(float(_t_d.std()) - 0.1) < 0.003, \
    f"стандартное отклонение шума {float(_t_d.std()):.4f}, ожидалось 0.1 (= noise_factor)"
# Обрезка по 0: примерно половина зашумлённых нулей должна стать ровно 0.
_t_yz = add_noise(torch.zeros(100000), noise_factor=1.0)
assert float(_t_yz.min()) >= 0.0 and float(_t_yz.max()) <= 1.0, "результат должен быть обрезан до [0, 1]"
_t_share = float((_t_yz == 0).double().mean())
assert 0.47 < _t_share < 0.53, f"доля значений, обрезанных до нуля, {_t_share:.3f}; ожидалось около 0.5"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# noise_factor учитывается.
_t_y2 = add_noise(_t_x, noise_factor=0.2)
assert abs(float((_t_y2 - _t_x).double().std()) - 0.2) < 0.005, "noise_factor=0.2 не учитывается"
# Независимый гауссов шум для каждого элемента (у равномерного шума эксцесс 1.8, у общего скаляра нет разброса).
_t_flat = (add_noise(_t_x, noise_factor=0.1) - 0.5).double().flatten()
_t_kurt = float(((_t_flat - _t_flat.mean()) ** 4).mean() / _t_flat.var() ** 2)
assert 2.8 < _t_kurt < 3.2, f"эксцесс шума {_t_kurt:.2f}, у нормального распределения он равен 3"
# noise_factor по умолчанию = 0.3: сравниваем со std обрезанного 0.5 + 0.3 N(0, 1) по фиксированной эталонной
# выборке.
_t_gen = torch.Generator().manual_seed(123)
_t_ref_std = float((0.5 + 0.3 * torch.randn(200000, generator=_t_gen)).clamp(0, 1).double().std())
_t_y3 = add_noise(_t_x)
assert abs(float(_t_y3.double().std()) - _t_ref_std) < 0.005, "значение noise_factor по умолчанию должно быть 0.3"
# При noise_factor = 0 значения не меняются, dtype сохраняется.
_t_x64 = torch.rand(10, 7, dtype=torch.float64)
_t_y64 = add_noise(_t_x64, noise_factor=0.0)
assert _t_y64.dtype == torch.float64, "тип данных должен сохраняться"
utils.assert_close(_t_y64, _t_x64, "add_noise(x, 0)")
### END HIDDEN TESTS

# %% [markdown]
# Обучим denoising-автоэнкодер (вход — зашумлённая цифра, цель — чистая) и сравним его
# с обычным автоэнкодером из раздела 4 на одних и тех же зашумлённых тестовых изображениях.

# %%
def noise(x):
    return add_noise(x, CFG["noise_factor"])


utils.seed_everything(42)
dae = Autoencoder(latent_dim=CFG["latent_dim"])
dae_history = train_autoencoder(dae, CFG["dae_epochs"], corrupt=noise, desc="AE с шумоподавлением")

torch.manual_seed(7)
noisy_test = add_noise(x_test, CFG["noise_factor"])
with torch.no_grad():
    dae.eval()
    denoised = dae(noisy_test.to(device)).cpu()
    plain = ae(noisy_test.to(device)).cpu()


def mse_vs_clean(a):
    return float(((a - x_test) ** 2).mean())


print(f"{'что сравниваем с чистым тестом':<36}{'MSE':>8}")
print(f"{'зашумлённый вход как есть':<36}{mse_vs_clean(noisy_test):>8.4f}")
print(f"{'обычный автоэнкодер':<36}{mse_vs_clean(plain):>8.4f}")
print(f"{'автоэнкодер с шумоподавлением':<36}{mse_vs_clean(denoised):>8.4f}")
utils.plot_image_rows({"Зашумлённый": noisy_test, "Обычный AE": plain,
                       "AE с шумоподавлением": denoised, "Чистый": x_test}, n=12,
                      title=f"Шум с noise_factor = {CFG['noise_factor']}");

# %% [markdown]
# **Чего ждать.** В быстром режиме сеть обучается на небольшой подвыборке за несколько эпох, и восстановления
# размыты: неразборчивая цифра может стать похожей на соседнюю (2 — на 3, 4 — на 9); в полном режиме сеть видит
# больше данных и дольше учится, и восстановления заметно чётче. Это недообучение, а не ошибка в коде; смотрите на MSE в таблице выше —
# автоэнкодер с шумоподавлением должен быть ближе к чистым картинкам, чем зашумлённый вход.

# %% [markdown]
# ## 8. Упражнение 4: функция потерь разреженного автоэнкодера
#
# Разреженный автоэнкодер штрафует код за величину, чтобы для каждого изображения работало
# лишь немного координат кода. Штраф — $L_1$-норма кода:
#
# $$\mathcal{L} = \underbrace{\operatorname{MSE}(\hat x, x)}_{\text{среднее по всем элементам}}
#   + \lambda \cdot \frac{1}{B}\sum_{i=1}^{B} \lVert z_i \rVert_1 .$$
#
# Напишите `sparse_ae_loss(recon, x, z, l1_weight=1e-3)`, возвращающую скаляр: `F.mse_loss(recon, x)`
# плюс `l1_weight`, умноженный на среднюю по батчу сумму модулей координат кода.
# Почему именно $L_1$, а не $L_2$? Градиент $L_1$ по координате равен $\lambda\,\operatorname{sign}(z)$
# и не убывает вблизи нуля, поэтому мелкие координаты дотягиваются до нуля; штраф $L_2$ лишь уменьшает их.

# %% grade_id="sparse_ae_loss_impl" solution=true
def sparse_ae_loss(recon, x, z, l1_weight=1e-3):
    ### BEGIN SOLUTION
    return F.mse_loss(recon, x) + l1_weight * z.abs().sum(dim=1).mean()
    ### END SOLUTION


# %% grade_id="sparse_ae_loss_tests" points=2
def _t_sparse_ref(recon, x, z, lam):
    r, t, c = (a.detach().double().numpy() for a in (recon, x, z))
    return np.mean((r - t) ** 2) + lam * np.mean(np.abs(c).sum(axis=1))

torch.manual_seed(0)
_t_recon, _t_x, _t_z = torch.rand(8, 20), torch.rand(8, 20), torch.randn(8, 5)
_t_loss = sparse_ae_loss(_t_recon, _t_x, _t_z, l1_weight=0.1)
assert isinstance(_t_loss, torch.Tensor) and _t_loss.dim() == 0, "функция должна возвращать скалярный тензор"
utils.assert_close(_t_loss, torch.tensor(_t_sparse_ref(_t_recon, _t_x, _t_z, 0.1)), "sparse_ae_loss", atol=1e-6)
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Вес по умолчанию, другие размеры, нулевой вес.
torch.manual_seed(1)
_t_recon, _t_x, _t_z = torch.rand(16, 784), torch.rand(16, 784), 3 * torch.randn(16, 32)
utils.assert_close(sparse_ae_loss(_t_recon, _t_x, _t_z),
                   torch.tensor(_t_sparse_ref(_t_recon, _t_x, _t_z, 1e-3)), "l1_weight по умолчанию = 1e-3", atol=1e-6)
utils.assert_close(sparse_ae_loss(_t_recon, _t_x, _t_z, l1_weight=0.0), F.mse_loss(_t_recon, _t_x),
                   "при l1_weight=0 остаётся только MSE", atol=1e-7)
for _t_lam in (0.01, 0.5):
    utils.assert_close(sparse_ae_loss(_t_recon, _t_x, _t_z, l1_weight=_t_lam),
                       torch.tensor(_t_sparse_ref(_t_recon, _t_x, _t_z, _t_lam)), f"l1_weight={_t_lam}", atol=1e-6)
# Градиент по коду: lambda * sign(z) / B.
_t_zg = _t_z.clone().requires_grad_(True)
with utils.checking("backward() по потере: штраф должен зависеть от z, а не от его отсоединённой копии"):
    sparse_ae_loss(_t_recon, _t_x, _t_zg, l1_weight=0.2).backward()
assert _t_zg.grad is not None, "градиент должен доходить до кода z"
utils.assert_close(_t_zg.grad, 0.2 * torch.sign(_t_z) / 16, "градиент штрафа по z", atol=1e-7)
# Батч из одного примера.
utils.assert_close(sparse_ae_loss(_t_recon[:1], _t_x[:1], _t_z[:1], l1_weight=0.1),
                   torch.tensor(_t_sparse_ref(_t_recon[:1], _t_x[:1], _t_z[:1], 0.1)), "батч из одного примера", atol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# Обучим несколько автоэнкодеров с растущим $\lambda$ и посмотрим, какая доля координат кода
# оказывается почти нулевой ($|z| < 0.05$), и чем за это платит качество восстановления.
# Обратите внимание на масштаб: у необученного штрафом кода $\lVert z\rVert_1$ порядка сотни, так что уже
# $\lambda = 10^{-3}$ даёт штраф больше самой MSE. При слишком большом $\lambda$ код «умирает» целиком,
# и декодер выдаёт одно и то же среднее изображение.

# %%
SPARSE_EPS = 0.05
rows = []
for lam in CFG["l1_weights"]:
    utils.seed_everything(42)
    model = Autoencoder(latent_dim=CFG["latent_dim"])
    train_autoencoder(model, CFG["sparse_epochs"], desc=f"λ = {lam:g}",
                      loss_fn=lambda r, x, z, lam=lam: sparse_ae_loss(r, x, z, l1_weight=lam))
    with torch.no_grad():
        z = model.encode(x_test.to(device)).cpu()
    rows.append((lam, float((z.abs() < SPARSE_EPS).float().mean()), float(z.abs().sum(1).mean()),
                 test_mse(model, x_test)))
print(f"{'λ':>8}{'доля |z|<0.05':>16}{'средняя ‖z‖₁':>15}{'тестовая MSE':>15}")
for lam, share, l1, mse in rows:
    print(f"{lam:>8g}{share:>16.1%}{l1:>15.2f}{mse:>15.4f}")
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.plot([str(r[0]) for r in rows], [r[1] for r in rows], marker="o")
ax.set_xlabel("λ (l1_weight)")
ax.set_ylabel("доля почти нулевых координат")
ax.set_title("Разреженность кода растёт с λ")
ax.grid(alpha=0.3);

# %% [markdown]
# Одна тонкость: штраф $L_1$ на код можно частично «обмануть», уменьшив $z$ и во столько же раз увеличив
# веса первого слоя декодера. Поэтому в серьёзных работах веса декодера нормируют или штрафуют вместе с кодом.
# На коротком обучении эффект невелик, но помнить о нём стоит.

# %% [markdown]
# ## 9. Поиск аномалий по ошибке восстановления
#
# Автоэнкодер, обученный только на цифрах, хорошо восстанавливает цифры и плохо — всё остальное.
# Значит, ошибку восстановления можно использовать как оценку «необычности»: пусть аномалии — это
# изображения одежды из Fashion-MNIST. Качество такого детектора измерим площадью под ROC-кривой
# (ROC AUC: 1 — идеальное разделение, 0,5 — случайное угадывание).

# %%
from sklearn.metrics import roc_auc_score, roc_curve

x_fashion, _ = utils.load_fashion_mnist("test", n=len(x_test), flatten=True)
ae.eval()
score_normal = reconstruction_error(ae, x_test.to(device)).cpu()
score_anomaly = reconstruction_error(ae, x_fashion.to(device)).cpu()
scores = torch.cat([score_normal, score_anomaly]).numpy()
is_anomaly = np.r_[np.zeros(len(score_normal)), np.ones(len(score_anomaly))]
auc = roc_auc_score(is_anomaly, scores)
print(f"ROC AUC (MNIST — норма, Fashion-MNIST — аномалия): {auc:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
utils.plot_histograms({"MNIST (норма)": score_normal, "Fashion-MNIST (аномалия)": score_anomaly},
                      title="Ошибка восстановления", xlabel="MSE на пример", ax=axes[0])
fpr, tpr, _ = roc_curve(is_anomaly, scores)
axes[1].plot(fpr, tpr, label=f"AUC = {auc:.3f}")
axes[1].plot([0, 1], [0, 1], "--", color="gray", label="случайно")
axes[1].set_xlabel("доля ложных тревог")
axes[1].set_ylabel("доля найденных аномалий")
axes[1].set_title("ROC-кривая")
axes[1].legend()
fig.tight_layout()

# %% [markdown]
# ## 10. Итоги эксперимента
#
# Сводка чисел этого запуска (в быстром режиме обучение короткое, поэтому цифры хуже, чем в полном).

# %%
print("режим:", "быстрый" if FAST else "полный")
utils.summary([
    ("n_train", "обучающих изображений", len(x_train)),
    ("ae_test_mse", "MSE автоэнкодера (тест)", ae_mse, ".4f"),
    ("pca_test_mse", f"MSE PCA-{CFG['latent_dim']} (тест)", pca_mse, ".4f"),
    ("ae_mse_drop", "падение MSE за обучение, раз", history["тест до обучения"] / ae_mse, ".1f"),
    ("anomaly_roc_auc", "ROC AUC аномалий", auc, ".3f"),
])

# %% [markdown]
# ## 11. Вопросы для самопроверки (проверяет преподаватель)
#
# Ответьте коротко, 3–6 предложений, своими словами.

# %% [markdown]
# **Вопрос 1.** Чем автоэнкодер отличается от PCA? При каких условиях автоэнкодер находит то же, что и PCA,
# и почему в наших измерениях нелинейный автоэнкодер может восстанавливать точнее при том же размере кода?

# %% [markdown] grade_id="q_ae_vs_pca" points=2 solution=true
# ### BEGIN SOLUTION
# PCA — линейное отображение в подпространство главных компонент; автоэнкодер с одним линейным слоем
# без активаций, обученный на MSE, находит то же подпространство (хотя базис может быть другим).
# Нелинейные слои позволяют кодировать данные, лежащие на изогнутом многообразии, поэтому при том же
# размере кода ошибка может быть меньше. Цена — обучение градиентным спуском, отсутствие
# закрытой формулы, упорядоченных компонент и гарантий глобального оптимума.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 2.** Почему denoising-автоэнкодер не может выучить тождественное отображение и чему он учится вместо этого?
# Что произойдёт, если сделать шум очень сильным?

# %% [markdown] grade_id="q_denoising" points=2 solution=true
# ### BEGIN SOLUTION
# Вход испорчен, а цель — чистое изображение, поэтому копирование входа даёт большую ошибку.
# Сеть вынуждена выучить, какие изображения правдоподобны, и проецировать испорченный вход
# на многообразие данных. При очень сильном шуме информация о конкретной цифре теряется,
# и сеть выдаёт размытое «среднее» изображение.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 3.** Почему обычный автоэнкодер плохо подходит для генерации новых изображений
# (вспомните картинку латентного пространства)? Какую идею добавляет VAE?

# %% [markdown] grade_id="q_generation" points=2 solution=true
# ### BEGIN SOLUTION
# Коды обучающих примеров занимают отдельные области, между которыми есть «дыры»: декодер никогда
# не видел таких кодов, и случайная точка в латентном пространстве декодируется в мусор. Кроме того,
# неизвестно, из какого распределения выбирать код. VAE кодирует каждое изображение распределением
# и штрафует (KL-дивергенцией) отклонение этих распределений от N(0, I); пространство кодов становится
# сплошным, и из N(0, I) можно сэмплировать.
# ### END SOLUTION

# %% [markdown]
# ## 12. Что дальше
#
# **Мы узнали:** автоэнкодер учится сжимать данные без меток; нелинейный автоэнкодер может обойти PCA
# при том же размере кода; шум на входе делает признаки устойчивыми; $L_1$-штраф даёт разреженный код;
# ошибка восстановления — простой детектор аномалий.
#
# **Дальше:** в главе 2 (VAE) латентное пространство станет вероятностным, и автоэнкодер научится генерировать.
#
# **Домашнее задание (по материалам курса):**
# 1. Обучите автоэнкодер с кодом размерности 2 и нарисуйте код без PCA/t-SNE. Сравните с картинкой выше.
# 2. Замените полносвязные слои свёрточными (Conv2d / ConvTranspose2d) и сравните MSE при том же размере кода.
# 3. Постройте зависимость тестовой MSE автоэнкодера и PCA от размера кода (2, 8, 32, 64).
# 4. Найдите в тестовой выборке MNIST цифры с наибольшей ошибкой восстановления. Почему именно они?
