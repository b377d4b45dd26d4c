"""Chapter 06: each exercise's tests reject the plausible mistakes and accept other correct code."""

from __future__ import annotations

from exercise_checks import exercise_tests, variants

CHAPTER = "06_dqn"

Q_UPDATE = """
def q_learning_update(Q, s, a, r, s_next, terminated, alpha, gamma):
    target = {target}
    td_error = float(target - Q[s, a])
    {update}
    return {result}
"""
GOOD_Q_UPDATE = dict(target="r if terminated else r + gamma * Q[s_next].max()",
                     update="Q[s, a] += alpha * td_error", result="td_error")
q_update = variants(Q_UPDATE, GOOD_Q_UPDATE)


EPSILON = """
def epsilon_greedy(q_values, epsilon, rng):
    q_values = np.asarray(q_values)
    if {explore}:
        return {random_action}
    return {greedy}
"""
GOOD_EPSILON = dict(explore="rng.random() < epsilon", random_action="int(rng.integers(len(q_values)))",
                    greedy="int(rng.choice(np.flatnonzero(q_values == q_values.max())))")
epsilon = variants(EPSILON, GOOD_EPSILON)


BUFFER = """
class ReplayBuffer:
    def __init__(self, capacity, obs_dim):
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype={action_dtype})
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.position, self.size = 0, 0

    def add(self, obs, action, reward, next_obs, terminated):
        i = self.position
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.terminated[i] = next_obs, float(terminated)
        self.position = {next_position}
        self.size = min(self.size + 1, self.capacity)

    def __len__(self):
        return {length}

    def sample(self, batch_size, rng):
        idx = {indices}
        return tuple(torch.as_tensor(array[idx]) for array in
                     (self.obs, self.actions, self.rewards, self.next_obs, self.terminated))
"""
GOOD_BUFFER = dict(action_dtype="np.int64", next_position="(i + 1) % self.capacity", length="self.size",
                   indices="rng.integers(0, self.size, size=batch_size)")
buffer = variants(BUFFER, GOOD_BUFFER)


QNET = """
class QNetwork(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden=128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, {h}), nn.ReLU(), {middle}nn.Linear({h}, n_actions){out})

    def forward(self, obs):
        return self.net(obs)
"""
GOOD_QNET = dict(h="hidden", middle="nn.Linear(hidden, hidden), nn.ReLU(), ", out="")
qnet = variants(QNET, GOOD_QNET)


DQN = qnet() + """
def dqn_targets(rewards, next_q_target, terminated, gamma):
    return {targets}


def dqn_loss(q_net, target_net, batch, gamma):
    obs, actions, rewards, next_obs, terminated = batch
    q_taken = {q_taken}
    {no_grad}
        targets = dqn_targets(rewards, {next_net}(next_obs), terminated, gamma)
    return {loss}(q_taken, targets)
"""
GOOD_DQN = dict(targets="rewards + gamma * (1.0 - terminated) * next_q_target.max(dim=1).values",
                q_taken="q_net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)", no_grad="with torch.no_grad():",
                next_net="target_net", loss="F.smooth_l1_loss")
dqn = variants(DQN, GOOD_DQN)


REINFORCE = """
def discounted_returns(rewards, gamma):
    returns = torch.zeros(len(rewards), dtype=torch.float32)
    running = 0.0
    for t in {order}:
        running = float(rewards[t]) + {discount} * running
        returns[t] = running
    return returns


def reinforce_loss(log_probs, returns, baseline=None):
    advantages = returns if baseline is None else {advantages}
    return {loss}
"""
GOOD_REINFORCE = dict(order="reversed(range(len(rewards)))", discount="gamma",
                      advantages="returns - baseline.detach()", loss="-(log_probs * advantages).mean()")
reinforce = variants(REINFORCE, GOOD_REINFORCE)


