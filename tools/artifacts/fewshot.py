"""Train and evaluate the Omniglot networks shipped with chapter 07_maml.

    python -m tools.artifacts.fewshot protonet [--episodes N] [--device cuda] [--threads 1]
    python -m tools.artifacts.fewshot maml [--steps N] [--second-order] [--device cuda] [--threads 1]

Uses the chapter's own code and settings (tools.artifacts.chapter_code: its
functions and its full-mode CFG) and writes under data/checkpoints/:
- omniglot_protonet.pt: the Conv-4 encoder of `train_protonet`;
- omniglot_maml_second_order.pt (--second-order): the Conv-4 + head of `train_maml`,
  the chapter's main MAML network;
- omniglot_maml.pt: the same, trained first order, which the chapter compares with it.
Each file holds the state dict and its record ("info": the settings it was
trained with, the training time and machine, and its accuracy with a 95%
confidence interval on 600 test episodes of the evaluation alphabets, measured
by the chapter's evaluate_* functions). The record is the one place these
figures live; the chapter and docs/results.md quote it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from tools import records
from tools.artifacts import checksums
from tools.artifacts.chapter_code import add_device_arguments, device_of, load_chapter
from tools.course import ROOT

CHAPTER = "07_maml"


def chapter_namespace(device: torch.device) -> dict:
    """The chapter's definitions and full-mode CFG, with its training and test data loaded."""
    os.environ.pop("COURSE_FAST", None)
    ch = load_chapter(CHAPTER, names=("CFG",), context={"device": device, "FAST": False})
    size = ch["CFG"]["image_size"]
    ch["train_x"], ch["train_y"] = ch["omniglot_classes"]("background", size, rotations=True)
    ch["test_x"], ch["test_y"] = ch["omniglot_classes"]("evaluation", size)
    return ch


def final_loss(losses: list[float], last: int = 100) -> float:
    """Mean of the last ``last`` training losses: the record's one-number summary of where training ended."""
    return round(sum(losses[-last:]) / len(losses[-last:]), 4)


def accuracy_record(mean_ci, accuracies) -> dict:
    mean, ci = mean_ci(accuracies)
    return {"mean": round(mean, 4), "ci95": round(ci, 4), "episodes": len(accuracies)}


def train_protonet(ch: dict, episodes: int) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    encoder = ch["ConvNet"](ch["CFG"]["proto_channels"]).to(ch["device"])
    start = time.perf_counter()
    history = ch["train_protonet"](encoder, episodes)
    seconds = time.perf_counter() - start
    evaluation = {f"{n}way_{k}shot": accuracy_record(ch["mean_ci"], ch["evaluate_protonet"](encoder, n, k))
                  for n in (5, 20) for k in (1, 5)}
    keys = ("proto_channels", "proto_way", "proto_shot", "proto_query", "proto_lr", "image_size")
    config = {"episodes": episodes, **{k: ch["CFG"][k] for k in keys}}
    return encoder, {"config": config, "train_seconds": round(seconds, 1), "evaluation": evaluation,
                     "final_loss": final_loss(history["loss"])}


def train_maml(ch: dict, steps: int, first_order: bool) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    model = ch["maml_model"]()
    losses, seconds_per_step = ch["train_maml"](model, steps, first_order=first_order)
    evaluation = {f"5way_{k}shot": accuracy_record(ch["mean_ci"], ch["evaluate_maml"](model, k)) for k in (1, 5)}
    evaluation["5way_1shot_one_query_at_a_time"] = accuracy_record(
        ch["mean_ci"], ch["evaluate_maml"](model, 1, transductive=False))
    keys = ("maml_channels", "maml_tasks", "maml_way", "maml_shot", "maml_query", "maml_inner_lr",
            "maml_train_inner_steps", "maml_test_inner_steps", "maml_lr", "image_size")
    config = {"steps": steps, "first_order": first_order, **{k: ch["CFG"][k] for k in keys}}
    return model, {"config": config, "train_seconds": round(seconds_per_step * steps, 1),
                   "seconds_per_step": round(seconds_per_step, 4), "evaluation": evaluation,
                   "final_loss": final_loss(losses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=("protonet", "maml"))
    parser.add_argument("--episodes", type=int, help="ProtoNet training episodes (default: the chapter's)")
    parser.add_argument("--steps", type=int, help="MAML meta-steps (default: the chapter's)")
    parser.add_argument("--second-order", action="store_true", help="MAML with second-order gradients")
    add_device_arguments(parser)
    args = parser.parse_args()
    device = device_of(args)
    ch = chapter_namespace(device)
    print(f"training {args.model} on {records.machine(device)}", flush=True)
    if args.model == "protonet":
        model, info = train_protonet(ch, args.episodes or ch["CFG"]["proto_episodes"])
    else:
        model, info = train_maml(ch, args.steps or ch["CFG"]["maml_steps"], first_order=not args.second_order)
    info.update(machine=records.machine(device), torch=str(torch.__version__),
                date=records.provenance("")["date"],
                command="python -m tools.artifacts.fewshot " + " ".join(sys.argv[1:]))
    print(info, flush=True)
    rel = f"checkpoints/omniglot_{args.model}{'_second_order' if args.second_order else ''}.pt"
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "info": info}, ROOT / "data" / rel)
    checksums.register({rel: {}})


if __name__ == "__main__":
    main()
