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
# # Глава 6. Обучение с подкреплением: от Q-learning к DQN и REINFORCE
#
# {{badges}}
#
# **Цели главы.** После этой главы вы сможете:
# - описать задачу обучения с подкреплением: агент, среда, награда, политика, ценность, уравнение Беллмана;
# - написать табличный Q-learning и ε-жадную стратегию и увидеть выученную политику на карте;
# - собрать DQN из буфера воспроизведения, Q-сети, целевой сети и потерь Хьюбера — и обучить агента CartPole;
# - измерить, чего стоят две частые ошибки учебных реализаций DQN: обучение раз в эпизод и обрезание по времени как конец эпизода;
# - вывести градиент политики (REINFORCE) и показать, зачем ему базовая линия.
#
# **Что нужно знать заранее:** PyTorch (модули, оптимизаторы), основы теории вероятностей (математическое ожидание).
#
# **Время:** 3 часа. Быстрый режим (`FAST_MODE = True` в ячейке подготовки или `COURSE_FAST=1`) — около минуты на CPU, полный — до 10 минут на CPU
# (маленьким сетям GPU не нужен: здесь всё считается на CPU).

# %% [markdown]
# ## 0. Подготовка окружения

# %%
{{setup_cell}}

# %%
import copy
import time

import gymnasium as gym

RL_DEVICE = torch.device("cpu")  # сети в несколько тысяч параметров: пересылка на GPU на каждом шаге дороже счёта

CFG = dict(
    # табличный Q-learning (CliffWalking)
    q_episodes=500,
    q_alpha=0.5,
    q_gamma=0.99,
    q_epsilon=0.1,
    # DQN (CartPole-v1)
    dqn_steps=utils.by_mode(8000, 30000),  # шагов среды на один запуск
    dqn_seeds=utils.by_mode((0,), (0, 1, 2)),
    short_limit=100,  # лимит времени эпизода для замера «обрыв по времени = конец» в разделе 6
    limit_steps=utils.by_mode(2000, 30000),  # шагов среды в этом замере (в быстром режиме эффекта всё равно не видно)
    hidden=128,
    buffer_size=50000,
    batch_size=128,
    lr=1e-3,
    gamma=0.99,
    learning_starts=utils.by_mode(500, 1000),  # шагов случайной игры до первого обновления
    train_every=2,  # обновление сети каждые 2 шага среды
    tau=0.005,  # мягкое обновление целевой сети: θ' ← (1 − τ)θ' + τθ на каждом шаге
    eps_start=1.0,
    eps_end=0.05,
    eps_fraction=0.2,  # доля шагов, за которую ε линейно падает от eps_start до eps_end
    grad_clip=10.0,
    select_every=utils.by_mode(1000, 2000),  # как часто проверять жадную политику на эпизодах отбора
    select_episodes=5,
    eval_episodes=20,  # итоговая оценка — на других сидах
    # REINFORCE
    pg_episodes=utils.by_mode(60, 300),
    pg_seeds=utils.by_mode((0,), (0, 1, 2)),
    pg_lr=5e-3,
    pg_small_lr=1e-3,  # честное сравнение: вариант без базовой линии с меньшим шагом
    value_lr=1e-2,
    variance_episodes=utils.by_mode(20, 60),
)
EVAL_SEED, SELECT_SEED = 10_000, 50_000  # сиды сред для итоговой оценки и для отбора модели не пересекаются
CFG

# %% [markdown]
# ## 1. Агент и среда
#
# В обучении с подкреплением нет правильных ответов: **агент** действует в **среде** и получает **награду**. На шаге
# $t$ агент видит состояние $s_t$, выбирает действие $a_t$ по **политике** $\pi(a \mid s)$, а среда возвращает
# награду $r_t$ и следующее состояние $s_{t+1}$. Цель — максимизировать **дисконтированную сумму наград**
#
# $$G_t = r_t + \gamma r_{t+1} + \gamma^2 r_{t+2} + \dots = \sum_{k \ge 0} \gamma^k r_{t+k}, \qquad 0 \le \gamma < 1.$$
#
# Множитель $\gamma$ делает ближние награды ценнее дальних и сумму — конечной.
#
# **Марковский процесс принятия решений (MDP).** Формально среда — это пятёрка $(\mathcal S, \mathcal A, P, R,
# \gamma)$: множество состояний, множество действий, вероятности перехода $P(s' \mid s, a)$, награда $R(s, a, s')$ и
# множитель $\gamma$. Главное допущение — **марковость**: следующее состояние и награда зависят только от текущего
# состояния и действия, а не от всей истории. Поэтому политике достаточно видеть $s_t$ (для CartPole состояние —
# положение и скорость тележки, угол и угловая скорость шеста; по одному углу без скоростей процесс уже не был бы
# марковским).
#
# **Ценность действия** $Q^\pi(s, a) = \mathbb E_\pi[G_t \mid s_t = s, a_t = a]$ — сколько агент получит, если
# сделает $a$, а потом будет следовать $\pi$; **ценность состояния** $V^\pi(s) = \sum_a \pi(a \mid s)\, Q^\pi(s, a)$.
# Из $G_t = r_t + \gamma G_{t+1}$ следует **уравнение Беллмана**: ценность сейчас — награда за шаг плюс
# дисконтированная ценность того, куда попадём,
#
# $$Q^\pi(s, a) = \sum_{s'} P(s' \mid s, a)\,\big[R(s, a, s') + \gamma V^\pi(s')\big].$$
#
# Оптимальная политика в каждом состоянии выбирает лучшее действие, поэтому для неё среднее по $\pi$ заменяется
# максимумом, и $Q^*$ удовлетворяет **уравнению оптимальности Беллмана**
#
# $$Q^*(s, a) = \mathbb E\big[\,r + \gamma \max_{a'} Q^*(s', a')\,\big] = \sum_{s'} P(s' \mid s, a)\,\big[R(s, a, s')
# + \gamma \max_{a'} Q^*(s', a')\big],$$
#
# а лучшее действие — $\arg\max_a Q^*(s, a)$. Эпизод кончается двумя разными способами, и их нельзя путать:
# - **terminated** — среда пришла в конечное состояние (шест упал, агент дошёл до цели): будущих наград нет;
# - **truncated** — эпизод оборван внешним ограничением (лимит в 500 шагов у CartPole): будущее *было бы*, просто
#   мы перестали смотреть. Здесь ценность следующего состояния по-прежнему нужна в формуле.
#
# Мы пользуемся библиотекой `gymnasium`: `env.reset(seed=...)` возвращает `(наблюдение, info)`, а `env.step(a)` —
# `(наблюдение, награда, terminated, truncated, info)`.

# %%
def draw_agent_environment():
    """Цикл «агент — среда» в виде схемы."""
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    utils.draw_blocks([(0.0, 1.0, 2.2, 1.0, "Агент\nполитика π(a|s)\nоценки Q(s, a)", "tab:blue"),
                       (5.0, 1.0, 2.2, 1.0, "Среда\n(CartPole, CliffWalking)", "tab:green")], ax=ax, chain=False)
    ax.annotate("", xy=(4.95, 1.25), xytext=(2.25, 1.25), arrowprops=dict(arrowstyle="->", lw=1.5))
    ax.annotate("", xy=(2.25, 0.75), xytext=(4.95, 0.75), arrowprops=dict(arrowstyle="->", lw=1.5))
    ax.text(3.6, 1.4, "действие $a_t$", ha="center")
    ax.text(3.6, 0.35, "награда $r_t$, состояние $s_{t+1}$,\nterminated / truncated", ha="center", fontsize=9)
    ax.set_xlim(-0.2, 7.4)
    ax.set_ylim(0.1, 1.9)
    return fig


draw_agent_environment();

# %% [markdown]
# ## 2. Табличный Q-learning
#
# Когда состояний и действий немного, $Q$ — просто таблица. Q-learning (Watkins, 1989) после каждого шага
# $(s, a, r, s')$ сдвигает оценку к правой части уравнения Беллмана:
#
# $$\delta = \underbrace{r + \gamma \max_{a'} Q(s', a')}_{\text{цель}} - Q(s, a), \qquad Q(s, a) \leftarrow Q(s, a) + \alpha\,\delta.$$
#
# $\delta$ называют **TD-ошибкой** (temporal difference). Если шаг закончил эпизод (terminated), будущего нет, и цель
# равна просто $r$.
#
# ### Упражнение 1: шаг Q-learning
#
# Напишите `q_learning_update(Q, s, a, r, s_next, terminated, alpha, gamma)`: `Q` — массив NumPy формы
# `(число состояний, число действий)`. Обновите элемент `Q[s, a]` **на месте** по формуле выше (без будущего, если
# `terminated`) и верните TD-ошибку $\delta$ (число `float`).

# %% grade_id="q_learning_update_impl" solution=true
def q_learning_update(Q, s, a, r, s_next, terminated, alpha, gamma):
    ### BEGIN SOLUTION
    target = r if terminated else r + gamma * Q[s_next].max()
    td_error = float(target - Q[s, a])
    Q[s, a] += alpha * td_error
    return td_error
    ### END SOLUTION