EXERCISES = {
    "q_learning_update_tests": {
        "correct": {
            "reference": q_update(),
            "numpy max, no temporary": """
def q_learning_update(Q, s, a, r, s_next, terminated, alpha, gamma):
    td = r + (0.0 if terminated else gamma * np.max(Q[s_next])) - Q[s, a]
    Q[s, a] = Q[s, a] + alpha * td
    return float(td)
""",
        },
        "wrong": {
            "bootstraps through termination": q_update(target="r + gamma * Q[s_next].max()"),
            "Q(s', a) instead of the max": q_update(target="r if terminated else r + gamma * Q[s_next, a]"),
            "min instead of max": q_update(target="r if terminated else r + gamma * Q[s_next].min()"),
            "alpha ignored": q_update(update="Q[s, a] += td_error"),
            "sign of the step flipped": q_update(update="Q[s, a] -= alpha * td_error"),
            "returns the new value, not the TD error": q_update(result="float(Q[s, a])"),
            "updates a copy": q_update(update="Q = Q.copy(); Q[s, a] += alpha * td_error"),
        },
    },
    "epsilon_greedy_tests": {
        "correct": {
            "reference": epsilon(),
            "permutation breaks ties": """
def epsilon_greedy(q_values, epsilon, rng):
    q = np.asarray(q_values, dtype=float)
    n = q.shape[0]
    if rng.uniform() < epsilon:
        return int(rng.integers(0, n))
    order = rng.permutation(n)
    return int(order[np.argmax(q[order])])
""",
        },
        "wrong": {
            "explores only among the other actions": epsilon(random_action="int(rng.choice(np.flatnonzero(q_values != q_values.max())))"),
            "np.argmax: ties always go to the first": epsilon(greedy="int(np.argmax(q_values))"),
            "never explores": epsilon(explore="False"),
            "explores with probability 1 - epsilon": epsilon(explore="rng.random() < 1 - epsilon"),
            "global np.random instead of rng": epsilon(explore="np.random.random() < epsilon",
                                                       random_action="int(np.random.randint(len(q_values)))"),
        },
    },
    "replay_buffer_tests": {
        "correct": {
            "reference": buffer(),
            "a filled counter and a write index": """
class ReplayBuffer:
    def __init__(self, capacity, obs_dim):
        self.obs = np.empty((capacity, obs_dim), np.float32)
        self.next_obs = np.empty((capacity, obs_dim), np.float32)
        self.actions = np.empty(capacity, np.int64)
        self.rewards = np.empty(capacity, np.float32)
        self.terminated = np.empty(capacity, np.float32)
        self.count = 0

    def add(self, obs, action, reward, next_obs, terminated):
        i = self.count % len(self.obs)
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = 1.0 if terminated else 0.0
        self.count += 1

    def __len__(self):
        return min(self.count, len(self.obs))

    def sample(self, batch_size, rng):
        idx = rng.integers(len(self), size=batch_size)
        return (torch.from_numpy(self.obs[idx]), torch.from_numpy(self.actions[idx]),
                torch.from_numpy(self.rewards[idx]), torch.from_numpy(self.next_obs[idx]),
                torch.from_numpy(self.terminated[idx]))
""",
        },
        "wrong": {
            "a deque of tuples": """
from collections import deque


class ReplayBuffer:
    def __init__(self, capacity, obs_dim):
        self.memory = deque(maxlen=capacity)

    def add(self, obs, action, reward, next_obs, terminated):
        self.memory.append((obs, action, reward, next_obs, float(terminated)))

    def __len__(self):
        return len(self.memory)

    def sample(self, batch_size, rng):
        batch = [self.memory[i] for i in rng.integers(0, len(self.memory), batch_size)]
        return tuple(torch.as_tensor(np.array(column), dtype=torch.float32 if k != 1 else torch.int64)
                     for k, column in enumerate(zip(*batch)))
""",
            "no wrap-around": buffer(next_position="i + 1"),
            "samples empty slots too": buffer(indices="rng.integers(0, self.capacity, size=batch_size)"),
            "length is the capacity": buffer(length="self.capacity"),
            "actions stored as floats": buffer(action_dtype="np.float32"),
            "global np.random instead of rng": buffer(indices="np.random.randint(0, self.size, size=batch_size)"),
        },
    },
    "q_network_tests": {
        "correct": {
            "reference": qnet(),
            "layers as attributes": """
class QNetwork(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden=128):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(obs_dim, hidden), nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, n_actions)

    def forward(self, obs):
        return self.head(F.relu(self.fc2(F.relu(self.fc1(obs)))))
""",
        },
        "wrong": {
            "softmax at the output": qnet(out=", nn.Softmax(dim=-1)"),
            "relu at the output": qnet(out=", nn.ReLU()"),
            "tanh at the output": qnet(out=", nn.Tanh()"),
            "hidden ignored": qnet(h="128", middle="nn.Linear(128, 128), nn.ReLU(), "),
            "one hidden layer": qnet(middle=""),
        },
    },
    "dqn_loss_tests": {
        "correct": {
            "reference": dqn(),
            "detach and a boolean mask": qnet() + """
def dqn_targets(rewards, next_q_target, terminated, gamma):
    best = next_q_target.max(dim=1).values
    return torch.where(terminated.bool(), rewards, rewards + gamma * best)


def dqn_loss(q_net, target_net, batch, gamma):
    obs, actions, rewards, next_obs, terminated = batch
    q = q_net(obs)[torch.arange(len(actions)), actions]
    y = dqn_targets(rewards, target_net(next_obs).detach(), terminated, gamma).detach()
    return F.huber_loss(q, y, delta=1.0)
""",
        },
        "wrong": {
            "max over the online network": dqn(next_net="q_net"),
            "bootstraps through termination": dqn(targets="rewards + gamma * next_q_target.max(dim=1).values"),
            "mask applied to the reward too": dqn(
                targets="(1.0 - terminated) * (rewards + gamma * next_q_target.max(dim=1).values)"),
            "mean over actions instead of the max": dqn(
                targets="rewards + gamma * (1.0 - terminated) * next_q_target.mean(dim=1)"),
            "gamma ignored": dqn(targets="rewards + (1.0 - terminated) * next_q_target.max(dim=1).values"),
            "target with gradient (no no_grad)": dqn(no_grad="if True:"),
            "MSE instead of Huber": dqn(loss="F.mse_loss"),
            "mean Q over actions instead of the taken one": dqn(q_taken="q_net(obs).mean(dim=1)"),
        },
    },
    "reinforce_tests": {
        "correct": {
            "reference": reinforce(),
            "discount matrix": """
def discounted_returns(rewards, gamma):
    r = torch.as_tensor(list(rewards), dtype=torch.float32)
    t = torch.arange(len(r))
    powers = torch.where(t[None, :] >= t[:, None], gamma ** (t[None, :] - t[:, None]).float(), torch.zeros(()))
    return powers @ r


def reinforce_loss(log_probs, returns, baseline=None):
    if baseline is None:
        baseline = torch.zeros_like(returns)
    return -torch.mean(log_probs * (returns - baseline.detach()))
""",
        },
        "wrong": {
            "discounted from the start of the episode": reinforce(order="range(len(rewards))"),
            "no discount": reinforce(discount="1.0"),
            "baseline with gradient": reinforce(advantages="returns - baseline"),
            "baseline ignored": reinforce(advantages="returns"),
            "sign flipped": reinforce(loss="(log_probs * advantages).mean()"),
            "sum instead of mean": reinforce(loss="-(log_probs * advantages).sum()"),
        },
    },
}

(test_correct_implementations_pass, test_plausible_mistakes_are_rejected,
 test_every_exercise_lists_at_least_three_mistakes, test_mistakes_cost_only_their_own_exercise) = exercise_tests(CHAPTER, EXERCISES)
