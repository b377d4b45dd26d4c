"""Course datasets as tensors and ``DataLoader``s, offline first.

The repository commits small subsets under ``data/`` (their checksums live in
``utils/checksums.json`` and are verified on first read). In full mode, when
a network is there, the loaders fetch the complete official files into
``data/cache/`` and verify them; offline they say so once and use the subset.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .download import OfflineError, download, verify_file
from .env import is_fast_mode
from .idx import DataFileError, read_idx

_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKSUMS = json.loads((_PACKAGE_DIR / "checksums.json").read_text(encoding="utf-8"))

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "футболка", "брюки", "свитер", "платье", "пальто",
    "сандалия", "рубашка", "кроссовок", "сумка", "ботинок",
)
CIFAR10_CLASSES = (
    "самолёт", "автомобиль", "птица", "кошка", "олень",
    "собака", "лягушка", "лошадь", "корабль", "грузовик",
)

# Official sources of the full datasets. MNIST-style files are checked by the
# md5 of their uncompressed bytes (the official values), which every mirror's
# gzip of the same data satisfies.
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FULL_SOURCES = {
    "mnist": {
        "mirrors": [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        "uncompressed_md5": {
            "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
        },
    },
    "fashion_mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "uncompressed_md5": {
            "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
        },
    },
    "cifar10": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
    },
}
_SUBSET_FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
_announced: set[str] = set()
# Set once every source of some file has failed, so an offline session does not
# wait on each mirror of each file in turn.
_network_down = False


def data_dir() -> Path:
    """The ``data/`` folder: ``COURSE_DATA_DIR`` if set, else the repository's."""
    env = os.environ.get("COURSE_DATA_DIR")
    return Path(env) if env else _PACKAGE_DIR.parent / "data"


def cache_dir() -> Path:
    """Where full downloads go (git-ignored)."""
    return data_dir() / "cache"


def _announce(key: str, message: str) -> None:
    """Print ``message`` the first time ``key`` is seen in this process."""
    if key not in _announced:
        _announced.add(key)
        print(message)


def subset_file(relative: str) -> Path:
    """Path of a committed subset file, verified against its recorded sha256."""
    if relative not in _CHECKSUMS:
        raise KeyError(f"{relative} is not a registered subset file")
    path = data_dir() / relative
    _verified(str(path), _CHECKSUMS[relative]["sha256"])
    return path


@functools.cache
def _verified(path: str, sha256: str) -> None:
    verify_file(path, sha256=sha256)