# %% grade_id="q_learning_update_tests" points=2
_t_Q = np.array([[0.0, 1.0], [2.0, 4.0], [3.0, -1.0]])
_t_ref = _t_Q.copy()
_t_td = q_learning_update(_t_Q, 0, 1, 1.0, 1, False, alpha=0.5, gamma=0.9)
assert isinstance(_t_td, float), f"верните TD-ошибку числом float, получено {type(_t_td).__name__}"
assert abs(_t_td - (1.0 + 0.9 * 4.0 - 1.0)) < 1e-9, f"TD-ошибка {_t_td}, ожидалось 3.6: r + γ·max Q(s') − Q(s, a)"
assert abs(_t_Q[0, 1] - (1.0 + 0.5 * 3.6)) < 1e-9, "Q[s, a] нужно сдвинуть на alpha · TD-ошибку, на месте"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
_t_changed = np.argwhere(_t_Q != _t_ref).tolist()
assert _t_changed == [[0, 1]], f"меняться должен только Q[s, a], изменились {_t_changed}"
# После terminated будущего нет.
_t_Q = np.array([[0.0, 1.0], [2.0, 4.0]])
_t_td = q_learning_update(_t_Q, 0, 0, -1.0, 1, True, alpha=1.0, gamma=0.9)
assert abs(_t_td - (-1.0)) < 1e-9 and abs(_t_Q[0, 0] + 1.0) < 1e-9, "при terminated цель — только награда r"
# Максимум по действиям следующего состояния, какое бы действие ни обновлялось.
_t_Q = np.array([[0.0, 0.0], [5.0, 2.0]])
q_learning_update(_t_Q, 0, 1, 0.0, 1, False, alpha=1.0, gamma=1.0)
assert abs(_t_Q[0, 1] - 5.0) < 1e-9, "цель берёт max по действиям следующего состояния, а не Q(s', a)"
# alpha задаёт величину шага.
_t_Q = np.zeros((2, 2))
q_learning_update(_t_Q, 1, 0, 2.0, 0, False, alpha=0.25, gamma=0.5)
assert abs(_t_Q[1, 0] - 0.5) < 1e-9, "шаг обновления — alpha · TD-ошибка"
# Построенный вручную MDP с известным Q*: коридор 0-1-2-3; «вправо» из 2 приводит к цели (+1, terminated),
# «влево» из 0 оставляет в 0; любой другой шаг даёт 0.
_t_g = 0.9
_t_next = {(0, 0): 0, (1, 0): 0, (2, 0): 1, (0, 1): 1, (1, 1): 2}
_t_star = np.array([[_t_g ** 3, _t_g ** 2], [_t_g ** 3, _t_g], [_t_g ** 2, 1.0]])
_t_Q = np.zeros((3, 2))
for _t_sweep in range(200):
    for (_t_s, _t_a) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]:
        _t_done = (_t_s, _t_a) == (2, 1)
        q_learning_update(_t_Q, _t_s, _t_a, 1.0 if _t_done else 0.0, 0 if _t_done else _t_next[(_t_s, _t_a)], _t_done,
                          alpha=0.5, gamma=_t_g)
utils.assert_close(_t_Q, _t_star, "Q после многих обновлений на коридоре с известным Q*", atol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# ### Упражнение 2: ε-жадная стратегия
#
# Агент, который всегда берёт лучшее по текущим оценкам действие, может никогда не попробовать то, что на самом деле
# лучше: **исследование** против **использования**. Простейший компромисс — ε-жадная стратегия: с вероятностью
# $\varepsilon$ действие выбирается **равновероятно среди всех** действий, иначе берётся $\arg\max_a Q(s, a)$.
#
# Напишите `epsilon_greedy(q_values, epsilon, rng)`: `q_values` — одномерный массив NumPy оценок действий, `rng` —
# генератор `np.random.Generator` (берите случайность только из него: так запуск воспроизводим). Верните номер
# действия (целое число). Если максимумов несколько, выберите один из них равновероятно (`np.argmax` всегда берёт
# первый — у нулевой таблицы это превратило бы агента в «всегда действие 0»).

# %% grade_id="epsilon_greedy_impl" solution=true
def epsilon_greedy(q_values, epsilon, rng):
    ### BEGIN SOLUTION
    q_values = np.asarray(q_values)
    if rng.random() < epsilon:
        return int(rng.integers(len(q_values)))
    best = np.flatnonzero(q_values == q_values.max())
    return int(rng.choice(best))
    ### END SOLUTION


# %% grade_id="epsilon_greedy_tests" points=2
_t_rng = np.random.default_rng(0)
_t_acts = [epsilon_greedy(np.array([0.1, 0.9, 0.3]), 0.0, _t_rng) for _ in range(50)]
assert set(_t_acts) == {1}, f"при ε = 0 нужно всегда брать лучшее действие, выбрано {sorted(set(_t_acts))}"
assert all(isinstance(a, int | np.integer) for a in _t_acts), "верните номер действия целым числом"
with utils.checking("epsilon_greedy при ε = 1 и четырёх равных Q: случайное действие — любое из всех"):
    _t_acts = np.array([epsilon_greedy(np.zeros(4), 1.0, _t_rng) for _ in range(4000)])
assert set(_t_acts.tolist()) == {0, 1, 2, 3}, "при ε = 1 должны встречаться все действия"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Исследование равновероятно среди всех действий, включая жадное: P(лучшее) = 1 - ε + ε / n.
_t_rng = np.random.default_rng(1)
_t_acts = np.array([epsilon_greedy(np.array([0.0, 0.0, 5.0, 0.0]), 0.3, _t_rng) for _ in range(20000)])
_t_freq = np.bincount(_t_acts, minlength=4) / len(_t_acts)
assert abs(_t_freq[2] - 0.775) < 0.015, f"доля лучшего действия {_t_freq[2]:.3f}, при ε = 0.3 и 4 действиях ожидалось 0.775"
assert np.all(np.abs(_t_freq[[0, 1, 3]] - 0.075) < 0.01), f"доли остальных действий {_t_freq}, ожидалось по 0.075"
# Из равных максимумов выбирается равновероятно.
_t_acts = np.array([epsilon_greedy(np.array([1.0, 3.0, 3.0]), 0.0, _t_rng) for _ in range(4000)])
assert 0 not in _t_acts and abs((_t_acts == 1).mean() - 0.5) < 0.04, "среди равных максимумов выбирайте равновероятно"
# При исследовании — равновероятно.
_t_freq = np.bincount([epsilon_greedy(np.array([9.0, 0.0, 0.0, 0.0]), 1.0, _t_rng) for _ in range(8000)], minlength=4) / 8000
assert np.all(np.abs(_t_freq - 0.25) < 0.025), f"при ε = 1 все действия равновероятны, получено {_t_freq}"
# Случайность берётся только из rng.
np.random.seed(1)
_t_r = np.random.default_rng(7)
_t_seq1 = [epsilon_greedy(np.array([0.0, 1.0, 1.0]), 0.5, _t_r) for _ in range(40)]
np.random.seed(2)
__import__("random").seed(2)
_t_r = np.random.default_rng(7)
_t_seq2 = [epsilon_greedy(np.array([0.0, 1.0, 1.0]), 0.5, _t_r) for _ in range(40)]
assert _t_seq1 == _t_seq2, "случайность берите из переданного rng, а не из np.random или random: иначе запуск невоспроизводим"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Q-learning на краю обрыва
#
# Среда `CliffWalking` — сетка 4×12: старт внизу слева, цель внизу справа, между ними обрыв. Каждый шаг стоит −1,
# шаг в обрыв — −100 и возврат на старт. Обучим таблицу 48×4 ε-жадным Q-learning и сравним её с настоящей
# $Q^*$: для маленькой среды её можно вычислить **итерацией ценности** — многократно применяя уравнение Беллмана
# ко всем парам $(s, a)$ по известной модели среды (`env.unwrapped.P`).

# %%
def value_iteration(P, n_states, n_actions, gamma, tol=1e-8, max_sweeps=10_000):
    """Q* маленького известного MDP: повторяем оптимальное обновление Беллмана по всем (s, a), пока наибольшее
    изменение за проход не станет меньше tol. Возвращает Q* и эти изменения по проходам."""
    Q, changes = np.zeros((n_states, n_actions)), []
    for _ in range(max_sweeps):
        V = Q.max(axis=1)
        Q_next = np.array([[sum(p * (r + (0.0 if done else gamma * V[s2])) for p, s2, r, done in P[s][a])
                            for a in range(n_actions)] for s in range(n_states)])
        changes.append(float(np.abs(Q_next - Q).max()))
        Q = Q_next
        if changes[-1] < tol:
            break
    return Q, changes


cliff = gym.make("CliffWalking-v1")
n_states, n_actions = cliff.observation_space.n, cliff.action_space.n
rng = np.random.default_rng(0)
Q = np.zeros((n_states, n_actions))
cliff_returns = []
for _ in range(CFG["q_episodes"]):
    s, _ = cliff.reset(seed=int(rng.integers(2**31)))
    done, total = False, 0.0
    while not done:
        a = epsilon_greedy(Q[s], CFG["q_epsilon"], rng)
        s_next, r, terminated, truncated, _ = cliff.step(a)
        q_learning_update(Q, s, a, r, s_next, terminated, CFG["q_alpha"], CFG["q_gamma"])
        s, total, done = s_next, total + r, terminated or truncated
    cliff_returns.append(total)

Q_star, vi_changes = value_iteration(cliff.unwrapped.P, n_states, n_actions, CFG["q_gamma"])
start_state = 36  # нижний левый угол
print(f"ценность старта: выученная {Q[start_state].max():.2f}, настоящая Q* {Q_star[start_state].max():.2f}")
print(f"награда за эпизод при обучении (ε = {CFG['q_epsilon']}), последние 50 эпизодов: {np.mean(cliff_returns[-50:]):.1f}; "
      f"оптимальный путь даёт {-13}")
utils.plot_returns({"Q-learning, ε-жадно": cliff_returns}, window=20, title="CliffWalking: обучение");

# %%
def draw_grid_policy(Q, title, ax):
    """Жадное действие каждой клетки — стрелкой поверх карты ценностей max_a Q(s, a)."""
    V = Q.max(axis=1).reshape(4, 12)
    image = ax.imshow(V, cmap="viridis")
    arrows = {0: (0, -0.35), 1: (0.35, 0), 2: (0, 0.35), 3: (-0.35, 0)}  # вверх, вправо, вниз, влево
    for state in range(48):
        row, col = divmod(state, 12)
        if row == 3 and 0 < col < 11:
            ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, color="black"))
            continue
        if state == 47:
            ax.text(col, row, "цель", ha="center", va="center", color="white", fontsize=8)
            continue
        dx, dy = arrows[int(Q[state].argmax())]
        ax.arrow(col - dx / 2, row - dy / 2, dx, dy, head_width=0.18, color="white", length_includes_head=True)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    plt.colorbar(image, ax=ax, fraction=0.015, label="max Q")


fig, axes = plt.subplots(2, 1, figsize=(10, 5.5))
draw_grid_policy(Q, "Жадная политика выученной таблицы (чёрное — обрыв)", axes[0])
draw_grid_policy(Q_star, "Жадная политика Q* (итерация ценности)", axes[1])
plt.tight_layout()
plt.show()

# %% [markdown]
# Q-learning учит ценность **жадной** политики: стрелки ведут по самому краю обрыва — это кратчайший путь. Но
# при обучении агент делает и случайные шаги, и на краю они стоят −100: поэтому средняя награда во время обучения
# заметно хуже −13. Так видно различие «чему учимся» и «как себя ведём» (off-policy обучение).

