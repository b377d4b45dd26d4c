"""Build the committed dataset subsets in data/ from verified copies of the datasets.

    python -m tools.artifacts.data --source DIR

DIR holds the official MNIST and Fashion-MNIST idx files, the Omniglot npz
files and a CIFAR-10 npz subset, with a MANIFEST.json of their checksums (see
data/README.md). The course never reads DIR at run time. The draw is seeded and
the output byte-reproducible, so re-running leaves no diff. Registers the files
in utils/checksums.json (what the loaders verify) and data/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from tools.artifacts import checksums
from tools.course import ROOT
from utils.download import verify_file
from utils.idx import read_idx, write_idx

SEED = 2024
# Images per class in each committed subset (see data/README.md for the budget).
PER_CLASS = {
    "mnist": {"train": 2000, "test": None},  # None: the whole split, official order
    "fashion-mnist": {"train": 1000, "test": 500},
    "cifar10": {"train": 200, "test": 50},
}
IDX = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` random items of every class, in a shuffled order."""
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
             for c in np.unique(labels)]
    idx = np.concatenate(picks)
    return idx[rng.permutation(len(idx))]


def build_idx(source: Path, folder: str, manifest: dict) -> None:
    official = json.loads((source / "MANIFEST.json").read_text())
    rng = np.random.default_rng(SEED)
    for split, (img_name, lab_name) in IDX.items():
        for name in (img_name, lab_name):
            verify_file(source / folder / name,
                        uncompressed_md5=official[f"{folder}/{name}"]["uncompressed_md5"])
        x, y = read_idx(source / folder / img_name), read_idx(source / folder / lab_name)
        per_class = PER_CLASS[folder][split]
        idx = np.arange(len(y)) if per_class is None else stratified(y, per_class, rng)
        for name, arr in ((img_name, x[idx]), (lab_name, y[idx])):
            write_idx(ROOT / "data" / folder / name, arr)
            manifest[f"{folder}/{name}"] = {"shape": list(arr.shape)}


def build_cifar(source: Path, manifest: dict) -> None:
    src = source / "cifar10" / "cifar10_jpeg_subset.npz"
    official = json.loads((source / "MANIFEST.json").read_text())
    verify_file(src, sha256=official["cifar10/cifar10_jpeg_subset.npz"]["sha256"])
    rng = np.random.default_rng(SEED)
    with np.load(src) as d:
        out = {}
        for split in ("train", "test"):
            idx = stratified(d[f"y_{split}"], PER_CLASS["cifar10"][split], rng)
            out[f"x_{split}"] = d[f"x_{split}"][idx]
            out[f"y_{split}"] = d[f"y_{split}"][idx]
            out[f"index_{split}"] = d[f"index_{split}"][idx]
        out["classes"] = d["classes"]
    target = ROOT / "data" / "cifar10" / "cifar10_subset.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    save_npz_reproducibly(target, out)
    manifest["cifar10/cifar10_subset.npz"] = {
        "shapes": {k: list(v.shape) for k, v in out.items()}}


def save_npz_reproducibly(path: Path, arrays: dict) -> None:
    """np.savez_compressed with fixed zip timestamps, so rebuilds are identical."""
    import io
    import zipfile
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def copy_omniglot(source: Path, manifest: dict) -> None:
    official = json.loads((source / "MANIFEST.json").read_text())
    for name in ("images_background.npz", "images_evaluation.npz"):
        src = source / "omniglot" / name
        verify_file(src, sha256=official[f"omniglot/{name}"]["sha256"])
        dest = ROOT / "data" / "omniglot" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        with np.load(dest) as d:
            manifest[f"omniglot/{name}"] = {"shape": list(d["images"].shape)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True,
                        help="folder with verified copies of the datasets and their MANIFEST.json")
    args = parser.parse_args()
    manifest: dict = {}
    build_idx(args.source, "mnist", manifest)
    build_idx(args.source, "fashion-mnist", manifest)
    build_cifar(args.source, manifest)
    copy_omniglot(args.source, manifest)
    checksums.register(manifest)
    registered = checksums.read()
    print(checksums.table({rel: registered[rel] for rel in manifest}))
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]
    print(f"manifest digest {digest}")


if __name__ == "__main__":
    main()
