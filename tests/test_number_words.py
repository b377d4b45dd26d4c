"""utils.number_words: Russian cardinals with their agreement, checked against hand-written forms and against an
independent parser that reads the words back into the number."""

from __future__ import annotations

import random

import pytest

from utils.number_words import LIMIT, number_to_words, plural_form, vocabulary

GOLDEN = {
    0: "ноль", 7: "семь", 10: "десять", 14: "четырнадцать", 40: "сорок", 99: "девяносто девять", 100: "сто",
    205: "двести пять", 1000: "одна тысяча", 1002: "одна тысяча два", 2000: "две тысячи", 4000: "четыре тысячи",
    5000: "пять тысяч", 11000: "одиннадцать тысяч", 12000: "двенадцать тысяч", 21000: "двадцать одна тысяча",
    22000: "двадцать две тысячи", 25000: "двадцать пять тысяч", 111000: "сто одиннадцать тысяч",
    301001: "триста одна тысяча один", 1000000: "один миллион", 3000000: "три миллиона",
    11000000: "одиннадцать миллионов", 1001001: "один миллион одна тысяча один",
    999999999: "девятьсот девяносто девять миллионов девятьсот девяносто девять тысяч девятьсот девяносто девять",
}


@pytest.mark.parametrize(("n", "words"), GOLDEN.items())
def test_hand_written_forms(n, words):
    assert number_to_words(n) == words


def _read_back(text: str) -> int:
    """An independent reading of Russian cardinal words: values by word, multipliers close a group."""
    values = {}
    for value, word in enumerate(["", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять",
                                  "десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать",
                                  "шестнадцать", "семнадцать", "восемнадцать", "девятнадцать"]):
        values[word] = value
    values |= {"одна": 1, "две": 2, "ноль": 0, "двадцать": 20, "тридцать": 30, "сорок": 40, "пятьдесят": 50,
               "шестьдесят": 60, "семьдесят": 70, "восемьдесят": 80, "девяносто": 90, "сто": 100, "двести": 200,
               "триста": 300, "четыреста": 400, "пятьсот": 500, "шестьсот": 600, "семьсот": 700, "восемьсот": 800,
               "девятьсот": 900}
    multipliers = {w: 1000 for w in ("тысяча", "тысячи", "тысяч")} | {w: 10**6 for w in
                                                                       ("миллион", "миллиона", "миллионов")}
    total = group = 0
    for word in text.split():
        if word in multipliers:
            total += max(group, 1) * multipliers[word]
            group = 0
        else:
            group += values[word]
    return total + group


def test_random_numbers_read_back_and_use_only_the_vocabulary():
    rng = random.Random(0)
    known = set(vocabulary())
    numbers = [rng.randrange(LIMIT) for _ in range(3000)] + [rng.randrange(10**4) for _ in range(1000)]
    for n in numbers:
        words = number_to_words(n)
        assert _read_back(words) == n, (n, words)
        assert set(words.split()) <= known


def test_agreement_of_thousands_follows_the_last_two_digits():
    assert [plural_form(k, ("тысяча", "тысячи", "тысяч")) for k in (1, 2, 4, 5, 11, 14, 21, 22, 25, 111, 112, 121)] \
        == ["тысяча", "тысячи", "тысячи", "тысяч", "тысяч", "тысяч", "тысяча", "тысячи", "тысяч", "тысяч", "тысяч",
            "тысяча"]


def test_out_of_range_is_refused():
    for n in (-1, LIMIT):
        with pytest.raises(ValueError):
            number_to_words(n)