# %% [markdown]
# **Итерация ценности.** Когда модель среды известна — у CliffWalking это `env.unwrapped.P[s][a]`, список троек
# «вероятность, следующее состояние, награда» с флагом terminated, — $Q^*$ находится без проб и ошибок: начнём с
# $Q_0 = 0$ и будем применять правую часть уравнения оптимальности ко всем парам $(s, a)$ сразу:
#
# $$Q_{k+1}(s, a) = \sum_{s'} P(s' \mid s, a)\,\big[R(s, a, s') + \gamma \max_{a'} Q_k(s', a')\big].$$
#
# Это отображение — **сжатие** в норме максимума: $\max|Q_{k+1} - Q^*| \le \gamma \max|Q_k - Q^*|$, потому что
# максимум по $a'$ и среднее по $s'$ не увеличивают расстояния, а множитель $\gamma < 1$ его уменьшает. Значит, с
# любого начала итерации сходятся к единственной неподвижной точке, и это $Q^*$. Q-learning из упражнения 1 делает то
# же обновление, но по одному подсмотренному переходу вместо суммы по известной модели.
#
# Посмотрим, как убывает наибольшее изменение $Q$ за проход, на обычной сетке и на «скользкой»
# (`is_slippery=True`: с вероятностью 2/3 агента сносит вбок).

# %%
slippery = gym.make("CliffWalking-v1", is_slippery=True)
Q_slippery, vi_changes_slippery = value_iteration(slippery.unwrapped.P, n_states, n_actions, CFG["q_gamma"])
sweeps_exact = next(k for k, change in enumerate(vi_changes, 1) if change == 0)
# во сколько раз в среднем (геометрически) уменьшается изменение за проход, проходы 50-100
slippery_rate = float(np.exp(np.diff(np.log(vi_changes_slippery[50:101])).mean()))
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.semilogy(range(1, len(vi_changes) + 1), np.maximum(vi_changes, 1e-12), "o-", ms=3, label="обычная сетка")
ax.semilogy(range(1, len(vi_changes_slippery) + 1), vi_changes_slippery, label="скользкая сетка")
ax.semilogy(range(1, 400), CFG["q_gamma"] ** np.arange(399), "k:", label="$\\gamma^k$")
ax.set(xlabel="проход", ylabel="наибольшее изменение Q", title="Итерация ценности на CliffWalking", ylim=(1e-9, 200))
ax.legend(loc="upper right")
plt.show()
print(f"обычная сетка: точно сошлась за {sweeps_exact - 1} проходов (изменение {sweeps_exact}-го — ноль)")
print(f"скользкая: {len(vi_changes_slippery)} проходов до изменения < 1e-8, за проход изменение умножается на "
      f"{slippery_rate:.3f} (γ = {CFG['q_gamma']}); ценность старта {Q_slippery[start_state].max():.2f} против "
      f"{Q_star[start_state].max():.2f}")
utils.record("vi_sweeps_deterministic", sweeps_exact - 1)
utils.record("vi_sweeps_slippery", len(vi_changes_slippery))
utils.record("vi_rate_slippery", slippery_rate)
utils.record("q_star_start_slippery", float(Q_slippery[start_state].max()))

# %% [markdown]
# На обычной сетке всё детерминировано, и за проход ценность «узнаёт» ещё об одном шаге пути: после первого прохода
# (в нём появляется штраф обрыва −100) изменения равны $\gamma^{k}$ и обрываются в ноль, когда сведения о цели
# дошли до самой дальней клетки, — за {{result 06_dqn fast.values.vi_sweeps_deterministic}} проходов. На скользкой
# сетке точного конца нет: изменения убывают геометрически, каждый проход умножает их в среднем на
# {{result 06_dqn fast.values.vi_rate_slippery .3f}}, и до $10^{-8}$ они доходят за
# {{result 06_dqn fast.values.vi_sweeps_slippery}} проходов. Это быстрее оценки $\gamma^k$: сжатие даёт только
# верхнюю границу. Скользкий путь дороже (ценность старта {{result 06_dqn fast.values.q_star_start_slippery .2f}}
# против {{result 06_dqn fast.values.q_star_start_value .2f}}): агент обходит обрыв подальше.

# %% [markdown]
# ## 4. От таблицы к сети: DQN
#
# В CartPole состояние — четыре вещественных числа (положение и скорость тележки, угол и угловая скорость шеста),
# таблицу не построить. DQN (Mnih и др., 2015) заменяет таблицу сетью $Q_\theta(s, \cdot)$ и учит её регрессией на
# цель Беллмана. Чтобы это работало, нужны три приёма:
#
# 1. **буфер воспроизведения:** переходы $(s, a, r, s', \text{terminated})$ копятся в большом буфере, а сеть
#    учится на случайных батчах из него — соседние шаги одного эпизода сильно скоррелированы, а каждый переход
#    используется много раз;
# 2. **целевая сеть** $Q_{\theta'}$: цель $y = r + \gamma (1 - \text{terminated}) \max_{a'} Q_{\theta'}(s', a')$
#    считается копией сети, которая меняется медленно ($\theta' \leftarrow (1-\tau)\theta' + \tau\theta$), иначе
#    регрессия гонится за собственным хвостом; градиент через цель не идёт;
# 3. **потери Хьюбера** $\ell(q, y)$: квадратичные при $|q - y| < 1$ и линейные дальше — редкая огромная TD-ошибка
#    не взрывает градиент.
#
# Обучение — один цикл: шаг среды ε-жадно, переход в буфер, и **на каждом шаге** (у нас — на каждом втором)
# градиентный шаг по случайному батчу.
#
# ### Упражнение 3: буфер воспроизведения
#
# Напишите класс `ReplayBuffer(capacity, obs_dim)` на **заранее выделенных** массивах NumPy (никаких `deque` из
# кортежей: они медленные и занимают в разы больше памяти). В `__init__` создайте атрибуты длины `capacity`:
# `obs` и `next_obs` формы `(capacity, obs_dim)`, `actions`, `rewards`, `terminated` формы `(capacity,)`, с типами
# `float32` (наблюдения, награды, `terminated` как `0.0`/`1.0`) и `int64` (действия).
#
# - `add(obs, action, reward, next_obs, terminated)` записывает переход в следующую ячейку; когда буфер полон,
#   запись идёт **по кругу** поверх самых старых переходов;
# - `len(buffer)` — сколько переходов сейчас хранится (не больше `capacity`);
# - `sample(batch_size, rng)` выбирает `batch_size` индексов равновероятно **среди заполненных** ячеек
#   (`rng.integers`) и возвращает кортеж тензоров `(obs, actions, rewards, next_obs, terminated)` с типами
#   `float32, int64, float32, float32, float32`.

# %% grade_id="replay_buffer_impl" solution=true
class ReplayBuffer:
    def __init__(self, capacity, obs_dim):
        ### BEGIN SOLUTION
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.position, self.size = 0, 0
        ### END SOLUTION

    def add(self, obs, action, reward, next_obs, terminated):
        ### BEGIN SOLUTION
        i = self.position
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.terminated[i] = next_obs, float(terminated)
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        ### END SOLUTION

    def __len__(self):
        ### BEGIN SOLUTION
        return self.size
        ### END SOLUTION

    def sample(self, batch_size, rng):
        ### BEGIN SOLUTION
        idx = rng.integers(0, self.size, size=batch_size)
        return tuple(torch.as_tensor(array[idx]) for array in
                     (self.obs, self.actions, self.rewards, self.next_obs, self.terminated))
        ### END SOLUTION


# %% grade_id="replay_buffer_tests" points=3
_t_buf = ReplayBuffer(5, 3)
assert isinstance(getattr(_t_buf, "obs", None), np.ndarray), "буфер хранит наблюдения в массиве self.obs (numpy)"
assert _t_buf.obs.shape == (5, 3) and _t_buf.obs.dtype == np.float32, "obs: массив float32 формы (capacity, obs_dim)"
assert _t_buf.actions.shape == (5,) and _t_buf.actions.dtype == np.int64, "actions: массив int64 формы (capacity,)"
assert len(_t_buf) == 0, f"пустой буфер: len = {len(_t_buf)}, а нужно 0"
_t_buf.add(np.ones(3), 1, 0.5, np.zeros(3), False)
_t_batch = _t_buf.sample(4, np.random.default_rng(0))
assert len(_t_batch) == 5, "sample возвращает (obs, actions, rewards, next_obs, terminated)"
utils.assert_shape(_t_batch[0], (4, 3), "obs из sample")
assert [t.dtype for t in _t_batch] == [torch.float32, torch.int64, torch.float32, torch.float32, torch.float32], \
    f"типы тензоров {[t.dtype for t in _t_batch]}"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
for _t_name in ("next_obs", "rewards", "terminated"):
    assert getattr(_t_buf, _t_name).shape[0] == 5, f"атрибут {_t_name} длины capacity"
assert _t_buf.rewards.dtype == np.float32 and _t_buf.terminated.dtype == np.float32, \
    "rewards и terminated хранятся как float32"
# Выбираются только заполненные ячейки.
_t_buf = ReplayBuffer(100, 2)
for _t_i in range(3):
    _t_buf.add(np.full(2, _t_i + 1.0), _t_i, float(_t_i), np.full(2, -1.0), _t_i == 2)
assert len(_t_buf) == 3, f"после трёх add: len = {len(_t_buf)}, а нужно 3"
_t_o, _t_a, _t_r, _t_n, _t_d = _t_buf.sample(500, np.random.default_rng(1))
assert set(_t_o[:, 0].tolist()) == {1.0, 2.0, 3.0}, "выбирать можно только заполненные ячейки (и все они должны встречаться)"
assert torch.equal(_t_a.float() + 1, _t_o[:, 0]) and torch.equal(_t_r, _t_a.float()), "переход хранится целиком в одной ячейке"
assert torch.equal(_t_d, (_t_a == 2).float()), "terminated хранится как 0.0 / 1.0"
# Запись по кругу: самые старые переходы затираются, размер остаётся равным capacity.
_t_buf = ReplayBuffer(4, 1)
with utils.checking("6 записей в буфер на 4: запись должна идти по кругу, поверх самых старых"):
    for _t_i in range(6):
        _t_buf.add(np.array([_t_i]), 0, 0.0, np.array([_t_i]), False)
