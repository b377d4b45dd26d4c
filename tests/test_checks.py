"""utils.checks: the assertions exercise test cells use."""

import pytest
import torch

from utils import assert_close, assert_shape, rel_error


def test_rel_error_matches_definition():
    assert rel_error(torch.tensor([1.0]), torch.tensor([1.0])) == 0.0
    assert rel_error([1.0], [3.0]) == pytest.approx(0.5)


def test_assert_close_accepts_within_tolerance_and_rejects_outside():
    assert_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]))
    with pytest.raises(AssertionError, match="не совпадают.*относительная ошибка"):
        assert_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.1]), "тест")


def test_assert_close_rejects_wrong_shape_type_and_nan():
    with pytest.raises(AssertionError, match="форма"):
        assert_close(torch.zeros(3), torch.zeros(1, 3))
    with pytest.raises(AssertionError, match="torch.Tensor"):
        assert_close([0.0], torch.zeros(1))
    with pytest.raises(AssertionError, match="NaN"):
        assert_close(torch.tensor([float("nan")]), torch.zeros(1))


def test_assert_shape():
    assert_shape(torch.zeros(2, 3), (2, 3))
    with pytest.raises(AssertionError, match=r"ожидалась форма \(2, 3\), получена \(3, 2\)"):
        assert_shape(torch.zeros(3, 2), (2, 3), "x")
    with pytest.raises(AssertionError, match="torch.Tensor"):
        assert_shape([[0.0]], (1, 1))
