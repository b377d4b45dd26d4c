"""Matplotlib figures the chapters share, labelled in Russian by default.

Every function returns the ``Figure`` (and draws into ``ax`` when given one),
so notebooks can both display and save them, and tests can inspect them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_image_array(images, image_shape: Sequence[int] | None = None,
                   value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Images as a float array ``(N, H, W)`` or ``(N, H, W, 3)`` in [0, 1].

    Accepts tensors or arrays shaped ``(N, D)`` (square grey images, or
    ``image_shape``), ``(N, H, W)``, ``(N, 1|3, H, W)`` or ``(N, H, W, 3)``.
    ``value_range`` defaults to [-1, 1] when any value is negative, else [0, 1].
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().float().numpy()
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        if image_shape is None:
            side = int(round(math.sqrt(x.shape[1])))
            if side * side != x.shape[1]:
                raise ValueError("flat images need image_shape unless they are square")
            image_shape = (side, side)
        x = x.reshape(len(x), *image_shape)
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.transpose(0, 2, 3, 1)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (3, 4):
        raise ValueError(f"cannot interpret images of shape {np.shape(images)}")
    lo, hi = value_range if value_range is not None else ((-1.0, 1.0) if x.min() < 0 else (0.0, 1.0))
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def show_images(images, nrow: int = 8, title: str | None = None,
                labels: Sequence | None = None, value_range=None, image_shape=None,
                cell_size: float = 1.1, ax=None):
    """A grid of images with optional per-image labels; returns the figure."""
    x = to_image_array(images, image_shape, value_range)
    n = len(x)
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    h, w = x.shape[1:3]
    pad = 2
    canvas_shape = (nrows * (h + pad) - pad, ncol * (w + pad) - pad) + x.shape[3:]
    canvas = np.ones(canvas_shape, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        canvas[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = x[i]
    if ax is None:
        fig, ax = plt.subplots(figsize=(cell_size * ncol, cell_size * nrows + (0.4 if title else 0)))
    else:
        fig = ax.figure
    ax.imshow(canvas, cmap="gray" if canvas.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_axis_off()
    if labels is not None:
        for i, label in enumerate(labels[:n]):
            r, c = divmod(i, ncol)
            ax.text(c * (w + pad) + 1, r * (h + pad) + 1, str(label), color="tab:red",
                    fontsize=8, va="top", ha="left")
    if title:
        ax.set_title(title)
    return fig


def plot_image_rows(rows: Mapping[str, object], n: int = 10, title: str | None = None,
                    value_range=None, image_shape=None, cell_size: float = 1.1,
                    col_titles: Sequence[str] | None = None):
    """Several aligned rows of images (e.g. noisy / denoised / clean), one row per key.

    ``col_titles`` labels the columns above the first row (e.g. the noise step of each column).
    """
    fig, axes = plt.subplots(len(rows), 1, figsize=(cell_size * n, cell_size * len(rows) + 0.5),
                             squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], rows.items(), strict=True):
        show_images(images[:n], nrow=n, value_range=value_range, image_shape=image_shape, ax=ax)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    if col_titles is not None:
        top = axes[0, 0]
        width = top.get_images()[0].get_array().shape[1]
        ncol = min(n, len(next(iter(rows.values()))))
        step = (width + 2) / ncol  # show_images puts 2 pixels between images
        for i, label in enumerate(list(col_titles)[:ncol]):
            top.text(i * step + (step - 2) / 2, -2, str(label), ha="center", va="bottom", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_reconstructions(originals, reconstructions, n: int = 10, title: str | None = None,
                         **kwargs):
    """Originals above their reconstructions."""
    return plot_image_rows({"Оригинал": originals, "Восстановление": reconstructions},
                           n=n, title=title, **kwargs)


def plot_latent_2d(points, labels=None, title: str | None = None,
                   class_names: Sequence[str] | None = None, ax=None, s: float = 6.0):
    """Scatter of 2-D codes coloured by class label, with a legend."""
    pts = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError("points must have shape (N, 2)")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5))
    else:
        fig = ax.figure
    if labels is None:
        ax.scatter(pts[:, 0], pts[:, 1], s=s, alpha=0.7)
    else:
        lab = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        cmap = plt.get_cmap("tab10" if lab.max() < 10 else "tab20")
        for k in np.unique(lab):
            name = class_names[k] if class_names is not None else str(k)
            sel = lab == k
            ax.scatter(pts[sel, 0], pts[sel, 1], s=s, alpha=0.7, color=cmap(int(k) % cmap.N),
                       label=name)
        ax.legend(markerscale=2.5, fontsize=8, loc="best", framealpha=0.8)
    ax.set_xlabel("компонента 1")
    ax.set_ylabel("компонента 2")
    if title:
        ax.set_title(title)
    return fig


def plot_history(history: Mapping[str, Sequence[float]], title: str | None = None,
                 xlabel: str = "Эпоха", ylabel: str = "Потери", logy: bool = False, ax=None):
    """Training curves, one line per key of ``history``."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.8))
    else:
        fig = ax.figure
    for name, values in history.items():
        values = list(values)
        ax.plot(range(1, len(values) + 1), values, marker="o" if len(values) <= 30 else None,
                label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


def plot_histograms(samples: Mapping[str, Sequence[float]], bins: int = 50,
                    title: str | None = None, xlabel: str = "Значение", ax=None):
    """Overlaid density histograms of several samples (e.g. anomaly scores)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.8))
    else:
        fig = ax.figure
    arrays = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
              for k, v in samples.items()}
    lo = min(a.min() for a in arrays.values())
    hi = max(a.max() for a in arrays.values())
    edges = np.linspace(lo, hi, bins + 1)
    for name, a in arrays.items():
        ax.hist(a, bins=edges, density=True, alpha=0.55, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Плотность")
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


def draw_blocks(blocks: Sequence[tuple], ax=None, chain: bool = True, gap: float = 0.02,
                alpha: float = 0.35, fontsize: float = 9, label_below: bool = False):
    """Labelled boxes of a network diagram, joined in order by arrows.

    Each block is ``(x, y, width, height, label, color)``: ``x`` is the left
    edge and ``y`` the vertical centre, so a chain of layers at different
    resolutions (a U-Net) reads naturally. With ``chain`` an arrow runs from
    each box's right edge to the next box's left edge, ``gap`` short of both.
    The label sits inside the box, or under it with ``label_below``.
    Chapter-specific marks (skips, noise, losses) are drawn on the returned figure.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 3))
    else:
        fig = ax.figure
    for x, y, width, height, label, color in blocks:
        ax.add_patch(plt.Rectangle((x, y - height / 2), width, height, color=color, alpha=alpha))
        if label_below:
            ax.text(x + width / 2, y - height / 2 - 0.25, label, ha="center", va="top", fontsize=fontsize)
        else:
            ax.text(x + width / 2, y, label, ha="center", va="center", fontsize=fontsize)
    if chain:
        for (x0, y0, w0, *_), (x1, y1, *_) in zip(blocks[:-1], blocks[1:], strict=True):
            ax.annotate("", xy=(x1 - gap, y1), xytext=(x0 + w0 + gap, y0),
                        arrowprops=dict(arrowstyle="->", color="gray"))
    ax.set_axis_off()
    return fig


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start): a learning curve's trend."""
    x = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise ValueError("window must be at least 1")
    sums = np.cumsum(np.concatenate([[0.0], x]))
    starts = np.maximum(np.arange(1, len(x) + 1) - window, 0)
    return (sums[1:] - sums[starts]) / (np.arange(1, len(x) + 1) - starts)


def plot_returns(returns: Mapping[str, Sequence[float]], window: int = 20, title: str | None = None,
                 xlabel: str = "Эпизод", ylabel: str = "Награда за эпизод", ax=None):
    """Episode returns of reinforcement-learning runs: each run faint, its moving average bold."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.8))
    else:
        fig = ax.figure
    for i, (name, values) in enumerate(returns.items()):
        color = f"C{i}"
        ax.plot(np.arange(1, len(values) + 1), values, color=color, alpha=0.25, lw=0.8)
        ax.plot(np.arange(1, len(values) + 1), moving_average(values, window), color=color, lw=2,
                label=f"{name} (среднее по {window})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


def animate(fig, update, n_frames: int, interval_ms: int = 50):
    """An animation for the notebook (HTML with the frames embedded, no display or video encoder needed).

    ``update(i)`` redraws frame ``i`` on ``fig``; the figure is closed so that it
    is not shown a second time as a still image.
    """
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    animation = FuncAnimation(fig, update, frames=n_frames, interval=interval_ms)
    html = animation.to_jshtml(default_mode="once")
    plt.close(fig)
    return HTML(html)