assert len(_t_buf) == 4, f"после 6 записей в буфер на 4 в нём 4 перехода, а не {len(_t_buf)}"
assert sorted(_t_buf.obs[:, 0].tolist()) == [2.0, 3.0, 4.0, 5.0], "запись по кругу: новые переходы заменяют самые старые"
_t_seen = set(_t_buf.sample(400, np.random.default_rng(2))[0][:, 0].tolist())
assert _t_seen == {2.0, 3.0, 4.0, 5.0}
# Случайность берётся из переданного генератора.
np.random.seed(3)
_t_s1 = _t_buf.sample(16, np.random.default_rng(5))[0]
np.random.seed(4)
_t_s2 = _t_buf.sample(16, np.random.default_rng(5))[0]
assert torch.equal(_t_s1, _t_s2), "индексы выбирайте переданным rng"
### END HIDDEN TESTS

# %% [markdown]
# ### Упражнение 4: Q-сеть
#
# Напишите `QNetwork(obs_dim, n_actions, hidden=128)` — модуль `nn.Module`: `Linear(obs_dim, hidden)` → ReLU →
# `Linear(hidden, hidden)` → ReLU → `Linear(hidden, n_actions)`. На выходе **нет** активации: Q-значения — любые
# вещественные числа (у CartPole они доходят до ~100), а не вероятности. Сеть принимает и батч наблюдений формы
# `(B, obs_dim)`, и одно наблюдение формы `(obs_dim,)` — при выборе действия батча нет (слои `nn.Linear` умеют и
# то и другое).

# %% grade_id="q_network_impl" solution=true
class QNetwork(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden=128):
        super().__init__()
        ### BEGIN SOLUTION
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_actions))
        ### END SOLUTION

    def forward(self, obs):
        ### BEGIN SOLUTION
        return self.net(obs)
        ### END SOLUTION


# %% grade_id="q_network_tests" points=2
torch.manual_seed(0)
_t_net = QNetwork(4, 2)
utils.assert_shape(_t_net(torch.randn(7, 4)), (7, 2), "QNetwork(4, 2) на батче из 7 наблюдений")
_t_n = sum(p.numel() for p in _t_net.parameters())
assert _t_n == 4 * 128 + 128 + 128 * 128 + 128 + 128 * 2 + 2, f"параметров {_t_n}: два скрытых слоя по 128"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
_t_net = QNetwork(3, 5, hidden=16)
assert sum(p.numel() for p in _t_net.parameters()) == 3 * 16 + 16 + 16 * 16 + 16 + 16 * 5 + 5, "hidden задаёт ширину слоёв"
utils.assert_shape(_t_net(torch.randn(3)), (5,), "одно наблюдение без батча")
# Выходы не ограничены: в конце нет ни softmax, ни sigmoid, ни ReLU.
with torch.no_grad():
    _t_out = _t_net(torch.randn(256, 3) * 50)
assert float(_t_out.min()) < 0 and float(_t_out.abs().max()) > 1, "на выходе нет активации: Q-значения бывают < 0 и > 1"
assert not torch.allclose(_t_out.sum(1), torch.ones(256)), "Q-значения — не вероятности: без softmax"
### END HIDDEN TESTS

# %% [markdown]
# ### Упражнение 5: цель и потери DQN
#
# - `dqn_targets(rewards, next_q_target, terminated, gamma)`: `next_q_target` — выход **целевой** сети на следующих
#   состояниях, форма `(B, n_actions)`; верните цели $y = r + \gamma\,(1 - \text{terminated}) \max_{a'} Q_{\theta'}(s', a')$,
#   форма `(B,)`. Будущее отбрасывается **только** для terminated: оборванный по времени эпизод (truncated) в буфер
#   попадает с `terminated = 0`, и его цель продолжает ценность следующего состояния.
# - `dqn_loss(q_net, target_net, batch, gamma)`: `batch = (obs, actions, rewards, next_obs, terminated)` из буфера.
#   Возьмите $Q_\theta(s, a)$ сделанных действий (`gather`), посчитайте цели целевой сетью **без градиента**
#   (`torch.no_grad()`) и верните потери Хьюбера `F.smooth_l1_loss` между ними (среднее по батчу).

# %% grade_id="dqn_loss_impl" solution=true
def dqn_targets(rewards, next_q_target, terminated, gamma):
    ### BEGIN SOLUTION
    return rewards + gamma * (1.0 - terminated) * next_q_target.max(dim=1).values
    ### END SOLUTION


def dqn_loss(q_net, target_net, batch, gamma):
    ### BEGIN SOLUTION
    obs, actions, rewards, next_obs, terminated = batch
    q_taken = q_net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        targets = dqn_targets(rewards, target_net(next_obs), terminated, gamma)
    return F.smooth_l1_loss(q_taken, targets)
    ### END SOLUTION


# %% grade_id="dqn_loss_tests" points=3
_t_y = dqn_targets(torch.tensor([1.0, 1.0]), torch.tensor([[2.0, 5.0], [3.0, 1.0]]), torch.tensor([0.0, 1.0]), 0.9)
utils.assert_close(_t_y, torch.tensor([1.0 + 0.9 * 5.0, 1.0]), "dqn_targets: r + γ(1 − terminated)·max Q'(s')")
torch.manual_seed(0)
_t_q, _t_tq = QNetwork(4, 2, hidden=8), QNetwork(4, 2, hidden=8)
_t_batch = (torch.randn(6, 4), torch.tensor([0, 1, 1, 0, 1, 0]), torch.ones(6), torch.randn(6, 4), torch.zeros(6))
_t_loss = dqn_loss(_t_q, _t_tq, _t_batch, 0.99)
assert _t_loss.dim() == 0, "dqn_loss возвращает скаляр"
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
# Переход, оборванный по времени (truncated), хранится с terminated = 0: его цель сохраняет будущее.
_t_y = dqn_targets(torch.tensor([1.0]), torch.tensor([[10.0, 20.0]]), torch.tensor([0.0]), 0.5)
utils.assert_close(_t_y, torch.tensor([11.0]), "цель оборванного по времени перехода (terminated = 0) продолжает будущее")
utils.assert_close(dqn_targets(torch.tensor([2.0]), torch.tensor([[10.0, 20.0]]), torch.tensor([1.0]), 0.5),
                   torch.tensor([2.0]), "после terminated цель — одна награда, без γ·max")
# Эталонные потери: Хьюбер между Q сделанного действия и целью, посчитанной целевой сетью.
torch.manual_seed(1)
_t_q, _t_tq = QNetwork(4, 3, hidden=8), QNetwork(4, 3, hidden=8)
with torch.no_grad():
    for _t_p in _t_tq.parameters():
        _t_p.mul_(20)  # цели далеко от значений онлайн-сети: Хьюбер и MSE различаются
_t_obs, _t_next = torch.randn(8, 4), torch.randn(8, 4)
_t_act = torch.tensor([0, 1, 2, 2, 1, 0, 1, 2])
_t_rew, _t_term = torch.randn(8), torch.tensor([0.0, 1, 0, 0, 1, 0, 0, 0])
_t_batch = (_t_obs, _t_act, _t_rew, _t_next, _t_term)
with torch.no_grad():
    _t_ref_y = _t_rew + 0.9 * (1 - _t_term) * _t_tq(_t_next).max(1).values
    _t_ref = F.smooth_l1_loss(_t_q(_t_obs)[torch.arange(8), _t_act], _t_ref_y)
_t_loss = dqn_loss(_t_q, _t_tq, _t_batch, 0.9)
utils.assert_close(_t_loss, _t_ref, "dqn_loss: Хьюбер(Q(s, a), цель целевой сети)", atol=1e-5)
# Градиент доходит только до онлайн-сети.
_t_loss.backward()
assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in _t_q.parameters()), "градиент должен дойти до q_net"
assert all(p.grad is None for p in _t_tq.parameters()), "цель считайте без градиента (torch.no_grad): target_net не учится"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Обучение DQN на CartPole
#
# Весь алгоритм — один цикл по шагам среды, все гиперпараметры — в `CFG` (в духе CleanRL). Три варианта цикла
# понадобятся в разделе 6: `"ours"` — правильный; `"replay_per_episode"` — как во многих учебных реализациях, один
# градиентный шаг в конце каждого эпизода; `"truncation_as_termination"` — обрыв по лимиту времени записывается в
# буфер как terminated.
#
# Обучение DQN на CartPole неустойчиво: жадная политика то держит шест все 500 шагов, то после очередных обновлений
# роняет его. Поэтому каждые `select_every` шагов проверяем жадную политику на `select_episodes` эпизодах
# **отбора** и запоминаем лучшую сеть. Итоговую оценку делаем на `eval_episodes` **других** эпизодах (другие сиды
# среды), которые в отборе не участвовали, иначе оценка была бы завышена.

