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


def test_block_diagram_boxes_labels_and_chained_arrows():
    blocks = [(0.0, 2.0, 1.0, 1.6, "вход", "tab:gray"), (2.0, 1.0, 1.0, 0.8, "сжатие", "tab:blue"),
              (4.0, 2.0, 1.5, 1.6, "выход", "tab:green")]
    fig = utils.draw_blocks(blocks, gap=0.05)
    ax = fig.axes[0]
    # bottom-left corner (y = centre - height / 2), width, height of each box
    boxes = [coord for p in ax.patches for coord in (p.get_x(), p.get_y(), p.get_width(), p.get_height())]
    assert boxes == pytest.approx([0.0, 1.2, 1.0, 1.6, 2.0, 0.6, 1.0, 0.8, 4.0, 1.2, 1.5, 1.6])
    labels = [t for t in ax.texts if t.get_text()]
    assert [t.get_text() for t in labels] == ["вход", "сжатие", "выход"]
    assert [t.get_position() for t in labels] == [(0.5, 2.0), (2.5, 1.0), (4.75, 2.0)]  # box centres
    arrows = [t for t in ax.texts if not t.get_text()]  # annotations without text
    ends = [(*a.xyann, *a.xy) for a in arrows]  # (from x, from y, to x, to y)
    assert ends == [pytest.approx((1.05, 2.0, 1.95, 1.0)), pytest.approx((3.05, 1.0, 3.95, 2.0))]


def test_block_diagram_without_chain_and_with_labels_below():
    fig, ax = plt.subplots()
    assert utils.draw_blocks([(0, 0, 0.5, 1.0, "784", "tab:blue"), (1, 0, 0.5, 0.4, "32", "tab:red")],
                             ax=ax, chain=False, label_below=True) is fig
    assert [t.get_text() for t in ax.texts] == ["784", "32"]  # no arrows
    assert [t.get_position() for t in ax.texts] == [(0.25, -0.75), (1.25, -0.45)]


def test_moving_average_uses_what_is_there_at_the_start():
    assert np.allclose(utils.moving_average([2, 4, 6, 8], 2), [2, 3, 5, 7])
    assert np.allclose(utils.moving_average([1, 2, 3], 10), [1, 1.5, 2])
    with pytest.raises(ValueError):
        utils.moving_average([1, 2], 0)


def test_plot_returns_draws_each_run_and_its_trend():
    fig = utils.plot_returns({"DQN": [10, 20, 30, 40], "случайная": [9, 11, 10, 12]}, window=2)
    ax = fig.axes[0]
    assert len(ax.lines) == 4
    assert np.allclose(ax.lines[1].get_ydata(), [10, 15, 25, 35])
    assert "DQN (среднее по 2)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_animate_embeds_every_frame_and_closes_the_figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    (line,) = ax.plot([0, 1], [0, 0])
    drawn = []

    def update(i):
        drawn.append(i)
        line.set_ydata([0, i])
        return (line,)

    html = utils.animate(fig, update, n_frames=3).data
    assert "<img" in html and set(drawn) >= {0, 1, 2}
    assert not plt.fignum_exists(fig.number)
