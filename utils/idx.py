"""Reading and writing the IDX format of MNIST and Fashion-MNIST.

The loaders must never return a silently wrong array, so every structural
problem (bad magic, short or long payload, broken gzip stream) raises
``DataFileError`` naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np


class DataFileError(RuntimeError):
    """A data file is missing, corrupt, truncated or fails its checksum."""


def read_idx_bytes(path: str | Path) -> bytes:
    """Raw (uncompressed) bytes of an IDX file, gzip or not."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"Файл данных не найден: {path}")
    try:
        raw = path.read_bytes()
        # Decide by content, not by name: downloads land in ``*.part`` files.
        if raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        return raw
    except (EOFError, OSError, zlib.error) as exc:
        raise DataFileError(
            f"Файл данных повреждён или обрезан: {path} ({exc}). "
            "Удалите его и загрузите заново."
        ) from exc


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (unsigned-byte payload only, as in MNIST) into an array."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataFileError(f"{name}: это не файл IDX (неверная сигнатура)")
    if raw[2] != 0x08:
        raise DataFileError(f"{name}: неподдерживаемый тип данных IDX 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{name}: заголовок IDX обрезан")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    payload = len(raw) - header
    if payload != expected:
        raise DataFileError(
            f"{name}: ожидалось {expected} байт данных для формы {shape}, "
            f"в файле {payload} — файл обрезан или повреждён"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into a uint8 array."""
    return parse_idx(read_idx_bytes(path), name=str(path))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as gzip-compressed IDX, byte-for-byte reproducibly."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 and no file name keep the .gz bytes identical on every rebuild.
    with open(path, "wb") as raw_fh, gzip.GzipFile(filename="", mode="wb", fileobj=raw_fh,
                                                     mtime=0, compresslevel=9) as fh:
        fh.write(header + array.tobytes())
