"""Build tokens: the `{{...}}` placeholders that chapter sources use and the build fills in.

- `{{setup_cell}}`: the setup cell of every chapter (templates/setup_cell.py, the
  one place for the Colab bootstrap); it holds `{{repo_url}}`;
- `{{badges}}`: the Colab and Binder badges of the chapter;
- `{{repo_url}}`, `{{repo}}`, `{{branch}}`, `{{chapter}}`: from `[tool.course]` of pyproject.toml;
- `{{result SOURCE PATH [FORMAT]}}`: a recorded measurement (tools.records.lookup),
  e.g. `{{result 04_dcgan full.values.dcgan_fid .1f}}` or
  `{{result checkpoint:ddpm_mnist.pt evaluation.ddim50.fid .1f}}`, so that chapter
  text quotes a number from the run that measured it instead of a copy.
"""

from __future__ import annotations

import re
from pathlib import Path

from tools import records

SETUP_CELL = Path(__file__).resolve().parent / "templates" / "setup_cell.py"
RESULT_TOKEN = re.compile(r"\{\{result (\S+) (\S+?)(?: (\S+))?\}\}")


def badges(settings: dict, slug: str) -> str:
    repo, branch = settings["repository"], settings["branch"]
    path = f"modules/{slug}/{slug}.ipynb"
    colab = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"
    binder = f"https://mybinder.org/v2/gh/{repo}/{branch}?urlpath=lab/tree/{path}"
    return (f"[![Открыть в Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Открыть в Binder](https://mybinder.org/badge_logo.svg)]({binder})")


def chapter_tokens(settings: dict, slug: str) -> dict[str, str]:
    """The fixed tokens of one chapter, in replacement order ({{setup_cell}} holds {{repo_url}})."""
    return {
        "{{setup_cell}}": SETUP_CELL.read_text(encoding="utf-8").rstrip("\n"),
        "{{badges}}": badges(settings, slug),
        "{{repo_url}}": f"https://github.com/{settings['repository']}",
        "{{repo}}": settings["repository"],
        "{{branch}}": settings["branch"],
        "{{chapter}}": slug,
    }


def format_value(value, spec: str | None, decimal_comma: bool = False) -> str:
    """A recorded value as chapter text shows it: a space between thousands (format spec ``,``), and, with
    ``decimal_comma`` (the Russian prose of markdown cells), a decimal comma: 1,68 rather than 1.68."""
    if spec is None:
        return str(value)
    text = format(value, spec).replace(",", " ")
    return text.replace(".", ",") if decimal_comma else text


def stamp(text: str, tokens: dict[str, str], root: Path, decimal_comma: bool = False) -> str:
    """Replace every build token in ``text``; recorded values are looked up under ``root`` (see format_value for
    ``decimal_comma``)."""
    for token, value in tokens.items():
        text = text.replace(token, value)
    return RESULT_TOKEN.sub(lambda m: format_value(records.lookup(m[1], m[2], root), m[3], decimal_comma), text)
