"""First- vs second-order MAML over several seeds, with learning curves (issue 38 §1, chapter 07).

The chapter's shipped networks are one 3000-step run of each order (80.6% vs 95.6% on 5-way 1-shot). One run per
order cannot say whether the gap is the order or the seed. This script trains both orders with the chapter's own
code (train_maml, evaluate_maml, its full-mode CFG) for a shorter budget and several seeds, and records per run:
the outer loss averaged over windows of steps (the learning curve) and the 5-way 1-shot test accuracy with its 95%
interval. Runs of one invocation go to results/diagnostics/maml_order_seeds.json, merged with what is there, so
that two processes (one thread each) can share the work:

    python -m tools.diagnostics.maml_order_seeds --seeds 0 1 2 --order first [--steps 400] [--threads 1]
    python -m tools.diagnostics.maml_order_seeds --seeds 0 1 2 --order second
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from tools import records
from tools.artifacts.chapter_code import add_device_arguments, device_of
from tools.artifacts.fewshot import accuracy_record, chapter_namespace, final_loss

NAME = "diagnostics/maml_order_seeds"
CURVE_WINDOW = 50
EPISODES = 300


def run(ch: dict, seed: int, first_order: bool, steps: int) -> dict:
    torch.manual_seed(seed)
    model = ch["maml_model"]()
    start = time.perf_counter()
    losses, _ = ch["train_maml"](model, steps, first_order=first_order, seed=seed)
    seconds = time.perf_counter() - start
    curve = [round(float(np.mean(losses[i:i + CURVE_WINDOW])), 4) for i in range(0, steps, CURVE_WINDOW)]
    accuracy = accuracy_record(ch["mean_ci"], ch["evaluate_maml"](model, 1, episodes=EPISODES))
    return {"seed": seed, "first_order": first_order, "steps": steps, "loss_curve": curve,
            "curve_window": CURVE_WINDOW, "final_loss": final_loss(losses), "accuracy_5way_1shot": accuracy,
            "train_seconds": round(seconds, 1)}


def summary(runs: dict) -> dict:
    """Per order: the seeds' accuracies, their mean and range; the paired gap per seed."""
    values = {}
    for order in ("first", "second"):
        accs = {r["seed"]: r["accuracy_5way_1shot"]["mean"] for r in runs.values()
                if r["first_order"] == (order == "first")}
        if accs:
            values[f"{order}_mean"] = round(float(np.mean(list(accs.values()))), 4)
            values[f"{order}_min"] = round(min(accs.values()), 4)
            values[f"{order}_max"] = round(max(accs.values()), 4)
            values[f"{order}_runs"] = len(accs)
    accuracy = {name: r["accuracy_5way_1shot"]["mean"] for name, r in runs.items()}
    gaps = [accuracy[f"second_seed{s}"] - accuracy[f"first_seed{s}"] for s in sorted({r["seed"] for r in runs.values()})
            if f"second_seed{s}" in accuracy and f"first_seed{s}" in accuracy]
    if gaps:
        values.update(gap_min=round(min(gaps), 4), gap_max=round(max(gaps), 4), paired_seeds=len(gaps))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--order", choices=("first", "second"), required=True)
    parser.add_argument("--steps", type=int, default=400)  # the recorded runs
    add_device_arguments(parser)
    args = parser.parse_args()
    ch = chapter_namespace(device_of(args))
    new = {}
    for seed in args.seeds:
        new[f"{args.order}_seed{seed}"] = r = run(ch, seed, args.order == "first", args.steps)
        print(f"{args.order} order, seed {seed}: {r['accuracy_5way_1shot']}, {r['train_seconds']} s", flush=True)
    path = records.results_path(NAME)
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"full": {"runs": {}}}
    runs = {**data["full"]["runs"], **new}
    data["full"] = {"runs": runs, "values": summary(runs), "episodes": EPISODES,
                    **records.provenance("python -m tools.diagnostics.maml_order_seeds " + " ".join(sys.argv[1:]))}
    records.write(NAME, data)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
