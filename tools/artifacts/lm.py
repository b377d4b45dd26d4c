"""Train and evaluate the character-level GPT and BERT shipped with chapter 10_transformers.

    python -m tools.artifacts.lm [--steps N] [--device cuda] [--threads 2]

Uses the chapter's own code and full-mode settings (tools.artifacts.chapter_code):
its tokenizer trained on the training proverbs, its TinyLM in both modes and its
train_lm loop. Writes data/checkpoints/proverbs_lm.pt: both state dicts in float16,
the tokenizer's vocabulary, and the record ("info": the settings, training time and
machine, both loss histories, and the evaluation of the rounded weights: GPT's
validation loss per character beside the unigram and bigram baselines, and the
masked-character accuracy of BERT, of GPT from the left and of the most frequent
character). The record is the one place these figures live; the chapter quotes it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from tools import records
from tools.artifacts import checksums
from tools.artifacts.chapter_code import add_device_arguments, device_of, load_chapter, round_to_half
from tools.course import ROOT

CHAPTER = "10_transformers"
CHECKPOINT = "checkpoints/proverbs_lm.pt"


def chapter_namespace(device: torch.device) -> dict:
    """The chapter's definitions and full-mode CFG, with the corpus its functions read as globals."""
    os.environ.pop("COURSE_FAST", None)
    ch = load_chapter(CHAPTER, names=("CFG", "SPECIALS", "NORMALIZER", "MODEL_KEYS"),
                      context={"device": device, "FAST": False})
    train_lines, val_lines = ch["split_proverbs"](ch["utils"].load_text("ru_proverbs").splitlines(keepends=True))
    ch["tokenizer"] = tokenizer = ch["train_char_tokenizer"](train_lines)
    ch["PAD_ID"], ch["MASK_ID"], ch["UNK_ID"] = (tokenizer.token_to_id(t) for t in ch["SPECIALS"])
    ch["NEWLINE_ID"], ch["VOCAB"] = tokenizer.token_to_id("\n"), tokenizer.get_vocab_size()
    ch["train_ids"], ch["val_ids"] = ch["encode"]("".join(train_lines)), ch["encode"]("".join(val_lines))
    return ch


def evaluate(ch: dict, gpt: torch.nn.Module, bert: torch.nn.Module) -> dict:
    """The chapter's measurements of both models on the validation proverbs, one row per model or baseline:
    validation loss in nats per predicted character, and accuracy at the characters hidden by [MASK]."""
    train_ids, val_ids, vocab = ch["train_ids"], ch["val_ids"], ch["VOCAB"]
    accuracy, positions = ch["masked_accuracy"](bert, gpt, val_ids)
    return {
        "gpt": {"val_loss": round(ch["validation_loss"](gpt), 4), "masked_accuracy": round(accuracy["GPT"], 4),
                "positions": positions},
        "bert": {"val_loss": round(ch["validation_loss"](bert), 4), "masked_accuracy": round(accuracy["BERT"], 4),
                 "positions": positions},
        "unigram": {"val_loss": round(ch["ngram_loss"](train_ids, val_ids, 1, vocab), 4)},
        "bigram": {"val_loss": round(ch["ngram_loss"](train_ids, val_ids, 2, vocab), 4)},
        "most_frequent_character": {"masked_accuracy": round(accuracy["частый символ"], 4), "positions": positions},
    }


def load_models(ch: dict, checkpoint: dict, device: torch.device) -> dict:
    """The shipped GPT and BERT in the chapter's TinyLM (strict: its layer names)."""
    models = {}
    for name, causal in (("GPT", True), ("BERT", False)):
        models[name] = ch["TinyLM"](ch["VOCAB"], causal, **checkpoint["info"]["config"]["model"])
        models[name].load_state_dict(checkpoint[name.lower()])
        models[name].to(device).eval()
    return models


def train(ch: dict, steps: int, device: torch.device) -> tuple[dict, dict]:
    """Both models trained from the same seed with the chapter's loop, and their record."""
    cfg = ch["CFG"]
    models, history, seconds = {}, {}, {}
    for name, causal in (("GPT", True), ("BERT", False)):
        torch.manual_seed(0)
        models[name] = ch["tiny_lm"](causal).to(device)
        start = time.perf_counter()
        h = ch["train_lm"](models[name], steps=steps)
        seconds[name] = round(time.perf_counter() - start, 1)
        history[name] = {"train": [round(v, 4) for v in h["train"]], "val": [round(v, 4) for v in h["val"]],
                         "val_step": h["val_step"]}
        print(f"{name}: val {h['val'][0]:.3f} -> {min(h['val']):.3f} in {seconds[name]:.0f} s", flush=True)
    keys = ("batch_size", "lr", "weight_decay", "mask_p", "eval_points", "eval_batches")
    info = {
        "config": {"steps": steps, "model": {k: cfg[k] for k in ch["MODEL_KEYS"]}, **{k: cfg[k] for k in keys}},
        "train_seconds": seconds,
        "history": history,
        "machine": records.machine(device),
        "torch": str(torch.__version__),
        "date": records.provenance("")["date"],
        "command": "python -m tools.artifacts.lm " + " ".join(sys.argv[1:]),
    }
    return models, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="training steps of each model (default: the chapter's)")
    parser.add_argument("--reevaluate", action="store_true",
                        help="keep the shipped weights, measure them again with the chapter's current code")
    add_device_arguments(parser)
    args = parser.parse_args()
    device = device_of(args)
    ch = chapter_namespace(device)
    path = ROOT / "data" / CHECKPOINT
    if args.reevaluate:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        models, info = load_models(ch, checkpoint, device), checkpoint["info"]
        info["evaluation_command"] = "python -m tools.artifacts.lm " + " ".join(sys.argv[1:])
    else:
        steps = args.steps or ch["CFG"]["steps"]
        print(f"training GPT and BERT for {steps} steps each on {records.machine(device)}", flush=True)
        models, info = train(ch, steps, device)
    states = {name.lower(): round_to_half(model) for name, model in models.items()}
    info["evaluation"] = evaluate(ch, models["GPT"], models["BERT"])
    info["weights"] = "float16 (loaded into float32 modules; every figure above is of the rounded weights)"
    print({k: v for k, v in info.items() if k != "history"}, flush=True)
    torch.save({**states, "vocab": ch["tokenizer"].get_vocab(), "info": info}, path)
    checksums.register({CHECKPOINT: {}})


if __name__ == "__main__":
    main()
