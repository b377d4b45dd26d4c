"""Is chapter 12's judge to blame for the generator's low digit score? (issue 37, step 1)

The judge (utils.scene_reader) crops each digit at the bounding box of every ink pixel above 0.5, so a few
stray pixels far from the digit shrink it in the crop and may spoil the classification. This script generates
held-out pictures with the shipped generator and judges them twice: as they are, and after removing stray ink
(connected components of ink > 0.5 smaller than a fraction of the largest one are painted with the background).
The same cleaning applied to real renders shows that it does not help or hurt a clean picture.

    python -m tools.diagnostics.t2i_judge_crop [--prompts 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from scipy import ndimage

from tools.artifacts.text_to_image import chapter_namespace
from tools.course import ROOT

OUT = ROOT / "results" / "diagnostics" / "t2i_judge_crop.json"


def remove_stray_ink(images: torch.Tensor, reader, keep_fraction: float) -> torch.Tensor:
    """Pictures with every ink component smaller than keep_fraction of the picture's largest one painted over
    with the background tint (components: 8-connected pixels of ink > INK_THRESHOLD)."""
    colours = reader.background(images)
    levels = reader.ink(images, colours)
    tints = reader.palette()[colours]
    out = images.clone()
    for i, level in enumerate(levels.numpy()):
        labels, count = ndimage.label(level > reader.INK_THRESHOLD, structure=np.ones((3, 3)))
        if count < 2:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        kept = np.isin(labels, 1 + np.flatnonzero(sizes >= keep_fraction * sizes.max()))
        # the stray components grown by one pixel, so that their faint rims go too
        stray = ndimage.binary_dilation((labels > 0) & ~kept) & ~kept
        out[i][:, torch.from_numpy(stray)] = tints[i].view(3, 1)
    return out


def judged(reader, images, scenes) -> dict:
    verdict = reader.judge(images, scenes)
    two = np.array([s.right is not None for s in scenes])
    return {"digit_one": round(float(verdict["digit"][~two].mean()), 4),
            "digit_two": round(float(verdict["digit"][two].mean()), 4),
            "attributes": round(float(verdict["attributes"].mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep-fraction", type=float, default=0.25)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ch = chapter_namespace(torch.device("cpu"))
    reader, cap = ch["scene_reader"], ch["cap"]
    model, info = ch["load_course_generator"]()
    out = {"prompts": args.prompts, "keep_fraction": args.keep_fraction, "guidance": ch["CFG"]["guidance"],
           "ddim_steps": ch["CFG"]["ddim_steps"], "generator_steps": info["config"]["steps"]}
    scenes, prompts = ch["evaluation_prompts"](True, args.prompts, 22)
    generated = ch["generate"](model, prompts, seed=100)
    test_x, test_y = ch["utils"].load_mnist("test")
    real, _, real_scenes = cap.make_pairs(test_x, test_y, args.prompts, held_out=True, seed=5)
    for name, images, sc in (("generated_held_out", generated, scenes), ("real_renders", real, real_scenes)):
        out[name] = {"as_is": judged(reader, images, sc),
                     "stray_ink_removed": judged(reader, remove_stray_ink(images, reader, args.keep_fraction), sc)}
        print(name, out[name], flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
