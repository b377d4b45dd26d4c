"""Graded answers that reach a student notebook: of their own chapter, or of another one.

Every statement and expression inside a solution region of a chapter's
instructor notebook is a secret of that chapter; so is everything inside its
hidden-test regions, for its own release only (another chapter may test the same
way). Secrets are compared with every statement and expression of every released
notebook after normalisation: parsed, so formatting and comments do not matter;
docstrings and annotations dropped; the names a cell binds (variables,
parameters, its own functions and classes) renamed in order of appearance, so a
renamed copy is still the same code. What the code calls (torch, F, utils,
attributes, constants) stays: that is what it does. A fragment must do at least
MIN_NODES things (syntax nodes other than the names it binds) to count, and a
secret that also stands in a public part of its own chapter is none.

A secret of another chapter found in a release is a leak unless the releasing
chapter declares in chapters.toml that it reveals that chapter (it gives the
earlier chapter's answers as ready code); such a chapter is released only after
the earlier one's deadline, and `make release` prints these orders.
"""

from __future__ import annotations

import ast
import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tools.course import ROOT, Chapter, chapters

MIN_NODES = 6  # e.g. F.binary_cross_entropy_with_logits(x, torch.ones_like(x))
SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
_CONTEXTS = (ast.Load, ast.Store, ast.Del)


def bound_names(tree: ast.AST) -> set[str]:
    """Names a cell binds itself (assigned, parameters, definitions, imports): the ones a copy may rename.
    Names it only reads (torch, F, utils, a notebook-wide CFG) are what the code calls, and stay."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


class _Canonical(ast.NodeTransformer):
    """Rename the bound names in order of appearance; drop docstrings and annotations."""

    def __init__(self, bound: set[str]):
        self.bound, self.names = bound, {}

    def _rename(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}") if name in self.bound else name

    def visit_Name(self, node):
        node.id = self._rename(node.id)
        return node

    def visit_arg(self, node):
        node.arg, node.annotation = self._rename(node.arg), None
        return node

    def _definition(self, node):
        node.name = self._rename(node.name)
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
        if hasattr(node, "returns"):
            node.returns = None
        return self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _definition


def size(node: ast.AST, bound: set[str]) -> int:
    """What a fragment does, in syntax nodes: not counting load/store markers and the names it binds."""
    return sum(not isinstance(n, _CONTEXTS) and not (isinstance(n, ast.Name) and n.id in bound)
               and not isinstance(n, ast.arg) for n in ast.walk(node))


def fingerprint(node: ast.AST, bound: set[str]) -> str:
    canonical = _Canonical(bound).visit(copy.deepcopy(node))
    return hashlib.sha1(ast.dump(canonical, annotate_fields=False).encode()).hexdigest()


def _parse(source: str) -> ast.Module | None:
    """A code cell as Python; IPython magics and shell lines are blanked first; None if it still does not parse."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def region_lines(source: str, region: tuple[str, str]) -> set[int]:
    """1-based numbers of the lines strictly inside the ``region`` markers."""
    inside, lines = False, set()
    begin, end = region
    for number, line in enumerate(source.splitlines(), 1):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.add(number)
    return lines


def fragments(tree: ast.Module):
    """Statements and expressions that do enough to count, with their fingerprints."""
    bound = bound_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt | ast.expr) and size(node, bound) >= MIN_NODES:
            yield node, fingerprint(node, bound)


@dataclass
class Secrets:
    """The secret fragments of one chapter: fingerprint -> (grade_id, first line of the fragment).

    ``solutions`` are its graded answers, secret from every release; ``hidden`` its hidden tests,
    secret from its own release (another chapter may well test the same way)."""

    chapter: str
    solutions: dict[str, tuple[str, str]] = field(default_factory=dict)
    hidden: dict[str, tuple[str, str]] = field(default_factory=dict)


def chapter_secrets(slug: str, instructor: nbformat.NotebookNode) -> Secrets:
    found, public = Secrets(slug), set()
    for cell in instructor.cells:
        if cell.cell_type != "code" or (tree := _parse(cell.source)) is None:
            continue
        solution, hidden = region_lines(cell.source, SOLUTION), region_lines(cell.source, HIDDEN)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", cell.get("id", "?"))
        for node, key in fragments(tree):
            span = set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
            where = (grade_id, ast.unparse(node).splitlines()[0])
            if solution and span <= solution:
                found.solutions.setdefault(key, where)
            elif hidden and span <= hidden:
                found.hidden.setdefault(key, where)
            elif not span & (solution | hidden):
                public.add(key)
    found.solutions = {k: v for k, v in found.solutions.items() if k not in public}
    found.hidden = {k: v for k, v in found.hidden.items() if k not in public}
    return found


@dataclass(frozen=True)
class Leak:
    secret_of: str  # chapter whose answer or hidden test it is
    grade_id: str
    released_in: str  # chapter whose student notebook shows it
    statement: str  # the secret, as the instructor notebook has it (first line)
    shown: str  # the same code as the student notebook shows it (first line)
    declared: bool  # the releasing chapter declares that it reveals secret_of


def find_leaks(releases: dict[str, nbformat.NotebookNode], secrets: list[Secrets],
               reveals: dict[str, tuple[str, ...]]) -> list[Leak]:
    """Every secret fragment that stands in a release, marked declared or not."""
    found = set()
    for slug, release in releases.items():
        shown: dict[str, str] = {}
        for cell in release.cells:
            if cell.cell_type == "code" and (tree := _parse(cell.source)) is not None:
                for node, key in fragments(tree):
                    shown.setdefault(key, ast.unparse(node).splitlines()[0])
        for secret in secrets:
            own = secret.chapter == slug
            candidates = {**secret.solutions, **secret.hidden} if own else secret.solutions
            for key in shown.keys() & candidates.keys():
                grade_id, statement = candidates[key]
                declared = not own and secret.chapter in reveals.get(slug, ())
                found.add(Leak(secret.chapter, grade_id, slug, statement, shown[key], declared))
    return sorted(found, key=lambda leak: (leak.released_in, leak.secret_of, leak.grade_id, leak.statement))


def check(root: Path = ROOT, registered: list[Chapter] | None = None) -> list[Leak]:
    """Leaks among the built notebooks under ``root`` (undeclared ones have ``declared`` False)."""
    registered = chapters(root) if registered is None else registered
    secrets = [chapter_secrets(ch.slug, nbformat.read(ch.instructor_notebook(root), as_version=4))
               for ch in registered]
    releases = {ch.slug: nbformat.read(ch.release_notebook(root), as_version=4) for ch in registered}
    return find_leaks(releases, secrets, {ch.slug: ch.reveals for ch in registered})


def release_orders(leaks: list[Leak], registered: list[Chapter]) -> list[str]:
    """One line per declared reveal, for `make release` and the instructor: what to release after what."""
    lines = []
    for ch in registered:
        for earlier in ch.reveals:
            cells = sorted({leak.grade_id for leak in leaks if leak.released_in == ch.slug
                            and leak.secret_of == earlier and leak.declared})
            shown = ", ".join(cells) if cells else "nothing found: remove the declaration"
            lines.append(f"{ch.slug} shows graded answers of {earlier} ({shown}): "
                         f"release {ch.slug} only after the deadline of {earlier}")
    return lines
