"""Sample-quality metrics shared by the generative chapters (GAN, DCGAN, DDPM).

A small CNN classifier per dataset, trained by `tools/artifacts/classifiers.py`
with its checkpoint committed under `data/checkpoints/`, supplies two things:
- penultimate-layer features for a Fréchet distance between two image sets,
  an FID-style score (`fid_score`). It is NOT comparable with the Inception
  FID of papers: other network, other features, other data;
- predicted classes for the class coverage of generated samples, which makes
  mode collapse visible.
Two readings of the score go with it: `real_image_score`, the score of real
held-out images (the floor at a given number of images), and `feature_spread`,
how varied the samples' features are compared with the data's.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn
from scipy import linalg

from .datasets import load_fashion_mnist, load_mnist, subset_file, subset_indices

CHECKPOINTS = {
    "mnist": "checkpoints/mnist_classifier.pt",
    "fashion_mnist": "checkpoints/fashion_mnist_classifier.pt",
}
_TEST_LOADERS = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist}


class SmallCNN(nn.Module):
    """28x28 grey images in [0, 1] -> class logits; ``features`` gives the 128-d penultimate layer."""

    def __init__(self, n_classes: int = 10, feature_dim: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 3x3
            nn.Flatten(), nn.Linear(64 * 3 * 3, feature_dim), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(feature_dim, n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def as_unit_images(images: torch.Tensor, value_range: str = "01") -> torch.Tensor:
    """Reshape to (N, 1, 28, 28) and map [-1, 1] images (``value_range="-11"``) to [0, 1]."""
    x = images.detach().float()
    if x.dim() == 2:
        x = x.reshape(len(x), 1, 28, 28)
    elif x.dim() == 3:
        x = x.unsqueeze(1)
    if tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected 28x28 grey images, got shape {tuple(images.shape)}")
    if value_range == "-11":
        x = (x + 1) / 2
    elif value_range != "01":
        raise ValueError("value_range must be '01' or '-11'")
    return x.clamp(0, 1)


@functools.cache
def load_classifier(dataset: str = "mnist") -> SmallCNN:
    """The committed classifier for "mnist" or "fashion_mnist": checksum-verified, CPU, eval mode."""
    if dataset not in CHECKPOINTS:
        raise ValueError(f"no classifier for {dataset!r}; known: {sorted(CHECKPOINTS)}")
    model = SmallCNN()
    state = torch.load(subset_file(CHECKPOINTS[dataset]), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def _batched(fn, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def classifier_features(images: torch.Tensor, dataset: str = "mnist",
                        value_range: str = "01") -> np.ndarray:
    """Penultimate features (N, 128) of the dataset's classifier, as float64."""
    model = load_classifier(dataset)
    x = as_unit_images(images.cpu(), value_range)
    return _batched(model.features, x).double().numpy()


def classifier_probabilities(images: torch.Tensor, dataset: str = "mnist",
                             value_range: str = "01") -> np.ndarray:
    """Class probabilities (N, 10) from the dataset's classifier."""
    model = load_classifier(dataset)
    x = as_unit_images(images.cpu(), value_range)
    return torch.softmax(_batched(model, x), dim=1).double().numpy()


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples).

    d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}); a small ``eps`` on
    the diagonals keeps the square root defined for (near-)singular covariances.
    """
    a, b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError("feature sets must be 2-D with the same number of columns")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each feature set needs at least two samples")
    mu_a, mu_b = a.mean(0), b.mean(0)
    offset = eps * np.eye(a.shape[1])
    cov_a, cov_b = np.cov(a, rowvar=False) + offset, np.cov(b, rowvar=False) + offset
    covmean = linalg.sqrtm(cov_a @ cov_b)
    covmean = np.real(covmean)  # tiny imaginary parts are numerical noise
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * covmean))
    return max(value, 0.0)


def _reference_split(dataset: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The committed test subset as (reference images, the rest).

    The reference is the seeded draw of ``load_*("test", n=n, seed=0)``, so the
    recorded scores keep their meaning; the rest never enters the reference.
    """
    x, _ = _TEST_LOADERS[dataset]("test", source="subset")
    chosen = torch.zeros(len(x), dtype=torch.bool)
    chosen[torch.from_numpy(subset_indices(len(x), n, seed=0))] = True
    return x[chosen], x[~chosen]