@functools.cache
def _read_idx_pair(images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(images), read_idx(labels)
    if len(x) != len(y):
        raise DataFileError(f"{images} и {labels}: разное число изображений и меток")
    return x, y


def _fetch(urls: list[str], dest: Path, **checksums) -> bool:
    """Download ``dest`` from the first source that answers; False when none does."""
    global _network_down
    if _network_down:
        return False
    for url in urls:
        try:
            download(url, dest, **checksums)
            return True
        except OfflineError:
            continue
    _network_down = True
    return False


def _full_idx_paths(name: str, split: str, download_ok: bool) -> tuple[Path, Path] | None:
    """Paths of the verified full files, downloading them if allowed; None if unavailable."""
    spec = FULL_SOURCES[name]
    folder = cache_dir() / name
    paths = []
    for fname in _IDX_FILES[split]:
        path = folder / fname
        md5 = spec["uncompressed_md5"][fname]
        if not path.exists():
            urls = [mirror + fname for mirror in spec["mirrors"]]
            if not download_ok or not _fetch(urls, path, uncompressed_md5=md5):
                return None
        verify_full_once(path, md5)
        paths.append(path)
    return paths[0], paths[1]


@functools.cache
def verify_full_once(path: Path, uncompressed_md5: str) -> None:
    """Verify a cached full file once per process."""
    verify_file(path, uncompressed_md5=uncompressed_md5)


def _choose_source(name: str, source: str) -> str:
    if source not in ("auto", "subset", "full"):
        raise ValueError("source must be 'auto', 'subset' or 'full'")
    if source == "auto":
        return "subset" if is_fast_mode() else "full-or-subset"
    return source


def _subset_message(name: str, n_train: int, n_test: int, reason: str) -> str:
    return (
        f"[данные] {name}: {reason}; используется подмножество из data/ "
        f"({n_train} обучающих / {n_test} тестовых). Полный набор загружается сам в полном режиме, если есть "
        "интернет."
    )


def _scale(x: np.ndarray, scale: str) -> torch.Tensor:
    t = torch.from_numpy(x).float().div_(255.0)
    if scale == "01":
        return t
    if scale == "-11":
        return t.mul_(2.0).sub_(1.0)
    raise ValueError("scale must be '01' or '-11'")


def subset_indices(length: int, n: int, seed: int) -> np.ndarray:
    """The sorted indices of the seeded ``n``-of-``length`` draw every ``load_*(n=..., seed=...)`` makes.

    Public so that other code (the metrics' reference set) can name the same images."""
    if n <= 0:
        raise ValueError("n must be positive")
    return np.sort(np.random.default_rng(seed).choice(length, size=n, replace=False))


def _take(x: np.ndarray, y: np.ndarray, n: int | None, seed: int):
    if n is None or n >= len(x):
        return x, y
    idx = subset_indices(len(x), n, seed)
    return x[idx], y[idx]


def _load_idx_dataset(name: str, split: str, n, flatten, scale, source, seed):
    if split not in _IDX_FILES:
        raise ValueError("split must be 'train' or 'test'")
    mode = _choose_source(name, source)
    paths = None
    if mode in ("full", "full-or-subset"):
        paths = _full_idx_paths(name, split, download_ok=True)
        if paths is None and mode == "full":
            raise DataFileError(
                f"{name}: полные данные недоступны (нет сети и нет копии в {cache_dir()})"
            )
    if paths is None:
        folder = _SUBSET_FOLDERS[name]
        paths = tuple(subset_file(f"{folder}/{f}") for f in _IDX_FILES[split])
        counts = {s: _CHECKSUMS[f"{folder}/{_IDX_FILES[s][1]}"]["shape"][0] for s in _IDX_FILES}
        reason = "быстрый режим" if mode == "subset" and source == "auto" else (
            "выбрано подмножество" if mode == "subset" else "нет сети и нет полной копии")
        _announce(name, _subset_message(name, counts["train"], counts["test"], reason))
    x, y = _read_idx_pair(str(paths[0]), str(paths[1]))
    x, y = _take(x, y, n, seed)
    images = _scale(x, scale)
    images = images.reshape(len(images), -1) if flatten else images.unsqueeze(1)
    return images, torch.from_numpy(y.astype(np.int64))


def load_mnist(split: str = "train", n: int | None = None, flatten: bool = False,
               scale: str = "01", source: str = "auto", seed: int = 0):
    """MNIST as ``(images, labels)``.

    ``images`` is float32 ``(N, 784)`` if ``flatten`` else ``(N, 1, 28, 28)``,
    scaled to [0, 1] (``scale="01"``) or [-1, 1] (``"-11"``); ``n`` draws a
    seeded random subset. ``source`` is "auto" (subset in fast mode, the full
    set otherwise when it can be had), "subset" or "full".
    """
    return _load_idx_dataset("mnist", split, n, flatten, scale, source, seed)


def load_fashion_mnist(split: str = "train", n: int | None = None, flatten: bool = False,
                       scale: str = "01", source: str = "auto", seed: int = 0):
    """Fashion-MNIST, with the same arguments as :func:`load_mnist`."""
    return _load_idx_dataset("fashion_mnist", split, n, flatten, scale, source, seed)


@functools.cache
def _read_npz(path: str) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError ...
        raise DataFileError(f"Файл данных повреждён или обрезан: {path} ({exc})") from exc


def _cifar_full_npz(download_ok: bool) -> Path | None:
    """The full CIFAR-10 converted to one npz in the cache, or None."""
    target = cache_dir() / "cifar10" / "cifar10_full.npz"
    if target.exists():
        return target
    spec = FULL_SOURCES["cifar10"]
    archive = cache_dir() / "cifar10" / "cifar-10-python.tar.gz"
    if not archive.exists() and not (download_ok and _fetch([spec["url"]], archive, md5=spec["md5"])):
        return None
    verify_file(archive, md5=spec["md5"])
    parts = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    arrays = {}
    with tarfile.open(archive, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers()}
        for split, names in parts.items():
            xs, ys = [], []
            for nm in names:
                # The official batches are Python pickles; the archive's md5 was checked above.
                batch = pickle.load(tar.extractfile(members[nm]), encoding="bytes")
                xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch[b"labels"], dtype=np.uint8))
            arrays[f"x_{split}"] = np.concatenate(xs).transpose(0, 2, 3, 1)
            arrays[f"y_{split}"] = np.concatenate(ys)
    np.savez(target, **arrays)
    return target


def load_cifar10(split: str = "train", n: int | None = None, scale: str = "01",
                 source: str = "auto", seed: int = 0):
    """CIFAR-10 as ``(images (N, 3, 32, 32) float32, labels int64)``.

    The committed subset is decoded from a JPEG copy (lossy, see data/README.md);
    the full official set is used in full mode when it can be had.
    """
    if split not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test'")
    mode = _choose_source("cifar10", source)
    path = None
    if mode in ("full", "full-or-subset"):
        path = _cifar_full_npz(download_ok=True)
        if path is None and mode == "full":
            raise DataFileError("cifar10: полные данные недоступны (нет сети и нет копии)")
    if path is None:
        rel = "cifar10/cifar10_subset.npz"
        path = subset_file(rel)
        shapes = _CHECKSUMS[rel]["shapes"]
        reason = "быстрый режим" if source == "auto" and mode == "subset" else (
            "выбрано подмножество" if mode == "subset" else "нет сети и нет полной копии")
        _announce("cifar10", _subset_message(
            "cifar10", shapes["x_train"][0], shapes["x_test"][0], reason))
    data = _read_npz(str(path))
    x, y = _take(data[f"x_{split}"], data[f"y_{split}"], n, seed)
    images = _scale(x, scale).permute(0, 3, 1, 2).contiguous()
    return images, torch.from_numpy(y.astype(np.int64))