# %%
def greedy_return(net, episodes, seed):
    """Средняя награда жадной политики ``net`` (argmax её выходов) в эпизодах с сидами seed, seed+1, ..."""
    env, returns = gym.make("CartPole-v1"), []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                action = int(net(torch.as_tensor(obs, device=RL_DEVICE)).argmax())
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + reward, terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def train_dqn(seed, variant="ours", steps=CFG["dqn_steps"], time_limit=None):
    """Обучает DQN на CartPole-v1 (с лимитом времени эпизода ``time_limit`` шагов; по умолчанию — 500, как в среде);
    возвращает отобранную сеть и историю запуска."""
    assert variant in ("ours", "replay_per_episode", "truncation_as_termination")
    utils.seed_everything(seed)
    rng = np.random.default_rng(seed)
    env = gym.make("CartPole-v1", **({"max_episode_steps": time_limit} if time_limit else {}))
    obs_dim, n_actions = env.observation_space.shape[0], env.action_space.n
    q_net = QNetwork(obs_dim, n_actions, CFG["hidden"]).to(RL_DEVICE)
    target_net = copy.deepcopy(q_net)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=CFG["lr"])
    buffer = ReplayBuffer(CFG["buffer_size"], obs_dim)

    def update():
        loss = dqn_loss(q_net, target_net, buffer.sample(CFG["batch_size"], rng), CFG["gamma"])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(q_net.parameters(), CFG["grad_clip"])
        optimizer.step()
        history["updates"] += 1

    history = {"returns": [], "updates": 0, "episodes_at_limit": 0}
    best_score, best_net = -1.0, copy.deepcopy(q_net)
    obs, _ = env.reset(seed=seed)
    episode_return = 0.0
    for step in utils.progress(range(steps), desc=f"DQN {variant}, сид {seed}"):
        epsilon = max(CFG["eps_end"], CFG["eps_start"] - (CFG["eps_start"] - CFG["eps_end"]) * step
                      / (CFG["eps_fraction"] * steps))
        with torch.no_grad():
            q_values = q_net(torch.as_tensor(obs, device=RL_DEVICE)).cpu().numpy()
        action = epsilon_greedy(q_values, epsilon, rng)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        stored_end = (terminated or truncated) if variant == "truncation_as_termination" else terminated
        buffer.add(obs, action, reward, next_obs, stored_end)
        obs, episode_return = next_obs, episode_return + reward
        if variant != "replay_per_episode" and step >= CFG["learning_starts"] and step % CFG["train_every"] == 0:
            update()
        if terminated or truncated:
            if variant == "replay_per_episode" and step >= CFG["learning_starts"]:
                update()
            history["returns"].append(episode_return)
            history["episodes_at_limit"] += int(truncated)
            obs, _ = env.reset()
            episode_return = 0.0
        with torch.no_grad():  # мягкое обновление целевой сети
            for p_target, p in zip(target_net.parameters(), q_net.parameters(), strict=True):
                p_target.lerp_(p, CFG["tau"])
        if step >= CFG["learning_starts"] and (step % CFG["select_every"] == 0 or step == steps - 1):
            score = greedy_return(q_net, CFG["select_episodes"], SELECT_SEED + step)
            if score >= best_score:
                best_score, best_net = score, copy.deepcopy(q_net)
    history["selection_score"] = best_score
    history["final_start_value"] = start_value(q_net)  # оценка последней сети, не отобранной
    return best_net.eval(), history


def start_value(net):
    """Среднее max_a Q(s0, a) по начальным состояниям оценочных эпизодов: сколько награды сеть рассчитывает собрать."""
    env = gym.make("CartPole-v1")
    starts = np.array([env.reset(seed=EVAL_SEED + k)[0] for k in range(CFG["eval_episodes"])])
    with torch.no_grad():
        return float(net(torch.as_tensor(starts, device=RL_DEVICE)).max(dim=1).values.mean())


# %%
runs = {}  # (variant, seed) -> результаты одного запуска обучения
for seed in CFG["dqn_seeds"]:
    start = time.perf_counter()
    net, history = train_dqn(seed)
    runs[("ours", seed)] = {"net": net, "history": history, "seconds": time.perf_counter() - start,
                            "greedy": greedy_return(net, CFG["eval_episodes"], EVAL_SEED)}
# Те же эпизоды оценки, но со случайными действиями: планка, которую надо превзойти.
env = gym.make("CartPole-v1")
random_returns = []
for k in range(CFG["eval_episodes"]):
    env.reset(seed=EVAL_SEED + k)
    env.action_space.seed(k)
    done, total = False, 0.0
    while not done:
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total, done = total + reward, terminated or truncated
    random_returns.append(total)
random_return = float(np.mean(random_returns))
torch.manual_seed(CFG["dqn_seeds"][0])
untrained_return = greedy_return(QNetwork(4, 2, CFG["hidden"]).to(RL_DEVICE), CFG["eval_episodes"], EVAL_SEED)

print(f"Случайная политика: {random_return:.1f} за эпизод, жадная политика необученной сети: {untrained_return:.1f} "
      f"({CFG['eval_episodes']} эпизодов оценки)")
print(f"{'сид':>4}{'шагов':>8}{'эпизодов':>10}{'обновлений':>12}{'секунд':>8}{'награда (жадно)':>16}")
for seed in CFG["dqn_seeds"]:
    r = runs[("ours", seed)]
    print(f"{seed:>4}{CFG['dqn_steps']:>8}{len(r['history']['returns']):>10}{r['history']['updates']:>12}"
          f"{r['seconds']:>8.1f}{r['greedy']:>16.1f}")
ours_greedy = float(np.median([runs[("ours", s)]["greedy"] for s in CFG["dqn_seeds"]]))
print(f"медиана по сидам: {ours_greedy:.1f} (максимум в CartPole-v1 — 500)")
utils.plot_returns({f"сид {s}": runs[("ours", s)]["history"]["returns"] for s in CFG["dqn_seeds"]}, window=20,
                   title="DQN на CartPole-v1: награда за эпизод при обучении (ε-жадно)");

# %% [markdown]
# Посмотрим на один эпизод жадного агента. Картинку рисуем сами по состоянию (положение тележки $x$ и угол шеста
# $\theta$): так анимация не требует ни экрана, ни `pygame`.

