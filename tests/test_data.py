"""utils.idx, utils.download and utils.datasets on the committed subsets.

Network tests talk only to a server on 127.0.0.1 that the test starts itself.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from course import ROOT

import utils
from utils import datasets, download
from utils.idx import DataFileError, parse_idx, read_idx, write_idx

CHECKSUMS = json.loads((ROOT / "utils" / "checksums.json").read_text())


# --- IDX format ---------------------------------------------------------------

def test_idx_roundtrip_is_byte_reproducible(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", arr)
    write_idx(tmp_path / "b.gz", arr)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    assert np.array_equal(read_idx(tmp_path / "a.gz"), arr)


def test_truncated_idx_names_the_file(tmp_path):
    arr = np.zeros((10, 28, 28), dtype=np.uint8)
    path = tmp_path / "images.idx"
    raw = bytes([0, 0, 8, 3]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape) + arr.tobytes()
    path.write_bytes(raw[:-100])
    with pytest.raises(DataFileError, match="images.idx.*обрезан"):
        read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path):
    write_idx(tmp_path / "full.gz", np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8))
    data = (tmp_path / "full.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match="cut.gz"):
        read_idx(tmp_path / "cut.gz")


def test_bad_magic_and_missing_file():
    with pytest.raises(DataFileError, match="сигнатура"):
        parse_idx(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00", "x")
    with pytest.raises(DataFileError, match="не найден"):
        read_idx("/nonexistent/file.gz")


# --- checksums and downloads ----------------------------------------------------

def test_verify_file_reports_mismatch_with_path(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"hello")
    download.verify_file(p, sha256=hashlib.sha256(b"hello").hexdigest(),
                         md5=hashlib.md5(b"hello").hexdigest())
    with pytest.raises(DataFileError, match=r"sha256.*f\.bin"):
        download.verify_file(p, sha256="0" * 64)


def test_uncompressed_md5_accepts_any_gzip_of_the_same_bytes(tmp_path):
    payload = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
    (tmp_path / "a.gz").write_bytes(gzip.compress(payload, mtime=0))
    (tmp_path / "b.gz").write_bytes(gzip.compress(payload, compresslevel=1, mtime=12345))
    md5 = hashlib.md5(payload).hexdigest()
    for name in ("a.gz", "b.gz"):
        download.verify_file(tmp_path / name, uncompressed_md5=md5)


@pytest.fixture()
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(www), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", www
    server.shutdown()


@pytest.fixture(autouse=True)
def fresh_network_state(monkeypatch):
    monkeypatch.setattr(datasets, "_network_down", False)
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)


def test_download_verifies_and_moves_into_place(local_server, tmp_path):
    base, www = local_server
    body = np.random.default_rng(1).bytes(300_000)
    (www / "blob.bin").write_bytes(body)
    dest = tmp_path / "cache" / "blob.bin"
    download.download(base + "blob.bin", dest, sha256=hashlib.sha256(body).hexdigest())
    assert dest.read_bytes() == body
    assert not list(dest.parent.glob("*.part"))


def test_download_with_bad_checksum_leaves_nothing(local_server, tmp_path):
    base, www = local_server
    (www / "blob.bin").write_bytes(b"tampered")
    dest = tmp_path / "cache" / "blob.bin"
    with pytest.raises(DataFileError, match="Контрольная сумма"):
        download.download(base + "blob.bin", dest, sha256="0" * 64)
    assert not dest.exists() and not list(dest.parent.glob("*"))


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the block ends: nothing listens there


def test_http_error_and_refused_connection_are_offline_errors(local_server, tmp_path):
    base, _ = local_server
    with pytest.raises(download.OfflineError):
        download.download(base + "missing.bin", tmp_path / "x.bin")
    with pytest.raises(download.OfflineError):
        download.download(f"http://127.0.0.1:{_closed_port()}/x", tmp_path / "x.bin", timeout=2)
    assert not (tmp_path / "x.bin").exists()


def test_fetch_tries_every_mirror_then_remembers_the_network_is_down(local_server, tmp_path):
    base, www = local_server
    (www / "f.bin").write_bytes(b"data")
    dead = f"http://127.0.0.1:{_closed_port()}/"
    sha = hashlib.sha256(b"data").hexdigest()
    assert datasets._fetch([dead + "f.bin", base + "f.bin"], tmp_path / "f.bin", sha256=sha)
    assert datasets._network_down is False
    assert not datasets._fetch([dead + "g.bin"], tmp_path / "g.bin")
    assert datasets._network_down is True
    # Remembered: even a working source is not asked again in this process.
    assert not datasets._fetch([base + "f.bin"], tmp_path / "h.bin", sha256=sha)


def test_course_offline_forbids_network(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(download.OfflineError, match="COURSE_OFFLINE"):
        download.download("http://127.0.0.1:9/x", tmp_path / "x")


def test_full_mnist_is_downloaded_from_a_mirror_and_verified(local_server, tmp_path, monkeypatch):
    """The full-data path end to end, with a local mirror serving idx files."""
    base, www = local_server
    rng = np.random.default_rng(0)
    md5s = {}
    for split, (img, lab) in datasets._IDX_FILES.items():
        n = 30 if split == "train" else 10
        write_idx(www / img, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(www / lab, np.arange(n, dtype=np.uint8) % 10)
        for f in (img, lab):
            md5s[f] = hashlib.md5(gzip.decompress((www / f).read_bytes())).hexdigest()
    monkeypatch.setitem(datasets.FULL_SOURCES, "mnist",
                        {"mirrors": [f"http://127.0.0.1:{_closed_port()}/dead/", base],
                         "uncompressed_md5": md5s})
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(datasets, "_read_idx_pair", datasets._read_idx_pair.__wrapped__)
    x, y = utils.load_mnist("train", source="full")
    assert x.shape == (30, 1, 28, 28) and y.tolist()[:3] == [0, 1, 2]
    assert (tmp_path / "data" / "cache" / "mnist" / "train-images-idx3-ubyte.gz").exists()


# --- committed subsets -----------------------------------------------------------

def test_committed_subsets_match_their_checksums_and_budget():
    total = 0
    for rel, entry in CHECKSUMS.items():
        path = ROOT / "data" / rel
        download.verify_file(path, sha256=entry["sha256"])
        total += path.stat().st_size
    assert total <= 50e6, f"data/ subsets take {total / 1e6:.1f} MB, the budget is 50 MB"


def test_data_readme_lists_every_checksum():
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for rel, entry in CHECKSUMS.items():
        assert rel in readme and entry["sha256"] in readme


@pytest.mark.parametrize("loader, n_classes", [(utils.load_mnist, 10), (utils.load_fashion_mnist, 10)])
def test_idx_loaders_shapes_scales_and_subsets(loader, n_classes):
    x, y = loader("train", source="subset")
    assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    counts = torch.bincount(y, minlength=n_classes)
    assert len(counts) == n_classes and int(counts.min()) == int(counts.max()), "subset is class-balanced"
    xf, yf = loader("test", n=500, flatten=True, scale="-11", source="subset", seed=3)
    assert xf.shape == (500, 784) and float(xf.min()) == -1.0 and float(xf.max()) == 1.0
    xf2, yf2 = loader("test", n=500, flatten=True, scale="-11", source="subset", seed=3)
    assert torch.equal(xf, xf2) and torch.equal(yf, yf2)
    xf3, _ = loader("test", n=500, flatten=True, scale="-11", source="subset", seed=4)
    assert not torch.equal(xf, xf3)


def test_mnist_subset_is_real_mnist():
    x, y = utils.load_mnist("test", source="subset")
    assert len(x) == 10_000
    # Official MNIST test statistics: mean pixel 0.1325, first label 7.
    assert abs(float(x.mean()) - 0.1325) < 0.001 and int(y[0]) == 7


def test_cifar10_and_omniglot():
    x, y = utils.load_cifar10("test", source="subset")
    assert x.shape == (500, 3, 32, 32) and torch.bincount(y).tolist() == [50] * 10
    assert 0.4 < float(x.mean()) < 0.55
    o = utils.load_omniglot("background", image_size=28, n_classes=5)
    assert o.shape == (5, 20, 1, 28, 28) and float(o.min()) >= 0.0 and float(o.max()) <= 1.0
    assert float(o.mean()) < 0.3, "ink is 1, paper is 0"
    assert utils.load_omniglot("evaluation", image_size=105).shape == (659, 20, 1, 105, 105)


def test_russian_text_corpus_is_the_package_text():
    from tools.artifacts.text import LICENCE, TARGET, TEXT_SHA256

    raw = gzip.decompress((ROOT / "data" / TARGET).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == TEXT_SHA256, "the committed text is not ru-proverbs 1.1.2's, verbatim"
    assert "Apache License" in (ROOT / "data" / LICENCE).read_text(encoding="utf-8")
    text = utils.load_text("ru_proverbs")
    lines = text.splitlines()
    assert text == raw.decode("utf-8") and len(lines) == 6238 == CHECKSUMS[TARGET]["lines"]
    assert lines[0] == "Велика святорусская земля, а везде солнышко."
    cyrillic = sum(ch.lower() in "абвгдеёжзийклмнопрстуфхцчшщъыьэюя" for ch in text)
    assert cyrillic / len(text) > 0.7
    with pytest.raises(ValueError, match="unknown text"):
        utils.load_text("war_and_peace")


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        utils.load_mnist("valid")
    with pytest.raises(ValueError):
        utils.load_mnist(scale="0-255", source="subset")
    with pytest.raises(ValueError):
        utils.load_mnist(source="internet")


def test_load_checkpoint_reads_a_shipped_file_and_gives_none_without_it(tmp_path, monkeypatch):
    shipped = utils.load_checkpoint("proverbs_lm.pt")
    assert {"gpt", "bert", "vocab", "info"} <= set(shipped)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))  # a data folder without checkpoints
    assert utils.load_checkpoint("proverbs_lm.pt") is None


def test_corrupt_committed_file_is_reported_by_name(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data" / "mnist", data / "mnist")
    target = data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(target.read_bytes())
    raw[-5] ^= 0xFF
    target.write_bytes(bytes(raw))
    monkeypatch.setenv("COURSE_DATA_DIR", str(data))
    with pytest.raises(DataFileError, match="t10k-labels-idx1-ubyte.gz"):
        utils.load_mnist("test", source="subset")


def test_offline_fallback_is_announced_once(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(ROOT / "data"))
    monkeypatch.delenv("COURSE_FAST", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setattr(datasets, "_announced", set())
    monkeypatch.setattr(datasets, "cache_dir", lambda: Path("/nonexistent-cache"))
    utils.load_mnist("train", n=10)
    utils.load_mnist("test", n=10)
    out = capsys.readouterr().out
    assert out.count("[данные] mnist") == 1 and "нет сети" in out
    with pytest.raises(DataFileError, match="полные данные недоступны"):
        utils.load_mnist("train", source="full")


def test_loaders_and_seeded_shuffle():
    train, test = utils.get_loaders("mnist", batch_size=64, n_train=256, n_test=128, flatten=True,
                                    source="subset")
    xb, yb = next(iter(train))
    assert xb.shape == (64, 784) and yb.shape == (64,)
    assert len(test.dataset) == 128
    def order(seed, shuffle=True):
        loader = utils.make_loader(torch.arange(10), batch_size=5, seed=seed, shuffle=shuffle)
        return [int(v) for (batch,) in loader for v in batch]

    assert order(1) == order(1) and order(1) != order(2)
    assert sorted(order(1)) == list(range(10))
    assert order(1, shuffle=False) == list(range(10))
    cx, cy = next(iter(utils.get_loaders("cifar10", batch_size=8, source="subset")[1]))
    assert cx.shape == (8, 3, 32, 32)
