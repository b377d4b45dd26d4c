"""utils.plotting: figures are built from tensors of every supported layout."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import utils  # noqa: E402
from utils.plotting import to_image_array  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("shape, expected", [
    ((4, 784), (4, 28, 28)),
    ((4, 28, 28), (4, 28, 28)),
    ((4, 1, 28, 28), (4, 28, 28)),
    ((4, 3, 32, 32), (4, 32, 32, 3)),
    ((4, 32, 32, 3), (4, 32, 32, 3)),
])
def test_to_image_array_layouts(shape, expected):
    assert to_image_array(torch.rand(shape)).shape == expected


def test_to_image_array_rescales_minus_one_to_one():
    x = torch.tensor([[-1.0, 0.0, 1.0, 0.0]])
    assert np.allclose(to_image_array(x), [[[0.0, 0.5], [1.0, 0.5]]])
    with pytest.raises(ValueError):
        to_image_array(torch.rand(2, 10))


def test_show_images_grid_and_labels():
    fig = utils.show_images(torch.rand(10, 784), nrow=4, labels=list(range(10)), title="Сетка")
    ax = fig.axes[0]
    assert ax.get_title() == "Сетка" and len(ax.texts) == 10
    assert ax.images[0].get_array().shape == (3 * 30 - 2, 4 * 30 - 2)


def test_rows_and_reconstructions_have_russian_row_names():
    fig = utils.plot_reconstructions(torch.rand(5, 784), torch.rand(5, 784), n=5)
    assert [ax.get_ylabel() for ax in fig.axes] == ["Оригинал", "Восстановление"]
    fig = utils.plot_image_rows({"a": torch.rand(3, 1, 28, 28), "b": torch.rand(3, 1, 28, 28),
                                 "c": torch.rand(3, 1, 28, 28)}, n=3, title="T")
    assert len(fig.axes) == 3


def test_column_titles_sit_above_the_centre_of_each_image():
    fig = utils.plot_image_rows({"x_t": torch.rand(4, 1, 28, 28), "x0": torch.rand(4, 1, 28, 28)}, n=4,
                                col_titles=["t=9", "t=5", "t=1", "t=0"])
    texts = fig.axes[0].texts
    assert [t.get_text() for t in texts] == ["t=9", "t=5", "t=1", "t=0"]
    assert [t.get_position()[0] for t in texts] == [14.0, 44.0, 74.0, 104.0]  # 28-pixel images, 2-pixel gaps
    assert not fig.axes[1].texts


def test_latent_scatter_legend_and_validation():
    fig = utils.plot_latent_2d(torch.randn(100, 2), torch.arange(100) % 10, title="z")
    ax = fig.axes[0]
    assert len(ax.collections) == 10 and len(ax.get_legend().get_texts()) == 10
    assert ax.get_xlabel() == "компонента 1"
    with pytest.raises(ValueError):
        utils.plot_latent_2d(torch.randn(10, 3))


def test_history_and_histograms():
    fig = utils.plot_history({"обучение": [3, 2, 1], "тест": [3.5, 2.5, 2]}, title="h")
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and ax.get_xlabel() == "Эпоха"
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]
    fig = utils.plot_histograms({"a": torch.rand(100), "b": np.random.rand(50) + 1}, bins=10)
    assert len(fig.axes[0].patches) == 20
