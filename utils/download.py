"""Downloading official dataset files with a progress bar and checksums."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .idx import DataFileError, read_idx_bytes
from .progress import progress


class OfflineError(RuntimeError):
    """No network (or the source did not answer): the caller falls back."""



def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | Path, sha256: str | None = None, md5: str | None = None,
                uncompressed_md5: str | None = None) -> None:
    """Raise ``DataFileError`` naming ``path`` unless every given checksum matches."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"Файл данных не найден: {path}")
    checks = []
    if sha256:
        checks.append(("sha256", sha256, file_digest(path, "sha256")))
    if md5:
        checks.append(("md5", md5, file_digest(path, "md5")))
    if uncompressed_md5:
        got = hashlib.md5(read_idx_bytes(path)).hexdigest()
        checks.append(("md5 (распакованный)", uncompressed_md5, got))
    for kind, expected, got in checks:
        if got != expected:
            raise DataFileError(
                f"Контрольная сумма {kind} не совпадает для {path}: ожидалась {expected}, "
                f"получена {got}. Файл повреждён или подменён; удалите его и загрузите заново."
            )


def offline_forced() -> bool:
    """True when ``COURSE_OFFLINE=1`` asks the loaders never to touch the network."""
    return os.environ.get("COURSE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def download(url: str, dest: str | Path, timeout: float = 15.0, **checksums) -> Path:
    """Fetch ``url`` into ``dest`` atomically, then verify ``checksums``.

    Keyword checksums are those of :func:`verify_file`. Network failures raise
    ``OfflineError``; a file that arrives but fails its checksum is deleted and
    raises ``DataFileError``.
    """
    if offline_forced():
        raise OfflineError("COURSE_OFFLINE=1: сеть отключена")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with progress(total=total, desc=dest.name, unit="B", unit_scale=True) as bar:
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise OfflineError(f"{url}: {exc}") from exc
        verify_file(tmp, **checksums)
        shutil.move(str(tmp), dest)
        return dest
    finally:
        if tmp.exists():
            tmp.unlink()
