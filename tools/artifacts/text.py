"""Commit the Russian text corpus for the language-model chapters from the PyPI package that ships it.

    pip download ru-proverbs==1.1.2 --no-deps -d DIR
    python -m tools.artifacts.text --wheel DIR/ru_proverbs-1.1.2-py3-none-any.whl

The wheel (Apache-2.0, https://github.com/xSAVIKx/ru-proverbs) ships
`ru_proverbs/ru_proverbs.txt`: 6 238 Russian folk proverbs, one per line. Both
the wheel and the text are checked against the sha256 recorded below, the text
is stored verbatim as data/text/ru_proverbs.txt.gz (gzip without a timestamp,
so re-running leaves no diff) beside the package's licence, and the file is
registered in utils/checksums.json and data/README.md. The course never reads
the wheel at run time: `utils.load_text("ru_proverbs")` reads the committed copy.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import zipfile
from pathlib import Path

from tools.artifacts import checksums
from tools.course import ROOT

WHEEL_SHA256 = "730253d995206bd48a2550dc9317f71f3f732c10cb1502a3184993fe8fba5a2a"
TEXT_MEMBER = "ru_proverbs/ru_proverbs.txt"
TEXT_SHA256 = "7b40e11b46824217c92476d25fab185b944db4536b71a0776982224f391b516f"
TARGET = "text/ru_proverbs.txt.gz"
LICENCE = "text/LICENSE-ru-proverbs.txt"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True, help="ru_proverbs-1.1.2-py3-none-any.whl")
    args = parser.parse_args()
    wheel = args.wheel.read_bytes()
    if sha256(wheel) != WHEEL_SHA256:
        raise SystemExit(f"{args.wheel}: sha256 {sha256(wheel)}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(args.wheel) as archive:
        text, licence = archive.read(TEXT_MEMBER), archive.read("LICENSE")
    if sha256(text) != TEXT_SHA256:
        raise SystemExit(f"{TEXT_MEMBER}: sha256 {sha256(text)}, expected {TEXT_SHA256}")
    folder = ROOT / "data" / "text"
    folder.mkdir(exist_ok=True)
    with open(ROOT / "data" / TARGET, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                                   filename="") as out:
        out.write(text)
    (ROOT / "data" / LICENCE).write_bytes(licence)
    decoded = text.decode("utf-8")
    checksums.register({TARGET: {"lines": decoded.count("\n"), "characters": len(decoded)}})
    print(f"wrote data/{TARGET}: {decoded.count(chr(10))} lines, {len(decoded)} characters")


if __name__ == "__main__":
    main()
