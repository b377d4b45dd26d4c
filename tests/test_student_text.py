"""The text students read is Russian and speaks to them: no English prose, no maintainer paths or commands,
no references to texts they never see.

What a student reads is every markdown cell and, in code cells, the comments, docstrings and the strings the
cell shows (printed text, plot titles, axis and legend labels, progress-bar descriptions), all outside the
solution and hidden-test regions that nbgrader removes from the student notebook. Test messages are checked by
the exercise tables (every rejected mistake must show a Russian message). The chapter source is read
through the build (tokens filled in, the setup cell included), so the check needs no rebuilt notebook.

English prose is a run of MIN_LATIN_RUN or more English words with no Russian word between them. Not words:
identifiers (with `_`, a digit, a dot or an inner capital), acronyms, single letters, inline code, formulas,
URLs, HTML tags and citations ("Bengio et al."); the named terms and titles of ALLOWED_TERMS are dropped first.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

import pytest
from course import SLUGS

from tools.build.leaks import HIDDEN, SOLUTION, region_lines
from tools.build.notebooks import source_to_notebook
from tools.course import ROOT, chapter

# Chapters whose text is being rewritten elsewhere; they are checked once they land.
SKIPPED: dict = {}

MIN_LATIN_RUN = 4

# Named terms and titles that stay in English (matched case-insensitively, as whole words): the papers the
# chapters are built on, when a chapter names one in full. Add a term here only when Russian has no usual name.
ALLOWED_TERMS = (
    "Auto-Encoding Variational Bayes",
    "Generative Adversarial Nets",
    "Denoising Diffusion Probabilistic Models",
    "Human-level control through deep reinforcement learning",
    "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
    "Learning Transferable Visual Models From Natural Language Supervision",
    "Attention Is All You Need",
    "Neural Machine Translation by Jointly Learning to Align and Translate",
)

# Maintainer paths and commands: a student has no use for them (and no `make` on Colab).
MAKE_TARGETS = sorted(set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE)))
MAINTAINER = re.compile(r"(?<![\w./-])(?:tools|tests|solutions)/|python -m tools\b|"
                        r"(?<![\w-])make (?:" + "|".join(MAKE_TARGETS) + r")(?![\w-])")
# Texts students never see: the materials a chapter was written from ("учебный код курса", "the seed's encoder").
# A random seed ("seed=0", "сид 3") is not one of them.
UNSEEN = re.compile(r"учебн\w* (?:код|текст|курс)\w*|\bseed(?:'s|’s)|\b(?:the|this) seed\b(?![\s=]*\d)",
                    re.IGNORECASE)

NOT_PROSE = [
    re.compile(r"`[^`]*`"),                       # inline code
    re.compile(r"\$\$.*?\$\$|\$[^$]*\$", re.DOTALL),  # formulas
    re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]", re.DOTALL),  # formulas, LaTeX brackets
    re.compile(r"noqa\b[:\s\w,]*?(?=--|$)", re.MULTILINE),  # linter directives
    re.compile(r"\]\([^)]*\)"),                   # link targets
    re.compile(r"https?://\S+|www\.\S+"),         # addresses
    re.compile(r"<[^>]+>"),                       # HTML tags
    re.compile(r"\b[A-Z][\w-]*(?: and [A-Z][\w-]*)? et al\.?"),  # citations
]
WORD = re.compile(r"\w+(?:[.'’-]\w+)*")
CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
ENGLISH_WORD = re.compile(r"[a-z]+(?:['’-][a-z]+)*|[A-Z][a-z]+(?:['’-][a-z]+)*")
_ALLOWED = re.compile("|".join(r"(?<!\w)" + re.escape(term) + r"(?!\w)" for term in ALLOWED_TERMS),
                      re.IGNORECASE)


# Calls whose string arguments a student sees, and keyword arguments that label a plot or a progress bar.
SHOWN_CALLS = {"print", "set_title", "set_xlabel", "set_ylabel", "title", "xlabel", "ylabel", "suptitle", "text",
               "annotate", "legend"}
SHOWN_KEYWORDS = {"title", "xlabel", "ylabel", "label", "desc"}


@dataclass
class Text:
    """A piece of student-visible text: one comment block, docstring or markdown cell."""

    kind: str
    lines: list[tuple[int, str]]  # (line number within the cell, text)


def student_cells(slug: str):
    """(cell number, label, cell type, source as the student sees it, line numbers kept) of the chapter's cells."""
    nb = source_to_notebook(chapter(slug), ROOT)
    for number, cell in enumerate(nb.cells, 1):
        removed = region_lines(cell.source, SOLUTION) | region_lines(cell.source, HIDDEN)
        lines = []
        for n, line in enumerate(cell.source.splitlines(), 1):
            if line.strip() in (SOLUTION[0], HIDDEN[0]) and cell.cell_type == "code":
                line = line[:len(line) - len(line.lstrip())] + "pass"  # nbgrader's stub keeps the block
            elif n in removed or any(marker in line for marker in (*SOLUTION, *HIDDEN)):
                line = ""
            lines.append(line)
        label = cell.metadata.get("nbgrader", {}).get("grade_id") or cell.source.strip().split("\n")[0][:60]
        yield number, label, cell.cell_type, "\n".join(lines)


