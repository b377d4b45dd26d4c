"""A short Russian message, instead of an English traceback, when a cell runs an exercise that is still blank.

The student notebook's solution cells hold ``raise NotImplementedError()``; running a test cell before solving
shows a page of traceback. ``explain_unsolved()`` (called by every chapter's setup cell) installs an IPython
handler for ``NotImplementedError`` that names the unsolved function and says what to do. The handler shows its
lines as the cell's traceback, so the cell still ends with an *error* output: nbgrader keeps giving it zero points.
"""

from __future__ import annotations

import types

RED, RESET = "\x1b[31m", "\x1b[0m"


def unsolved_name(tb: types.TracebackType | None) -> str | None:
    """Qualified name of the function whose body raised (the innermost frame), or None for a cell's top level."""
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    if code.co_name == "<module>":
        return None
    return getattr(code, "co_qualname", code.co_name)


def unsolved_message(name: str | None) -> list[str]:
    """The lines the student sees (the first one is what nbgrader's feedback shows as the error)."""
    where = f"`{name}` ещё не написана" if name else "в ячейке решения ещё стоит `raise NotImplementedError()`"
    return [f"{RED}Упражнение ещё не решено{RESET}: {where}.",
            "Замените `raise NotImplementedError()` в ячейке решения своим кодом, выполните эту ячейку, "
            "а затем ячейку с тестами."]


def _handler(shell, etype, value, tb, tb_offset=None):
    # IPython does not display what a custom handler returns: show it as the cell's error output ourselves
    # (ipykernel sends it as an "error" message, which is what nbgrader counts as a failed test).
    stb = unsolved_message(unsolved_name(tb))
    shell._showtraceback(etype, value, stb)
    return stb


def explain_unsolved(shell=None) -> bool:
    """Install the handler in the running IPython shell (or ``shell``); False outside IPython (plain Python)."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((NotImplementedError,), _handler)
    return True