@functools.cache
def _reference_features(dataset: str, n: int) -> np.ndarray:
    return classifier_features(_reference_split(dataset, n)[0], dataset)


def fid_score(images: torch.Tensor, dataset: str = "mnist", value_range: str = "01",
              n_reference: int = 5000) -> float:
    """FID-style score of ``images`` against the dataset's test images (lower is better).

    Uses the course classifier's features, not Inception: compare values only
    within this course, at the same number of generated images.
    """
    return frechet_distance(classifier_features(images, dataset, value_range),
                            _reference_features(dataset, n_reference))


def real_image_score(n: int, dataset: str = "mnist", seed: int = 0, n_reference: int = 5000) -> float:
    """``fid_score`` of ``n`` real test images that are not in the reference set.

    The score of a perfect generator is not 0: with ``n`` images the feature
    statistics are estimated with noise, and this is the size of that noise
    (about 4 at n = 1000 on MNIST), the floor to read generated scores against.
    """
    held_out = _reference_split(dataset, n_reference)[1]
    if not 2 <= n <= len(held_out):
        raise ValueError(f"n must be between 2 and {len(held_out)} held-out images")
    pick = torch.from_numpy(np.random.default_rng(seed).choice(len(held_out), size=n, replace=False))
    return fid_score(held_out[pick], dataset, n_reference=n_reference)


def feature_spread(images: torch.Tensor, dataset: str = "mnist", value_range: str = "01",
                   n_reference: int = 5000) -> float:
    """Total variance of the images' classifier features relative to the test images' (1 = as varied).

    Below 1 the samples are less diverse than the data: one of the two parts of
    the Fréchet distance, made readable on its own.
    """
    features = classifier_features(images, dataset, value_range)
    reference = _reference_features(dataset, n_reference)
    return float(np.trace(np.cov(features, rowvar=False)) / np.trace(np.cov(reference, rowvar=False)))


def class_coverage(images: torch.Tensor, dataset: str = "mnist", value_range: str = "01",
                   confidence: float = 0.9) -> dict:
    """How generated images spread over classes, by the dataset's classifier.

    Returns ``histogram`` (share of images predicted as each class), ``min_share``,
    ``classes_present`` (classes with at least 1% of the images) and
    ``confident_share`` (images whose top probability exceeds ``confidence``).
    """
    probs = classifier_probabilities(images, dataset, value_range)
    predicted = probs.argmax(1)
    histogram = np.bincount(predicted, minlength=probs.shape[1]) / len(predicted)
    return {
        "histogram": histogram,
        "min_share": float(histogram.min()),
        "classes_present": int((histogram >= 0.01).sum()),
        "confident_share": float((probs.max(1) > confidence).mean()),
    }


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) of two feature sets (rows are samples).

    Each set's manifold is the union of balls around its points reaching their k-th nearest
    neighbour in the same set. Precision: share of fake points inside the real manifold (are the
    samples like data?). Recall: share of real points inside the fake manifold (is the data's
    variety covered?). Unlike one spread number, the pair separates "scribbles" (spread, low
    precision) from "always the same digit" (precise, low recall).
    """
    real, fake = np.asarray(real_features, dtype=np.float64), np.asarray(fake_features, dtype=np.float64)

    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0))

    def radii(points: np.ndarray) -> np.ndarray:
        return np.sort(distances(points, points), axis=1)[:, k]  # column 0 is the point itself

    precision = (distances(fake, real) <= radii(real)[None]).any(1).mean()
    recall = (distances(real, fake) <= radii(fake)[None]).any(1).mean()
    return float(precision), float(recall)