# %%
def draw_cartpole(ax, state, step):
    """Кадр CartPole по состоянию (x, x_dot, theta, theta_dot); длина шеста 1.0, как в gymnasium."""
    x, _, theta, _ = state
    ax.clear()
    ax.plot([-2.4, 2.4], [0, 0], color="gray", lw=1)
    ax.add_patch(plt.Rectangle((x - 0.25, 0), 0.5, 0.25, color="tab:blue"))
    ax.plot([x, x + np.sin(theta)], [0.25, 0.25 + np.cos(theta)], color="tab:orange", lw=5)
    ax.set_xlim(-2.4, 2.4)
    ax.set_ylim(-0.2, 1.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(f"шаг {step}", fontsize=9)


best_seed = max(CFG["dqn_seeds"], key=lambda s: runs[("ours", s)]["greedy"])
agent = runs[("ours", best_seed)]["net"]
env = gym.make("CartPole-v1")
obs, _ = env.reset(seed=EVAL_SEED)
states, done = [obs], False
while not done:
    with torch.no_grad():
        obs, _, terminated, truncated, _ = env.step(int(agent(torch.as_tensor(obs, device=RL_DEVICE)).argmax()))
    states.append(obs)
    done = terminated or truncated
print(f"эпизод длился {len(states) - 1} шагов")
frames = np.linspace(0, len(states) - 1, min(len(states), utils.by_mode(25, 60))).astype(int)
fig, strip = plt.subplots(1, 6, figsize=(12, 2))
for ax, i in zip(strip, frames[np.linspace(0, len(frames) - 1, 6).astype(int)], strict=True):
    draw_cartpole(ax, states[i], i)
plt.show()
fig, ax = plt.subplots(figsize=(4, 1.8), dpi=60)
utils.animate(fig, lambda k: draw_cartpole(ax, states[frames[k]], frames[k]), n_frames=len(frames), interval_ms=120)

# %% [markdown]
# ## 6. Частые ошибки, измеренные
#
# Во многих учебных реализациях DQN встречаются две ошибки:
# - `replay()` вызывается **один раз за эпизод**: на эпизод в 20 шагов — один градиентный шаг вместо 20 (часто и
#   ε уменьшается внутри `replay()`, то есть тоже раз за эпизод);
# - в буфер записывается общий флаг конца эпизода. В старом API `gym` (`step()` возвращает четыре значения) флаг
#   `done` один и для упавшего шеста, и для лимита времени; в `gymnasium` та же ошибка — записать
#   `terminated or truncated`. Тогда цель на 500-м шаге — одна награда, будто шест упал.
#
# Измерим обе. Первую — при одинаковом числе шагов среды и одинаковой оценке (ε во всех вариантах убывает
# одинаково, по шагам среды: меряем только частоту обучения). Колонка «$Q(s_0)$» — оценка сети в начальных
# состояниях: для агента, который держит шест все 500 шагов, настоящая дисконтированная награда —
# $\sum_{k<500} 0.99^k \approx 99.3$.

# %%
VARIANTS = {"ours": "наш DQN", "replay_per_episode": "шаг обучения раз в эпизод"}
for seed in CFG["dqn_seeds"]:
    start = time.perf_counter()
    net, history = train_dqn(seed, "replay_per_episode")
    runs[("replay_per_episode", seed)] = {"net": net, "history": history, "seconds": time.perf_counter() - start,
                                          "greedy": greedy_return(net, CFG["eval_episodes"], EVAL_SEED)}


def variant_table(runs, variants, seeds, final_values=False):
    """Печатает по варианту: медиану награды жадной политики, награды по сидам, обновления, эпизоды до лимита и Q(s0)
    отобранной сети (или последней, если ``final_values``); возвращает медианы награды жадной политики и Q(s0)."""
    print(f"{'вариант':<28}{'жадно, медиана':>17}{'по сидам':>22}{'обновлений':>12}{'до лимита':>11}{'Q(s0)':>8}")
    scores, values = {}, {}
    for variant, label in variants.items():
        rs = [runs[(variant, s)] for s in seeds]
        scores[variant] = float(np.median([r["greedy"] for r in rs]))
        values[variant] = float(np.median([r["history"]["final_start_value"] if final_values else start_value(r["net"])
                                           for r in rs]))
        per_seed = " ".join(f"{r['greedy']:.0f}" for r in rs)
        print(f"{label:<28}{scores[variant]:>17.1f}{per_seed:>22}"
              f"{np.mean([r['history']['updates'] for r in rs]):>12.0f}"
              f"{np.mean([r['history']['episodes_at_limit'] for r in rs]):>11.1f}{values[variant]:>8.1f}")
    return scores, values


print(f"{CFG['dqn_steps']} шагов среды на запуск, сиды {list(CFG['dqn_seeds'])}; награда жадной политики — на "
      f"{CFG['eval_episodes']} эпизодах оценки")
variant_scores, _ = variant_table(runs, VARIANTS, CFG["dqn_seeds"])
print(f"{'случайная политика':<28}{random_return:>17.1f}")

# %% [markdown]
# **Обучение раз в эпизод** делает за те же шаги среды во много раз меньше градиентных шагов (у нас — шаг на
# каждые два шага среды, там — один на эпизод, то есть меньше примерно в половину средней длины эпизода; см.
# столбец «обновлений») — и проигрывает.
#
# **Обрыв по времени как конец эпизода** затрагивает только переходы на последнем разрешённом шаге. С лимитом в 500
# шагов за обучение до него доходят немногие эпизоды (столбец «до лимита» в таблице выше), и таких переходов мало.
# Поэтому возьмём CartPole с лимитом
# `CFG["short_limit"]` шагов: хороший агент доходит до него почти в каждом эпизоде. Обучим наш DQN и вариант с
# ошибкой в этой среде и посмотрим на $Q(s_0)$. В правильном варианте обрыв — не конец: цель продолжает ценность
# следующего состояния, и для агента, который не роняет шест, $Q(s_0)$ стремится к $1 / (1 - \gamma) = 100$. С
# ошибкой сеть учится, что из некоторых состояний, ничем не отличимых от середины эпизода (времени в наблюдении
# нет), будущего нет, — и занижает ценности. $Q(s_0)$ здесь — у последней сети запуска (у отобранной оно зависит от
# того, на каком шаге её отобрали); награду жадной политики по-прежнему меряем у отобранной, в обычной среде с лимитом 500.
# Ценности растут медленно (целевая сеть догоняет онлайн-сеть за сотни обновлений), поэтому разница видна только
# при достаточно долгом обучении.

# %%
limit_runs = {}
for variant in ("ours", "truncation_as_termination"):
    for seed in CFG["dqn_seeds"]:
        net, history = train_dqn(seed, variant, steps=CFG["limit_steps"], time_limit=CFG["short_limit"])
        limit_runs[(variant, seed)] = {"net": net, "history": history,
                                       "greedy": greedy_return(net, CFG["eval_episodes"], EVAL_SEED)}
print(f"лимит эпизода при обучении — {CFG['short_limit']} шагов; для сравнения: 1 / (1 − γ) = "
      f"{1 / (1 - CFG['gamma']):.1f}, сумма γ^k за {CFG['short_limit']} шагов = "
      f"{sum(CFG['gamma'] ** k for k in range(CFG['short_limit'])):.1f}")
limit_scores, limit_values = variant_table(
    limit_runs, {"ours": "наш DQN", "truncation_as_termination": "обрыв по времени = конец"}, CFG["dqn_seeds"],
    final_values=True)
utils.record("limit_ours_greedy", limit_scores["ours"])
utils.record("limit_truncation_greedy", limit_scores["truncation_as_termination"])

# %% [markdown]
# В записанном полном запуске (медиана по сидам) $Q(s_0)$ нашего DQN —
# {{result 06_dqn full.values.limit_ours_start_value .1f}}, с ошибкой —
# {{result 06_dqn full.values.limit_truncation_start_value .1f}}; награда жадной политики в обычной среде —
# {{result 06_dqn full.values.limit_ours_greedy .1f}} и {{result 06_dqn full.values.limit_truncation_greedy .1f}}.
# Правильный вариант оценивает старт почти в $1 / (1 - \gamma)$, вариант с ошибкой — заметно ниже: сеть считает, что
# будущего меньше, чем его есть. По награде жадной политики варианты при трёх сидах не различить: она сильно меняется
# от запуска к запуску, и ошибку видно именно по $Q(s_0)$. В быстром режиме обучение слишком короткое:
# ценности ещё далеки от своих пределов, и $Q(s_0)$ двух вариантов почти равны — разница видна только в полном. Правильно —
# записывать в буфер `terminated`, а не `terminated or truncated`.
#
# **Ещё три решения из учебных реализаций** — не ошибки в смысле «код считает не то», но о них стоит знать:
# - «штраф за падение»: `if done and time < 499: reward = -10`. Это уже другая задача (подгонка награды, reward
#   shaping): агент учится на награде, которой у CartPole нет, и его $Q$-значения нельзя сравнивать с настоящей
#   наградой. Наш DQN обходится без штрафа;
# - жёсткое копирование целевой сети (`target_network.load_state_dict(q_network.state_dict())`) «каждые 100
#   эпизодов». Само копирование — из исходной статьи DQN (Mnih и др., 2015), только там оно шло раз в 10 000 шагов
#   обучения; если же обучение идёт раз за эпизод (первая ошибка выше), 100 эпизодов — это всего сотня обновлений
#   между копиями, а в первые эпизоды — и того меньше. Мы обновляем целевую сеть мягко, понемногу на каждом шаге
#   (`tau` в `CFG`), и цель не скачет в момент копирования;
# - REINFORCE, где функция обновления получает `states, actions, rewards`, а суммирует `-log_prob * reward` по
#   списку `log_probs`, которого не получала: такой код не запустится. Логарифмы вероятностей нужно запоминать в
#   момент выбора действия, пока строится граф вычислений (как `run_episode` в разделе 7). Нормировка возвратов в
#   эпизоде, `(G - G.mean()) / (G.std() + 1e-8)`, из того же кода — разумный приём; в разделе 7 мы его измерим.

# %% [markdown]
# ## 7. Градиент политики: REINFORCE
#
# DQN учит ценности и из них получает политику. Можно учить **политику напрямую**: сеть $\pi_\theta(a \mid s)$ выдаёт
# вероятности действий, и мы поднимаем ожидаемую награду эпизода $J(\theta) = \mathbb E_{\tau \sim p_\theta}[R(\tau)]$, где
# $\tau = (s_0, a_0, r_0, s_1, a_1, r_1, \dots)$ — эпизод, а $p_\theta(\tau)$ — его вероятность при политике $\pi_\theta$.
#
# **Вывод градиента** (Williams, 1992) — в три шага.
# 1. *Логарифмическая производная.* $J(\theta) = \sum_\tau p_\theta(\tau) R(\tau)$, и так как
#    $\nabla p = p\,\nabla \log p$, то $\nabla_\theta J = \sum_\tau p_\theta(\tau)\,\nabla_\theta \log p_\theta(\tau)\,R(\tau)
#    = \mathbb E_\tau\big[\nabla_\theta \log p_\theta(\tau)\,R(\tau)\big]$: градиент — среднее по эпизодам, а среднее можно
#    оценить, сыграв эпизоды.
# 2. *Среда не нужна.* $p_\theta(\tau) = p(s_0) \prod_t \pi_\theta(a_t \mid s_t)\,P(s_{t+1} \mid s_t, a_t)$; от $\theta$
#    зависят только множители политики, поэтому $\nabla_\theta \log p_\theta(\tau) = \sum_t \nabla_\theta \log
#    \pi_\theta(a_t \mid s_t)$ — переходы среды $P$ знать не нужно.
# 3. *Причинность.* Действие $a_t$ не влияет на награды до шага $t$: при фиксированной истории до $s_t$
#    $\mathbb E_{a_t \sim \pi}[\nabla_\theta \log \pi_\theta(a_t \mid s_t)] = \sum_a \nabla_\theta \pi_\theta(a \mid s_t)
#    = \nabla_\theta 1 = 0$, и слагаемые с прошлыми наградами в среднем дают ноль. Остаётся награда «от $t$ и дальше»:
#
# $$\nabla_\theta J(\theta) = \mathbb E_\pi\Big[\sum_t \nabla_\theta \log \pi_\theta(a_t \mid s_t)\,\big(G_t - b(s_t)\big)\Big].$$
#
# Тот же довод из шага 3 разрешает вычесть $b(s_t)$ — что угодно, зависящее только от состояния. Дисконт $\gamma < 1$
# внутри $G_t$ — сознательная поправка: дальние награды весят меньше, оценка шумит меньше, но это уже градиент не
# совсем той цели (так делают почти все реализации, делаем и мы).
#
# Сумма по шагам одного эпизода — несмещённая оценка этого градиента, но очень шумная. **Базовая линия** $b(s_t)$ — любая функция состояния,
# не зависящая от действия: она не меняет математическое ожидание (потому что
# $\mathbb E_{a\sim\pi}[\nabla_\theta \log \pi_\theta(a \mid s)] = 0$), но уменьшает дисперсию. Хорошая базовая линия —
# оценка ценности $V_\phi(s) \approx \mathbb E[G_t \mid s_t]$, которую учит вторая сеть регрессией на $G_t$. Её
# градиент не должен попадать в потери политики: базовая линия вычитается как константа.
#
# ### Упражнение 6: возвраты и потери REINFORCE
#
# - `discounted_returns(rewards, gamma)`: по списку наград эпизода верните тензор `float32` той же длины с
#   $G_t = r_t + \gamma G_{t+1}$ ($G$ после последнего шага — 0). Считайте с конца эпизода.
# - `reinforce_loss(log_probs, returns, baseline=None)`: верните скаляр
#   $-\frac{1}{T}\sum_t \log\pi(a_t \mid s_t)\,(G_t - b_t)$; без `baseline` $b_t = 0$. Базовая линия входит **без
#   градиента** (`detach`).
#
# Деление на длину эпизода $T$ — ради масштаба шага: эпизоды CartPole длятся от 8 до 500 шагов, и сумма по шагам
# менялась бы в десятки раз. Но $T$ случайна и зависит от действий, поэтому оценка с делением уже **смещена**:
# короткие эпизоды весят на шаг больше длинных, и член базовой линии перестаёт давать ноль в среднем (довод шага 3
# не работает, когда множитель $1/T$ зависит от $a_t$). Насколько это важно, измерим ниже.

# %% grade_id="reinforce_impl" solution=true
def discounted_returns(rewards, gamma):
    ### BEGIN SOLUTION
    returns = torch.zeros(len(rewards), dtype=torch.float32)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = float(rewards[t]) + gamma * running
        returns[t] = running
    return returns
    ### END SOLUTION


def reinforce_loss(log_probs, returns, baseline=None):
    ### BEGIN SOLUTION
    advantages = returns if baseline is None else returns - baseline.detach()
    return -(log_probs * advantages).mean()
    ### END SOLUTION


# %% grade_id="reinforce_tests" points=3
utils.assert_close(discounted_returns([1.0, 1.0, 1.0], 0.5), torch.tensor([1.75, 1.5, 1.0]),
                   "discounted_returns([1, 1, 1], γ = 0.5)")
_t_lp = torch.tensor([-0.5, -1.0], requires_grad=True)
_t_loss = reinforce_loss(_t_lp, torch.tensor([2.0, 1.0]))
utils.assert_close(_t_loss, torch.tensor(-(-0.5 * 2.0 - 1.0 * 1.0) / 2), "reinforce_loss без базовой линии")
print("Видимые тесты пройдены.")
### BEGIN HIDDEN TESTS
_t_G = discounted_returns([0.0, 0.0, 3.0, 1.0], 0.9)
assert _t_G.dtype == torch.float32 and _t_G.shape == (4,), "тензор float32 той же длины, что и награды"
utils.assert_close(_t_G, torch.tensor([0.81 * 3 + 0.729, 0.9 * 3 + 0.81, 3.0 + 0.9, 1.0]), "G_t считают с конца",
                   atol=1e-5)
utils.assert_close(discounted_returns([2.0], 0.99), torch.tensor([2.0]), "эпизод из одного шага")
# Градиент по логарифмам вероятностей равен -(G - b) / T, а в базовую линию градиент не идёт.
_t_lp = torch.tensor([-0.2, -1.5, -0.7], requires_grad=True)
_t_G = torch.tensor([3.0, 2.0, 1.0])
_t_b = torch.tensor([1.0, 1.0, 0.5], requires_grad=True)
_t_loss = reinforce_loss(_t_lp, _t_G, _t_b)
utils.assert_close(_t_loss, -(_t_lp.detach() * (_t_G - _t_b.detach())).mean(), "reinforce_loss с базовой линией")
_t_loss.backward()
utils.assert_close(_t_lp.grad, -(_t_G - _t_b.detach()) / 3, "градиент по log π: −(G − b) / T")
assert _t_b.grad is None, "базовая линия входит без градиента (detach): иначе потери политики учат и её"
# Сверка с autograd явной формулы для настоящей softmax-политики.
torch.manual_seed(0)
_t_logits = torch.randn(5, 2, requires_grad=True)
_t_act = torch.tensor([0, 1, 1, 0, 1])
_t_logp = torch.log_softmax(_t_logits, 1)[torch.arange(5), _t_act]
reinforce_loss(_t_logp, torch.arange(5.0)).backward()
_t_expected = torch.autograd.grad(-(torch.log_softmax(_t_logits, 1)[torch.arange(5), _t_act] * torch.arange(5.0)).sum() / 5,
                                  _t_logits)[0]
utils.assert_close(_t_logits.grad, _t_expected, "градиент по логитам политики", atol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# Обучим политику (сеть той же формы, что `QNetwork`, только её выходы — логиты действий) с базовой линией и без
# неё: по эпизоду — один шаг градиента.

# %%
def run_episode(policy, env, seed=None):
    """Один эпизод с действиями, выбранными из политики; наблюдения, логарифмы вероятностей и награды."""
    obs, _ = env.reset(seed=seed)
    observations, log_probs, rewards, done = [], [], [], False
    while not done:
        obs_t = torch.as_tensor(obs, device=RL_DEVICE)
        dist = torch.distributions.Categorical(logits=policy(obs_t))
        action = dist.sample()
        obs, reward, terminated, truncated, _ = env.step(int(action))
        observations.append(obs_t)
        log_probs.append(dist.log_prob(action))
        rewards.append(reward)
        done = terminated or truncated
    return torch.stack(observations), torch.stack(log_probs), rewards


def train_reinforce(seed, use_baseline, episodes=CFG["pg_episodes"], snapshot_at=None, lr=CFG["pg_lr"],
                    normalise=False):
    """REINFORCE на CartPole-v1, по желанию с обучаемой базовой линией или с нормировкой возвратов в эпизоде;
    политика, сеть ценности и награды."""
    utils.seed_everything(seed)
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    policy, value = QNetwork(4, 2, CFG["hidden"]).to(RL_DEVICE), QNetwork(4, 1, CFG["hidden"]).to(RL_DEVICE)
    opt_policy = torch.optim.Adam(policy.parameters(), lr=lr)
    opt_value = torch.optim.Adam(value.parameters(), lr=CFG["value_lr"])
    returns_per_episode, snapshot = [], None
    for episode in utils.progress(range(episodes), desc=f"REINFORCE {'с базой' if use_baseline else 'без базы'}"):
        if episode == snapshot_at:
            snapshot = (copy.deepcopy(policy), copy.deepcopy(value))
        observations, log_probs, rewards = run_episode(policy, env)
        G = discounted_returns(rewards, CFG["gamma"]).to(RL_DEVICE)
        baseline = None
        if use_baseline:
            baseline = value(observations).squeeze(1)
            value_loss = F.mse_loss(baseline, G)
            opt_value.zero_grad()
            value_loss.backward()
            opt_value.step()
        if normalise:  # (G − среднее) / разброс по шагам эпизода
            G = (G - G.mean()) / (G.std() + 1e-8) if len(G) > 1 else torch.zeros_like(G)
        loss = reinforce_loss(log_probs, G, baseline)
        opt_policy.zero_grad()
        loss.backward()
        opt_policy.step()
        returns_per_episode.append(sum(rewards))
    return policy.eval(), value.eval(), returns_per_episode, snapshot


pg_runs = {}
for use_baseline in (False, True):
    for seed in CFG["pg_seeds"]:
        start = time.perf_counter()
        policy, value, returns_, snapshot = train_reinforce(seed, use_baseline,
                                                            snapshot_at=2 * CFG["pg_episodes"] // 3)
        pg_runs[(use_baseline, seed)] = {"policy": policy, "returns": returns_, "snapshot": snapshot,
                                         "seconds": time.perf_counter() - start,
                                         "greedy": greedy_return(policy, CFG["eval_episodes"], EVAL_SEED)}

print(f"{CFG['pg_episodes']} эпизодов на запуск; награда жадной политики — на {CFG['eval_episodes']} эпизодах оценки")
print(f"{'вариант':<22}{'жадно, медиана':>17}{'по сидам':>16}{'последние 20 при обучении':>27}{'секунд':>8}")
pg_scores = {}
for use_baseline, label in ((False, "без базовой линии"), (True, "с базовой линией V(s)")):
    rs = [pg_runs[(use_baseline, s)] for s in CFG["pg_seeds"]]
    pg_scores[use_baseline] = float(np.median([r["greedy"] for r in rs]))
    per_seed = " ".join(f"{r['greedy']:.0f}" for r in rs)
    print(f"{label:<22}{pg_scores[use_baseline]:>17.1f}{per_seed:>16}"
          f"{np.mean([np.mean(r['returns'][-20:]) for r in rs]):>27.1f}{np.mean([r['seconds'] for r in rs]):>8.1f}")
utils.plot_returns({"без базовой линии": pg_runs[(False, CFG["pg_seeds"][0])]["returns"],
                    "с базовой линией": pg_runs[(True, CFG["pg_seeds"][0])]["returns"]}, window=10,
                   title=f"REINFORCE на CartPole-v1, сид {CFG['pg_seeds'][0]}");

# %% [markdown]
# Без базовой линии каждый шаг градиента умножает $\nabla \log \pi$ на $G_t$ — числа до сотни, у всех действий
# одного знака, и оценка сильно шумит. При том же шаге обучения политика может «схлопнуться»: вероятность одного
# действия уходит к 1, агент всё время толкает тележку в одну сторону, и шест быстро падает — из такой политики
# градиент почти нулевой, и она уже не выбирается. С базовой линией множитель $G_t - V(s_t)$ — отклонение от
# ожидаемого, он бывает обоих знаков и намного меньше.
#
# Но сравнение выше нечестное: у вариантов один шаг обучения, а множители $G_t$ без базовой линии в десятки раз
# больше, чем $G_t - V(s_t)$. Может быть, дело только в величине шага? Добавим два варианта без базовой линии:
# с шагом в {{result 06_dqn full.values.pg_lr_ratio .0f}} раз меньше и с нормировкой возвратов в эпизоде,
# $(G_t - \bar G) / \sigma_G$ (так делают многие реализации: множители порядка единицы и обоих знаков).

# %%
fair_runs = {}
for name, options in (("без базовой линии, шаг меньше", {"use_baseline": False, "lr": CFG["pg_small_lr"]}),
                      ("нормировка возвратов", {"use_baseline": False, "normalise": True})):
    policies = [train_reinforce(seed, **options)[0] for seed in CFG["pg_seeds"]]
    fair_runs[name] = [greedy_return(policy, CFG["eval_episodes"], EVAL_SEED) for policy in policies]
print(f"{'вариант':<32}{'жадно, медиана':>17}{'по сидам':>16}")
for label, scores in (("без базовой линии", [pg_runs[(False, s)]["greedy"] for s in CFG["pg_seeds"]]),
                      ("с базовой линией V(s)", [pg_runs[(True, s)]["greedy"] for s in CFG["pg_seeds"]]),
                      *fair_runs.items()):
    print(f"{label:<32}{np.median(scores):>17.1f}{' '.join(f'{x:.0f}' for x in scores):>16}")
utils.record("pg_lr_ratio", CFG["pg_lr"] / CFG["pg_small_lr"])
utils.record("reinforce_small_lr_greedy_median", float(np.median(fair_runs["без базовой линии, шаг меньше"])))
utils.record("reinforce_normalised_greedy_median", float(np.median(fair_runs["нормировка возвратов"])))

# %% [markdown]
# В записанном полном запуске (медианы по {{result 06_dqn full.values.pg_seed_count}} сидам, по
# {{result 06_dqn full.values.pg_episodes}} эпизодов): без базовой линии —
# {{result 06_dqn full.values.reinforce_greedy_median .1f}}, с меньшим шагом —
# {{result 06_dqn full.values.reinforce_small_lr_greedy_median .1f}}, с нормировкой —
# {{result 06_dqn full.values.reinforce_normalised_greedy_median .1f}}, с базовой линией —
# {{result 06_dqn full.values.reinforce_baseline_greedy_median .1f}}. Часть беды без базовой линии — действительно шаг:
# с меньшим шагом политика не схлопывается так быстро. Но ни меньший шаг, ни нормировка не дают того, что даёт
# базовая линия: нормировка вычитает одно среднее на весь эпизод, а $V(s_t)$ — своё для каждого состояния. Три сида —
# мало для точных цифр: смотрите на порядок, а не на десятки.
#
# **Дисперсия оценки градиента.** Возьмём политику и сеть ценности на двух третях обучения (с базовой линией, первый сид),
# сыграем `variance_episodes` эпизодов и по каждому посчитаем оценку градиента политики — без базовой линии и с
# ней. У оценок суммой среднее одно (базовая линия не смещает), а разброс разный. Заодно сравним направление среднего
# градиента с делением на $T$ (как в упражнении) и без него: оценка суммой — это та же оценка, умноженная на $T$.

# %%
def gradient_estimates(policy, value, episodes, use_baseline, seed=SELECT_SEED):
    """Одна оценка градиента политики на эпизод, вытянутая в строку: массив (episodes, n_parameters), и длины
    эпизодов."""
    env, estimates, lengths = gym.make("CartPole-v1"), [], []
    torch.manual_seed(seed)
    for k in range(episodes):
        observations, log_probs, rewards = run_episode(policy, env, seed=seed + k)
        G = discounted_returns(rewards, CFG["gamma"]).to(RL_DEVICE)
        with torch.no_grad():
            baseline = value(observations).squeeze(1) if use_baseline else None
        policy.zero_grad()
        reinforce_loss(log_probs, G, baseline).backward()
        estimates.append(torch.cat([p.grad.flatten() for p in policy.parameters()]).cpu().numpy())
        lengths.append(len(rewards))
    return np.stack(estimates), np.array(lengths)


snap_policy, snap_value = pg_runs[(True, CFG["pg_seeds"][0])]["snapshot"]
grad_stats = {}
for use_baseline in (False, True):
    g, lengths = gradient_estimates(snap_policy, snap_value, CFG["variance_episodes"], use_baseline)
    grad_stats[use_baseline] = {"variance": float(g.var(axis=0).sum()), "mean_norm": float(np.linalg.norm(g.mean(0))),
                                "per_step": g.mean(0), "summed": (g * lengths[:, None]).mean(0)}
variance_ratio = grad_stats[False]["variance"] / grad_stats[True]["variance"]
print(f"{'оценка градиента':<22}{'сумма дисперсий':>17}{'норма среднего':>16}")
for use_baseline, label in ((False, "без базовой линии"), (True, "с базовой линией")):
    print(f"{label:<22}{grad_stats[use_baseline]['variance']:>17.3g}{grad_stats[use_baseline]['mean_norm']:>16.3g}")
print(f"базовая линия уменьшает дисперсию в {variance_ratio:.1f} раза ({CFG['variance_episodes']} эпизодов)")


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


length_cosine = cosine(grad_stats[True]["per_step"], grad_stats[True]["summed"])
print(f"длины эпизодов: от {lengths.min()} до {lengths.max()} шагов; косинус между средними оценками с делением на T "
      f"и без него (с базовой линией): {length_cosine:.3f}")
utils.record("variance_episode_length_min", int(lengths.min()))
utils.record("variance_episode_length_max", int(lengths.max()))
utils.record("length_weighting_cosine", length_cosine)
utils.record("pg_seed_count", len(CFG["pg_seeds"]))
utils.record("pg_episodes", CFG["pg_episodes"])

# %% [markdown]
# В записанном полном запуске длины эпизодов в этом замере — от
# {{result 06_dqn full.values.variance_episode_length_min}} до {{result 06_dqn full.values.variance_episode_length_max}} шагов, а косинус между
# средними оценками с делением на $T$ и без него — {{result 06_dqn full.values.length_weighting_cosine .3f}} (1 — одно направление).
# Смещение от деления зависит от того, насколько разные у политики эпизоды: когда почти все эпизоды доходят до
# лимита, $1/T$ — почти общий множитель и направление не меняет. Оценка суммой по шагам несмещённая, но её масштаб
# скачет вместе с $T$; на практике делят на $T$ или на число шагов в батче и мирятся с небольшим смещением.
#
# ## 8. Итоги эксперимента

# %%
print("режим:", "быстрый" if FAST else "полный")
utils.summary([
    ("q_start_value", "Q-learning: ценность старта CliffWalking", float(Q[start_state].max()), ".2f"),
    ("q_star_start_value", "Q*: ценность старта (итерация ценности)", float(Q_star[start_state].max()), ".2f"),
    ("random_return", "случайная политика, CartPole", random_return, ".1f"),
    ("dqn_untrained_greedy", "DQN до обучения: награда жадной политики", untrained_return, ".1f"),
    ("dqn_steps", "шагов среды на запуск DQN", CFG["dqn_steps"]),
    ("dqn_greedy_median", "DQN: награда жадной политики (медиана сидов)", ours_greedy, ".1f"),
    ("replay_per_episode_greedy", "шаг обучения раз в эпизод", variant_scores["replay_per_episode"], ".1f"),
    ("limit_truncation_start_value", f"лимит {CFG['short_limit']}, обрыв = конец: Q(s0)",
     limit_values["truncation_as_termination"], ".1f"),
    ("limit_ours_start_value", f"лимит {CFG['short_limit']}, наш DQN: Q(s0)", limit_values["ours"], ".1f"),
    ("reinforce_greedy_median", "REINFORCE без базовой линии", pg_scores[False], ".1f"),
    ("reinforce_baseline_greedy_median", "REINFORCE с базовой линией", pg_scores[True], ".1f"),
    ("gradient_variance_ratio", "дисперсия градиента: без базы / с базой", variance_ratio, ".1f"),
])

# %% [markdown]
# ## 9. Вопросы (проверяет преподаватель)
#
# **Вопрос 1.** Что такое дилемма исследования и использования? Что случится с агентом CliffWalking при
# $\varepsilon = 0$ с самого начала (проверьте: задайте `CFG["q_epsilon"] = 0` и перезапустите раздел 3) и при
# $\varepsilon = 1$ всё время? Почему в DQN $\varepsilon$ уменьшают со временем?

# %% [markdown] grade_id="q_exploration" points=2 solution=true
# ### BEGIN SOLUTION
# Использовать — брать лучшее по текущим оценкам действие; исследовать — пробовать другие, чтобы оценки стали
# верными. В CliffWalking при ε = 0 агент с нулевой таблицей всё равно исследует: все награды отрицательны, и
# любое испробованное действие сразу получает оценку ниже нуля, а неиспробованные остаются с нулём и выглядят
# лучше. Это **оптимистичные начальные значения**: жадный агент сам обходит все действия (первый эпизод —
# {{result diagnostics/cliff_zero_epsilon full.values.eps0_first_episode_length}} шагов), но затем находит кратчайший путь вдоль обрыва, ценность старта совпадает с Q*
# ({{result diagnostics/cliff_zero_epsilon full.values.eps0_start_value .2f}}), и, раз случайных шагов нет, он проходит путь за
# {{result diagnostics/cliff_zero_epsilon full.values.eps0_last_50_mean_length .0f}} шагов без падений (последние 50 эпизодов: награда
# {{result diagnostics/cliff_zero_epsilon full.values.eps0_last_50_mean_return .1f}}, падений {{result diagnostics/cliff_zero_epsilon full.values.eps0_last_50_falls}}) — лучше, чем при ε = 0,1
# ({{result diagnostics/cliff_zero_epsilon full.values.eps_chapter_last_50_mean_return .1f}}, {{result diagnostics/cliff_zero_epsilon full.values.eps_chapter_last_50_falls}} падений). Застрять без исследования агент
# может там, где начальные оценки пессимистичны: например, если награды положительны, а таблица нулевая, он
# будет повторять первое действие, давшее награду. При ε = 1 оценки Q со временем станут верными (Q-learning
# учит жадную политику вне зависимости от поведения), но сам агент будет вести себя случайно и часто падать в
# обрыв. В DQN в начале оценки бессмысленны и данных мало, поэтому исследуют много; когда сеть научилась,
# случайные действия только портят эпизоды и данные в буфере, поэтому ε уменьшают до небольшого значения.
# ### END SOLUTION

# %% [markdown]
# **Вопрос 2.** Зачем DQN целевая сеть? Что произойдёт, если считать цель той же сетью, которую обучаем, и ещё
# с градиентом через цель?

# %% [markdown] grade_id="q_target_net" points=2 solution=true
# ### BEGIN SOLUTION
# Цель r + γ max Q(s') зависит от обучаемых параметров: каждый шаг градиента сдвигает и предсказание, и цель, и
# регрессия гонится за движущейся мишенью — ошибка в одном состоянии через цели переходит в соседние и может
# усиливаться, обучение колеблется и может разойтись. Целевая сеть — медленно меняющаяся копия — делает цель почти
# постоянной на многие шаги, и задача становится обычной регрессией. Систематическое завышение из-за max (максимум
# шумных оценок в среднем больше максимума настоящих) целевая сеть не убирает: его уменьшает Double DQN, где
# действие выбирает онлайн-сеть, а оценивает целевая (домашнее задание 4). Градиент через цель превратил бы
# потери в «подтяни и цель к предсказанию»: сеть уменьшала бы разность, двигая оба её конца, а не оценивала бы
# ценность (это уже не Q-learning).
# ### END SOLUTION

# %% [markdown]
# **Вопрос 3.** Зачем буфер воспроизведения? Объясните по таблице раздела 6, почему обучение раз в эпизод хуже,
# даже если батч тот же.

# %% [markdown] grade_id="q_replay" points=2 solution=true
# ### BEGIN SOLUTION
# Подряд идущие переходы одного эпизода сильно скоррелированы, и градиентный спуск по ним в порядке игры
# переобучается на текущий участок и забывает остальное; случайные батчи из большого буфера делают данные почти
# независимыми и одинаково распределёнными, а каждый переход используется много раз (эффективность по данным).
# Обучение раз в эпизод делает за те же шаги среды во много раз меньше градиентных шагов (столбец «обновлений»):
# данных в буфере столько же, а сеть учится гораздо меньше. ε в нашем варианте убывает по шагам среды, как и в
# правильном, так что разница в таблице — от частоты обучения.
# ### END SOLUTION

# %% [markdown]
# ## 10. Что дальше
#
# **Мы узнали:** задачу RL (награда, политика, ценность, уравнение Беллмана), табличный Q-learning и ε-жадное
# исследование, DQN (буфер воспроизведения, целевая сеть, потери Хьюбера, terminated против truncated), градиент
# политики REINFORCE и базовую линию, которая уменьшает дисперсию, не смещая оценку.
#
# **Дальше:** в главе 7 — мета-обучение: как научиться быстро учиться новой задаче по нескольким примерам.
#
# **Домашнее задание:**
# 1. Обучите DQN на `Acrobot-v1` (награда −1 за шаг, лимит 500): сколько шагов нужно, чтобы жадная политика
#    поднимала маятник быстрее чем за 100 шагов?
# 2. Повторите замер раздела 6 для обрыва по времени с лимитами 50 и 200 шагов: как разница $Q(s_0)$ между
#    правильным вариантом и ошибкой зависит от лимита, и почему?
# 3. Замените Q-learning на SARSA (цель $r + \gamma Q(s', a')$ для действия, которое агент действительно сделает)
#    в CliffWalking: какой путь выучит агент и почему?
# 4. Double DQN: выбирайте $a' = \arg\max_a Q_\theta(s', a)$ онлайн-сетью, а оценивайте целевой. Сравните $Q(s_0)$.
