"""Tabular Q-learning on CliffWalking with epsilon = 0: does a greedy agent with a zero table explore? (issue 38 §1)

Chapter 06's question 1 asks students to set CFG["q_epsilon"] = 0 and rerun section 3; its model answer says the
greedy agent still explores (all rewards are negative, so a zero table is optimistic), that the first episodes are
long, and that it then walks the 13-step path along the cliff with no falls. This script runs exactly section 3's
loop (the chapter's q_learning_update, epsilon_greedy and value_iteration, its CFG, the same seeds) with epsilon 0
and with the chapter's epsilon, and records what the answer quotes. Writes results/diagnostics/cliff_zero_epsilon.json.

    python -m tools.diagnostics.cliff_zero_epsilon
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from tools import records
from tools.artifacts.chapter_code import load_chapter

NAME = "diagnostics/cliff_zero_epsilon"
START = 36  # the bottom-left corner, as in the chapter


def q_learning(ch: dict, epsilon: float) -> dict:
    """Section 3's loop with the given epsilon: per-episode returns and lengths, the learned start value."""
    cfg = ch["CFG"]
    cliff = gym.make("CliffWalking-v1")
    rng = np.random.default_rng(0)
    Q = np.zeros((cliff.observation_space.n, cliff.action_space.n))
    returns, lengths, falls = [], [], []
    for _ in range(cfg["q_episodes"]):
        s, _ = cliff.reset(seed=int(rng.integers(2**31)))
        done, total, steps, fell = False, 0.0, 0, 0
        while not done:
            a = ch["epsilon_greedy"](Q[s], epsilon, rng)
            s_next, r, terminated, truncated, _ = cliff.step(a)
            ch["q_learning_update"](Q, s, a, r, s_next, terminated, cfg["q_alpha"], cfg["q_gamma"])
            s, total, done, steps, fell = s_next, total + r, terminated or truncated, steps + 1, fell + (r == -100)
        returns.append(total)
        lengths.append(steps)
        falls.append(fell)
    Q_star, _ = ch["value_iteration"](cliff.unwrapped.P, Q.shape[0], Q.shape[1], cfg["q_gamma"])
    return {"first_episode_length": lengths[0], "first_10_mean_length": float(np.mean(lengths[:10])),
            "last_50_mean_return": float(np.mean(returns[-50:])), "last_50_mean_length": float(np.mean(lengths[-50:])),
            "last_50_falls": int(sum(falls[-50:])), "start_value": round(float(Q[START].max()), 4),
            "start_value_q_star": round(float(Q_star[START].max()), 4), "episodes": len(returns)}


def main() -> None:
    ch = load_chapter("06_dqn", names=("RL_DEVICE", "CFG", "EVAL_SEED", "SELECT_SEED"), context={"FAST": False})
    values = {}
    for label, epsilon in (("eps0", 0.0), ("eps_chapter", ch["CFG"]["q_epsilon"])):
        for key, value in q_learning(ch, epsilon).items():
            values[f"{label}_{key}"] = value
    values["chapter_epsilon"] = ch["CFG"]["q_epsilon"]
    print(values)
    records.write(NAME, {"full": {"values": values,
                                  **records.provenance("python -m tools.diagnostics.cliff_zero_epsilon")}})


if __name__ == "__main__":
    main()
