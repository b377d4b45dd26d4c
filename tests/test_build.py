"""tools.build and the registry: generated files are current and reproducible, graded answers do not leak
between chapters unless the registry declares it, tokens quote the records, the chapter lint knows the setup cell."""

from __future__ import annotations

import ast
import re
import shutil
import textwrap
from dataclasses import replace

import nbformat
import pytest
import tomllib
from course import ROOT, SLUGS

from tools import records
from tools.build import leaks
from tools.build.__main__ import check
from tools.build.tokens import SETUP_CELL, stamp
from tools.course import chapters

# --- generated files ----------------------------------------------------------------

def test_generated_files_are_current_and_a_rebuild_is_identical():
    """Two builds: one compared with what is committed, one more that must not change anything."""
    problems = check(ROOT, rebuild=True)
    assert not problems, "run `make release`:\n" + "\n".join(problems)


# --- leaks between chapters ---------------------------------------------------------

def test_no_undeclared_leak_and_every_declared_reveal_is_real():
    registered = chapters()
    found = leaks.check(ROOT, registered)
    undeclared = [leak for leak in found if not leak.declared]
    assert not undeclared, "\n".join(map(str, undeclared))
    for ch in registered:
        for earlier in ch.reveals:
            assert any(leak.released_in == ch.slug and leak.secret_of == earlier for leak in found), \
                f"{ch.slug} declares that it reveals {earlier}, but shows none of its answers"
    assert any("release 04_dcgan only after the deadline of 03_gan" in line
               for line in leaks.release_orders(found, registered))


# Chapter 03's discriminator_loss answer, renamed and restyled as a student notebook might show it.
RESTYLED_ANSWER = '''
def d_loss(r, f):
    """Loss of the critic."""
    a = F.binary_cross_entropy_with_logits(  # real images are labelled 1
        r, torch.ones_like(r))
    b = F.binary_cross_entropy_with_logits(f,
                                           torch.zeros_like(f))
    return a + b
'''


def _plant(tmp_path, target: str):
    """A copy of the built notebooks with RESTYLED_ANSWER added to ``target``'s student notebook."""
    for ch in chapters():
        for path in (ch.instructor_notebook(), ch.release_notebook()):
            dest = tmp_path / path.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
    release = tmp_path / "modules" / target / f"{target}.ipynb"
    nb = nbformat.read(release, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(RESTYLED_ANSWER))
    nbformat.write(nb, release)
    return tmp_path


@pytest.mark.parametrize("declared", [False, True])
def test_a_planted_copy_of_a_chapter_03_answer_in_chapter_04_is_found(tmp_path, declared):
    root = _plant(tmp_path, "04_dcgan")
    registered = [ch if declared or ch.slug != "04_dcgan" else replace(ch, reveals=()) for ch in chapters()]
    planted = [leak for leak in leaks.check(root, registered)
               if leak.released_in == "04_dcgan" and leak.shown.startswith(("a = ", "b = ", "def d_loss"))]
    assert {(leak.secret_of, leak.grade_id) for leak in planted} == {("03_gan", "gan_losses")}, \
        "the restyled copy of discriminator_loss was not found"
    assert all(leak.declared == declared for leak in planted)


def test_a_planted_copy_in_a_chapter_that_declares_nothing_is_an_undeclared_leak(tmp_path):
    root = _plant(tmp_path, "05_ddpm")
    undeclared = [leak for leak in leaks.check(root, chapters()) if not leak.declared]
    assert {(leak.secret_of, leak.grade_id, leak.released_in) for leak in undeclared} == \
        {("03_gan", "gan_losses", "05_ddpm")}


def test_normalisation_keeps_what_code_calls_and_forgets_what_it_names():
    def keys(source):
        return {key for _, key in leaks.fragments(ast.parse(textwrap.dedent(source)))}

    original = keys("def f(x, y):\n    z = torch.sigmoid(x) * y.sum(dim=1)\n    return z")
    assert original & keys("def g(a, b):\n    # a comment\n    c = torch.sigmoid(a) * b.sum(dim=1)\n    return c")
    assert not original & keys("def f(x, y):\n    z = torch.tanh(x) * y.sum(dim=1)\n    return z")
    assert not original & keys("def f(x, y):\n    z = torch.sigmoid(x) * y.sum(dim=0)\n    return z")