def markdown_texts(source: str) -> list[Text]:
    """The cell's lines; inside a fenced code block only its comments."""
    lines, fenced = [], False
    for n, line in enumerate(source.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append((n, line))
        elif "#" in line:
            lines.append((n, line[line.index("#") + 1:]))
    return [Text("markdown", lines)]


def code_texts(source: str) -> list[Text]:
    """Comment blocks (consecutive comment lines) and docstrings of a code cell."""
    # IPython magics and shell lines are not Python: blank them.
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    texts: list[Text] = []
    last_comment_line = -1
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type != tokenize.COMMENT:
            continue
        n, text = tok.start[0], tok.string.lstrip("#")
        if texts and texts[-1].kind == "comment" and n == last_comment_line + 1:
            texts[-1].lines.append((n, text))
        else:
            texts.append(Text("comment", [(n, text)]))
        last_comment_line = n
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            texts += [Text("shown string", [(node.lineno, string.replace("\n", " "))])
                      for string in shown_strings(node)]
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                first = node.body[0].lineno
                texts.append(Text("docstring", [(first + i, line) for i, line in enumerate(doc.splitlines())]))
    return texts


def _literal_parts(node: ast.expr) -> list[str]:
    """The literal text of a string expression: a constant, the constant parts of an f-string, a concatenation."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [" ".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))]
    if isinstance(node, ast.BinOp):
        return _literal_parts(node.left) + _literal_parts(node.right)
    return []


def shown_strings(call: ast.Call) -> list[str]:
    """Strings a call shows the student: the arguments of print and of plot-labelling calls, label keywords."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    found = [part for arg in call.args for part in _literal_parts(arg)] if name in SHOWN_CALLS else []
    return found + [part for kw in call.keywords if kw.arg in SHOWN_KEYWORDS for part in _literal_parts(kw.value)]


def prose(text: str) -> str:
    """The text without what is not prose (code, formulas, addresses, tags, allowed terms); line breaks kept."""
    for pattern in (*NOT_PROSE, _ALLOWED):
        text = pattern.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), text)
    return text


def latin_runs(text: Text) -> list[tuple[int, str]]:
    """(line, words) of every run of MIN_LATIN_RUN or more English words without a Russian word between."""
    runs, run, start = [], [], 0
    numbers = [n for n, _ in text.lines]
    for n, line in zip(numbers, prose("\n".join(line for _, line in text.lines)).split("\n"), strict=True):
        for word in WORD.findall(line):
            if CYRILLIC.search(word):
                if len(run) >= MIN_LATIN_RUN:
                    runs.append((start, " ".join(run)))
                run = []
            elif len(word) > 1 and ENGLISH_WORD.fullmatch(word):
                if not run:
                    start = n
                run.append(word)
    if len(run) >= MIN_LATIN_RUN:
        runs.append((start, " ".join(run)))
    return runs


def problems(slug: str) -> list[str]:
    found = []
    for number, label, cell_type, source in student_cells(slug):
        texts = markdown_texts(source) if cell_type == "markdown" else code_texts(source)
        where = f"{slug}, cell {number} ({label!r})"
        for text in texts:
            lines = dict(text.lines)
            for n, words in latin_runs(text):
                found.append(f"{where}, line {n}, English {text.kind}: {lines[n].strip()!r} [{words}]")
            for n, line in text.lines:
                if m := MAINTAINER.search(line):
                    found.append(f"{where}, line {n}, maintainer path or command {m[0]!r}: {line.strip()!r}")
                if m := UNSEEN.search(prose(line)):
                    found.append(f"{where}, line {n}, a text students never see ({m[0]!r}): {line.strip()!r}")
    return found


@pytest.mark.parametrize("slug", SLUGS)
def test_student_text_is_russian_and_speaks_to_students(slug):
    if slug in SKIPPED:
        pytest.skip(SKIPPED[slug])
    found = problems(slug)
    assert not found, (f"{len(found)} problem(s) in the student-visible text of {slug} (write it in Russian, "
                       f"or add a named term to ALLOWED_TERMS):\n" + "\n".join(found))


def test_the_check_finds_english_prose_maintainer_commands_and_unseen_texts():
    english = Text("comment", [(1, " Returns the mean of the `x_batch` over the last axis")])
    russian = Text("comment", [(1, " Среднее `x_batch` по последней оси, как в Attention Is All You Need")])
    mixed = Text("markdown", [(1, "Энкодер (encoder) и декодер (decoder), loss_fn и VAE, KL и ELBO")])
    assert latin_runs(english) == [(1, "Returns the mean of the over the last axis")]
    assert latin_runs(russian) == [] and latin_runs(mixed) == []
    assert MAINTAINER.search("запустите `python -m tools.build`") and MAINTAINER.search("make demo")
    assert MAINTAINER.search("см. tests/exercises") and not MAINTAINER.search("modules/08_clip/app.py")
    assert UNSEEN.search("как в учебном коде курса") and UNSEEN.search(prose("The seed's encoder"))
    assert UNSEEN.search("кодировщик учебного курса") and UNSEEN.search("as in the seed notebook")
    assert not UNSEEN.search(prose("`utils.seed_everything(42)`, np.random.seed(0), (variant, seed), the seed 3"))


def test_printed_text_and_plot_labels_are_read():
    cell = ('print(f"loss {x:.3f}: training goes well so far")\n'
            'ax.set(title="Ошибка обучения", xlabel="the epoch of the run here")\nplt.legend("кривые")\n')
    shown = [line for text in code_texts(cell) if text.kind == "shown string" for _, line in text.lines]
    assert shown == ["loss  : training goes well so far", "Ошибка обучения", "the epoch of the run here", "кривые"]
    assert [latin_runs(t) for t in code_texts(cell) if t.kind == "shown string"][0] == [
        (1, "loss training goes well so far")]
