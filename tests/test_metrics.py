"""utils.metrics: the committed classifiers, the Fréchet distance and class coverage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from course import ROOT

import utils
from tools import records
from tools.artifacts import checksums
from utils import metrics

CHECKSUMS = checksums.read()
RECORDED = records.read("classifiers")


@pytest.fixture(scope="module")
def mnist_test():
    return utils.load_mnist("test", source="subset")


@pytest.mark.parametrize("dataset", sorted(metrics.CHECKPOINTS))
def test_checkpoints_are_small_and_registered(dataset):
    rel = metrics.CHECKPOINTS[dataset]
    assert (ROOT / "data" / rel).stat().st_size < 1_000_000
    assert rel in CHECKSUMS and dataset in RECORDED


def test_mnist_classifier_reaches_99_percent(mnist_test):
    x, y = mnist_test
    probs = metrics.classifier_probabilities(x)
    accuracy = float((probs.argmax(1) == y.numpy()).mean())
    assert accuracy >= 0.99, f"MNIST test accuracy {accuracy:.4f}"
    # The number recorded by the training script is the one measured here.
    recorded = RECORDED["mnist"]["test_accuracy"]
    assert accuracy == pytest.approx(recorded, abs=1e-4)


def test_fashion_classifier_accuracy_matches_its_record():
    x, y = utils.load_fashion_mnist("test", source="subset")
    accuracy = float((metrics.classifier_probabilities(x, "fashion_mnist").argmax(1) == y.numpy()).mean())
    recorded = RECORDED["fashion_mnist"]["test_accuracy"]
    assert accuracy == pytest.approx(recorded, abs=1e-4)
    assert accuracy > 0.85, f"Fashion-MNIST test accuracy {accuracy:.4f}"


def test_image_layouts_and_ranges_agree(mnist_test):
    x = mnist_test[0][:50]
    f = metrics.classifier_features(x)
    assert f.shape == (50, 128)
    assert np.allclose(f, metrics.classifier_features(x.reshape(50, 784)))
    assert np.allclose(f, metrics.classifier_features(x * 2 - 1, value_range="-11"), atol=1e-5)
    with pytest.raises(ValueError):
        metrics.classifier_features(torch.rand(3, 3, 32, 32))


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 4))
    shift = np.array([1.0, 2.0, 0.0, 0.0])
    # Same covariance: the distance is |mu_a - mu_b|^2 = 5.
    assert metrics.frechet_distance(a, rng.standard_normal((20000, 4)) + shift) == pytest.approx(5.0, abs=0.1)
    # Scaled covariance, 1-D: (sigma_a - sigma_b)^2 = (1 - 3)^2 = 4.
    b = 3 * rng.standard_normal((20000, 1))
    assert metrics.frechet_distance(a[:, :1], b) == pytest.approx(4.0, abs=0.15)
    with pytest.raises(ValueError):
        metrics.frechet_distance(a, a[:, :3])


def test_fid_is_zero_on_itself_symmetric_and_grows_with_noise(mnist_test):
    x = mnist_test[0][:2000]
    other = mnist_test[0][2000:4000]
    fx, fo = metrics.classifier_features(x), metrics.classifier_features(other)
    assert metrics.frechet_distance(fx, fx) < 1e-6
    assert metrics.frechet_distance(fx, fo) == pytest.approx(metrics.frechet_distance(fo, fx), rel=1e-6)
    gen = torch.Generator().manual_seed(0)
    scores = []
    for sigma in (0.0, 0.1, 0.3, 0.6):
        noisy = (x + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1)
        scores.append(metrics.frechet_distance(metrics.classifier_features(noisy), fo))
    assert all(a < b for a, b in zip(scores, scores[1:], strict=False)), scores
    assert scores[-1] > 10 * scores[0]


def test_fid_score_against_the_test_set(mnist_test):
    real = metrics.fid_score(mnist_test[0][5000:7000])
    noise = metrics.fid_score(torch.rand(2000, 1, 28, 28))
    assert real < noise / 20, (real, noise)


def test_class_coverage(mnist_test):
    x, y = mnist_test
    cov = metrics.class_coverage(x[:3000])
    true = np.bincount(y[:3000].numpy(), minlength=10) / 3000
    assert np.allclose(cov["histogram"], true, atol=0.01)
    assert cov["classes_present"] == 10 and cov["confident_share"] > 0.95
    ones = x[:3000][y[:3000] == 1]
    collapsed = metrics.class_coverage(ones)
    assert collapsed["classes_present"] <= 2 and collapsed["min_share"] == 0.0
    assert collapsed["histogram"][1] > 0.98
    # Not confident on what is no digit (the classifier saw such outliers with uniform targets).
    gen = torch.Generator().manual_seed(5)
    assert metrics.class_coverage(torch.rand(500, 784, generator=gen))["confident_share"] < 0.1
    grey = torch.full((200, 784), 0.5) + 0.05 * torch.randn(200, 784, generator=gen)
    assert metrics.class_coverage(grey.clamp(0, 1))["confident_share"] < 0.1


def test_reference_split_keeps_the_recorded_reference_and_holds_out_the_rest(mnist_test):
    reference, rest = metrics._reference_split("mnist", 5000)
    recorded, _ = utils.load_mnist("test", n=5000, source="subset", seed=0)
    assert torch.equal(reference, recorded), "the reference of every recorded score must not change"
    assert len(reference) + len(rest) == len(mnist_test[0]) == 10000
    # Disjoint: no held-out image equals a reference image.
    ref_keys = {bytes(img.numpy().tobytes()) for img in reference}
    assert not any(bytes(img.numpy().tobytes()) in ref_keys for img in rest[:2000])


def test_real_image_score_is_the_floor_generated_images_are_read_against(mnist_test):
    floor = [metrics.real_image_score(1000, seed=s) for s in range(3)]
    assert floor[0] == metrics.real_image_score(1000, seed=0), "seeded, so reproducible"
    assert all(0 < f < 10 for f in floor), floor
    assert metrics.real_image_score(4000) < min(floor), "more images, less estimation noise"
    gen = torch.Generator().manual_seed(1)
    noisy = (mnist_test[0][:1000] + 0.3 * torch.randn(1000, 1, 28, 28, generator=gen)).clamp(0, 1)
    assert metrics.fid_score(noisy) > 3 * max(floor)
    with pytest.raises(ValueError):
        metrics.real_image_score(5001)


def test_feature_spread_is_one_for_data_and_low_for_a_collapsed_set(mnist_test):
    x, y = mnist_test
    _, rest = metrics._reference_split("mnist", 5000)
    in_unit_range = metrics.feature_spread(rest)
    assert in_unit_range == pytest.approx(1.0, abs=0.1)
    assert metrics.feature_spread(rest * 2 - 1, value_range="-11") == pytest.approx(in_unit_range)
    ones = x[y == 1][:500]
    assert metrics.feature_spread(ones) < 0.5, "one class only: far less varied than the data"


def test_precision_and_recall_separate_fidelity_from_coverage():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 8))
    same = rng.normal(size=(300, 8))
    assert min(metrics.precision_recall(real, same)) > 0.85  # another sample of the same distribution
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    collapsed = real[:5] + 0.01 * rng.normal(size=(5, 8))  # a few good samples, no variety
    precision, recall = metrics.precision_recall(real, np.repeat(collapsed, 60, axis=0))
    assert precision == 1.0 and recall < 0.1
    scattered = 6 * rng.normal(size=(300, 8))  # varied, but unlike the data
    precision, recall = metrics.precision_recall(real, scattered)
    assert precision < 0.2 and recall > 0.5