# --- the registry -------------------------------------------------------------------

def _registry(tmp_path, body: str):
    (tmp_path / "chapters.toml").write_text("[benchmark]\nreference_calibration_s = 1.0\n"
                                            "reference_machine = 'x'\noverrun_factor = 3.0\n" + body)
    return tmp_path


@pytest.mark.parametrize("body, message", [
    ("[[chapter]]\nslug = '01_a'\ntitle = 'a'\ncolour = 'red'\n", "unknown field"),
    ("[[chapter]]\nslug = '02_b'\ntitle = 'b'\n[[chapter]]\nslug = '01_a'\ntitle = 'a'\n", "in order"),
    ("[[chapter]]\nslug = '01_a'\ntitle = 'a'\nreveals = ['02_b']\n[[chapter]]\nslug = '02_b'\ntitle = 'b'\n",
     "earlier chapters"),
    ("[[chapter]]\nslug = 'intro'\ntitle = 'a'\n", "NN_slug"),
    ("[[chapter]]\nslug = '01_a'\ntitle = 'a'\ndatasets = ['imagenet']\n", "unknown datasets"),
])
def test_registry_rejects_what_the_tools_could_not_use(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        chapters(_registry(tmp_path, body))


def test_registry_lists_the_course_in_order():
    assert sorted(SLUGS) == SLUGS and SLUGS[0].startswith("01_")


# --- tokens -------------------------------------------------------------------------

def test_result_tokens_quote_the_record(tmp_path):
    records.write("99_demo", {"full": {"values": {"fid": 46.04, "steps": 20616}}}, tmp_path)
    text = "FID {{result 99_demo full.values.fid .1f}} после {{result 99_demo full.values.steps ,}} шагов"
    assert stamp(text, {}, tmp_path) == "FID 46.0 после 20 616 шагов"
    assert stamp(text, {}, tmp_path, decimal_comma=True) == "FID 46,0 после 20 616 шагов"  # Russian prose
    with pytest.raises(KeyError, match="missing 'fjd'"):
        stamp("{{result 99_demo full.values.fjd}}", {}, tmp_path)


def test_markdown_cells_write_recorded_decimals_with_a_comma(tmp_path):
    records.write("99_demo", {"full": {"values": {"share": 0.9267}}}, tmp_path)
    assert stamp("{{result 99_demo full.values.share .1%}}", {}, tmp_path, decimal_comma=True) == "92,7%"
    found = []
    for ch in chapters():
        for cell in nbformat.read(ch.instructor_notebook(), as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            # formulas, code, links and calls such as LeakyReLU(0.2), names such as Apache-2.0, section numbers
            prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|\]\([^)]*\)|https?://\S+", " ", cell.source, flags=re.S)
            found += [f"{ch.slug}: {m[0]}" for m in re.finditer(r"(?<![\w.(\-])(?<!раздела )\d+\.\d+(?![\w.])", prose)]
    assert not found, f"decimal points in Russian prose: {found}"


def test_result_tokens_index_recorded_lists(tmp_path):
    records.write("99_demo", {"full": {"values": {"curve": [3.0, 2.5, 2.25]}}}, tmp_path)
    assert stamp("{{result 99_demo full.values.curve.2 .2f}}", {}, tmp_path) == "2.25"
    with pytest.raises(KeyError, match="missing '3'"):
        stamp("{{result 99_demo full.values.curve.3}}", {}, tmp_path)


def test_chapter_lint_knows_exactly_the_names_of_the_setup_cell():
    tree = ast.parse(SETUP_CELL.read_text(encoding="utf-8"))
    defined = {name for name in leaks.bound_names(tree) if not name.startswith("_")}
    settings = tomllib.loads((ROOT / "solutions" / "ruff.toml").read_text())
    assert set(settings["builtins"]) - {"setup_cell"} == defined
