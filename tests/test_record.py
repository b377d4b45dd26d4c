"""utils.record: the course's number formatting for Russian text."""

from __future__ import annotations

import utils


def test_grouped_separates_thousands_with_a_space_and_keeps_the_spec():
    assert utils.grouped(272474) == "272 474"
    assert utils.grouped(1234567, ">12,") == "   1 234 567"
    assert utils.grouped(999) == "999" and utils.grouped(0.5, ".1%") == "50.0%"
