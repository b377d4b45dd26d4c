"""Helpers shared by the course notebooks: device and mode, data, plots, progress, checks, records.

What a chapter teaches stays in the chapter; what several chapters need, or
what is beside the point of a chapter, lives here.
"""

# utils.number_words: Russian number words (chapter 11).
# utils.captions: image-caption pairs with Russian captions (chapter 08 and the capstone).
# utils.metrics: sample-quality scores (fid_score, class_coverage) for the generative chapters.
from . import captions, metrics, number_words
from .apps import show_app, start_app, stop_apps
from .checks import assert_close, assert_shape, checking, numerical_gradient, rel_error, with_stand_ins
from .datasets import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    DataFileError,
    data_dir,
    get_loaders,
    load_checkpoint,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
    load_omniglot,
    load_text,
    make_loader,
)
from .env import (
    by_mode,
    describe_environment,
    get_device,
    hub_reachable,
    in_colab,
    is_autograding,
    is_fast_mode,
    machine_words,
    model_device,
    seed_everything,
    set_fast_mode,
)
from .plotting import (
    animate,
    draw_blocks,
    moving_average,
    plot_histograms,
    plot_history,
    plot_image_rows,
    plot_latent_2d,
    plot_reconstructions,
    plot_returns,
    show_images,
)
from .progress import progress
from .record import grouped, record, record_pitfall, recorded, summary
from .unsolved import explain_unsolved

__version__ = "0.1.0"

__all__ = [
    "CIFAR10_CLASSES", "FASHION_MNIST_CLASSES", "MNIST_CLASSES", "DataFileError", "animate", "moving_average",
    "plot_returns",
    "assert_close", "assert_shape", "by_mode", "checking", "data_dir", "describe_environment", "draw_blocks",
    "get_device", "get_loaders", "grouped",
    "hub_reachable", "in_colab", "is_autograding", "is_fast_mode", "machine_words",
    "set_fast_mode",
    "load_checkpoint",
    "load_cifar10",
    "load_fashion_mnist", "load_mnist", "load_omniglot", "load_text", "make_loader", "model_device", "plot_histograms",
    "plot_history", "plot_image_rows", "plot_latent_2d", "plot_reconstructions", "progress",
    "captions", "metrics", "number_words", "numerical_gradient", "record", "recorded", "rel_error", "record_pitfall",
    "seed_everything", "with_stand_ins", "explain_unsolved",
    "show_app", "show_images", "start_app", "stop_apps",
    "summary",
]