TEXTS = {"ru_proverbs": "text/ru_proverbs.txt.gz"}


def load_text(name: str = "ru_proverbs") -> str:
    """A committed Russian text corpus as one string, exactly as its source ships it (one item per line).

    ``"ru_proverbs"``: 6 238 Russian folk proverbs from the PyPI package ru-proverbs
    1.1.2 (Apache-2.0; see data/README.md). The text is verbatim, so it still
    holds the source's stress marks and soft hyphens: a chapter that builds a
    character vocabulary decides what to normalise.
    """
    if name not in TEXTS:
        raise ValueError(f"unknown text {name!r}; known: {sorted(TEXTS)}")
    with gzip.open(subset_file(TEXTS[name]), "rt", encoding="utf-8") as f:
        return f.read()


def load_omniglot(split: str = "background", image_size: int = 28, n_classes: int | None = None):
    """Omniglot as ``(images (C, 20, 1, S, S) float32 in [0, 1], ink = 1)``.

    ``split`` is "background" (964 characters, for meta-training) or
    "evaluation" (659). The committed copy is the complete dataset.
    """
    if split not in ("background", "evaluation"):
        raise ValueError("split must be 'background' or 'evaluation'")
    data = _read_npz(str(subset_file(f"omniglot/images_{split}.npz")))
    images = data["images"][:n_classes] if n_classes else data["images"]
    # Stored as True = paper; the models want ink = 1.
    x = torch.from_numpy(~images).float()
    c, k, h, w = x.shape
    x = x.reshape(c * k, 1, h, w)
    if image_size != h:
        x = torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="area")
    return x.reshape(c, k, 1, image_size, image_size)


def make_loader(*tensors: torch.Tensor, batch_size: int = 128, shuffle: bool = True,
                seed: int = 0, drop_last: bool = False) -> DataLoader:
    """A ``DataLoader`` over in-memory tensors with a seeded shuffle."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle,
                      generator=generator, drop_last=drop_last)


_LOADERS = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist}


def get_loaders(name: str = "mnist", batch_size: int = 128, n_train: int | None = None,
                n_test: int | None = None, flatten: bool = False, scale: str = "01",
                source: str = "auto", seed: int = 0):
    """``(train_loader, test_loader)`` for "mnist", "fashion_mnist" or "cifar10"."""
    if name == "cifar10":
        train = load_cifar10("train", n_train, scale, source, seed)
        test = load_cifar10("test", n_test, scale, source, seed)
    elif name in _LOADERS:
        train = _LOADERS[name]("train", n_train, flatten, scale, source, seed)
        test = _LOADERS[name]("test", n_test, flatten, scale, source, seed)
    else:
        raise ValueError(f"unknown dataset {name!r}")
    return (make_loader(*train, batch_size=batch_size, shuffle=True, seed=seed),
            make_loader(*test, batch_size=batch_size, shuffle=False))


def download_all() -> dict[str, str]:
    """Fetch every full dataset into the cache (``make data``); returns a status per dataset."""
    status = {}
    for name in ("mnist", "fashion_mnist"):
        ok = all(_full_idx_paths(name, split, download_ok=True) for split in _IDX_FILES)
        status[name] = "ok" if ok else "недоступно (нет сети?)"
    status["cifar10"] = "ok" if _cifar_full_npz(download_ok=True) else "недоступно (нет сети?)"
    status["omniglot"] = "ok (полная копия уже в data/)"
    return status


def load_checkpoint(name: str):
    """The shipped checkpoint ``data/checkpoints/<name>`` (verified, loaded onto the CPU), or None where the data
    folder does not have it: chapters then train the model themselves."""
    if not (data_dir() / "checkpoints" / name).exists():
        return None
    return torch.load(subset_file(f"checkpoints/{name}"), map_location="cpu", weights_only=True)


__all__ = [
    "CIFAR10_CLASSES", "FASHION_MNIST_CLASSES", "MNIST_CLASSES", "DataFileError",
    "cache_dir", "data_dir", "download_all", "get_loaders", "load_cifar10", "load_text",
    "load_checkpoint", "load_fashion_mnist", "load_mnist", "load_omniglot", "make_loader", "subset_file",
    "subset_indices",
]
