"""Russian number words for the toy translation task of chapter 11 (seq2seq).

``number_to_words(n)`` writes a cardinal from 0 to 999 999 999 in Russian words,
with the agreement a learner has to get right: "одна тысяча", "две тысячи",
"пять тысяч", "двадцать одна тысяча", "одиннадцать тысяч", "два миллиона",
"пять миллионов". Being a rule, it gives an unlimited supply of exact pairs
(words, digits) offline, and exact-match accuracy of a translation model is then
a measurement, not a judgement.
"""

from __future__ import annotations

UNITS = ("", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")
UNITS_FEMININE = ("", "одна", "две") + UNITS[3:]  # тысяча is feminine
TEENS = ("десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать", "шестнадцать",
         "семнадцать", "восемнадцать", "девятнадцать")
TENS = ("", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят", "восемьдесят",
        "девяносто")
HUNDREDS = ("", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот", "восемьсот",
            "девятьсот")
# The noun after a count: the form for 1, for 2-4 and for 5-20 and 0 (by the last two digits).
THOUSAND = ("тысяча", "тысячи", "тысяч")
MILLION = ("миллион", "миллиона", "миллионов")
LIMIT = 10**9


def plural_form(n: int, forms: tuple[str, str, str]) -> str:
    """The noun form that follows the count ``n`` ("одна тысяча", "две тысячи", "пять тысяч", "11 тысяч")."""
    if 11 <= n % 100 <= 14:
        return forms[2]
    return forms[0] if n % 10 == 1 else forms[1] if 2 <= n % 10 <= 4 else forms[2]


def _below_thousand(n: int, feminine: bool = False) -> list[str]:
    units = UNITS_FEMININE if feminine else UNITS
    words = [HUNDREDS[n // 100]]
    rest = n % 100
    if 10 <= rest <= 19:
        words.append(TEENS[rest - 10])
    else:
        words += [TENS[rest // 10], units[rest % 10]]
    return [w for w in words if w]


def number_to_words(n: int) -> str:
    """``n`` (0 <= n < 10**9) as Russian cardinal words, in the nominative."""
    if not 0 <= n < LIMIT:
        raise ValueError(f"number_to_words covers 0..{LIMIT - 1}, not {n}")
    if n == 0:
        return "ноль"
    millions, thousands, rest = n // 10**6, n // 1000 % 1000, n % 1000
    words = []
    if millions:
        words += _below_thousand(millions) + [plural_form(millions, MILLION)]
    if thousands:
        words += _below_thousand(thousands, feminine=True) + [plural_form(thousands, THOUSAND)]
    return " ".join(words + _below_thousand(rest))


def vocabulary() -> list[str]:
    """Every word ``number_to_words`` can write, in a fixed order."""
    words = ["ноль", *UNITS[1:], *UNITS_FEMININE[1:3], *TEENS, *TENS[2:], *HUNDREDS[1:], *THOUSAND, *MILLION]
    return list(dict.fromkeys(words))
