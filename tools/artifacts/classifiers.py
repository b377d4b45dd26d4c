"""Train the small CNN classifiers behind utils.metrics and commit their checkpoints.

    python -m tools.artifacts.classifiers [--epochs 3] [--datasets mnist fashion_mnist]

Uses the full training sets when they are in data/cache/ (after `make data`),
else the committed subsets, and says which. Writes
data/checkpoints/<dataset>_classifier.pt (state dict, under 1 MB each),
registers its checksum, and records the test accuracy on the committed test
sets and how it was trained in results/classifiers.json.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import utils
from tools import records
from tools.artifacts import checksums
from tools.course import ROOT
from utils.metrics import CHECKPOINTS, SmallCNN

LOADERS = {"mnist": utils.load_mnist, "fashion_mnist": utils.load_fashion_mnist}


def accuracy(model: SmallCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).float().mean())


def outliers(real: torch.Tensor, n: int) -> torch.Tensor:
    """Images that are no digit (or garment): uniform noise, grey fields, pixel-shuffled real images.

    Trained towards a uniform class distribution ("outlier exposure",
    Hendrycks et al. 2019), so that the classifier is not confident on noise:
    its confidence can then tell a trained generator from an untrained one.
    """
    kinds = torch.randint(0, 3, (n,))
    noise = torch.rand(n, 1, 28, 28)
    grey = (torch.rand(n, 1, 1, 1) + 0.1 * torch.randn(n, 1, 28, 28)).clamp(0, 1)
    picks = real[torch.randint(0, len(real), (n,))].reshape(n, -1)
    shuffled = picks[:, torch.randperm(784)].reshape(n, 1, 28, 28)
    choice = kinds.view(n, 1, 1, 1)
    return torch.where(choice == 0, noise, torch.where(choice == 1, grey, shuffled))


def train(dataset: str, epochs: int, seed: int = 0) -> dict:
    utils.seed_everything(seed)
    x_train, y_train = LOADERS[dataset]("train", source="auto")
    x_test, y_test = LOADERS[dataset]("test", source="subset")
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=3e-3, total_steps=epochs * ((len(x_train) + 127) // 128))
    loader = utils.make_loader(x_train, y_train, batch_size=128, seed=seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for xb, yb in loader:
            # Small random shifts (up to 2 pixels) make the classifier less brittle on generated digits.
            dx, dy = torch.randint(-2, 3, (2,)).tolist()
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            # Cross-entropy to the uniform distribution on a quarter-batch of outliers.
            uniform = -F.log_softmax(model(outliers(xb, len(xb) // 4)), dim=1).mean()
            loss = F.cross_entropy(model(xb), yb) + 0.5 * uniform
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        print(f"{dataset}: epoch {epoch + 1}/{epochs}, test accuracy {accuracy(model, x_test, y_test):.4f}")
    acc = accuracy(model, x_test, y_test)
    path = ROOT / "data" / CHECKPOINTS[dataset]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return {"path": CHECKPOINTS[dataset], "test_accuracy": round(acc, 4), "n_train": len(x_train),
            "n_test": len(x_test), "epochs": epochs, "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--datasets", nargs="*", default=list(LOADERS))
    args = parser.parse_args()
    for dataset in args.datasets:
        info = train(dataset, args.epochs)
        checksums.register({info.pop("path"): {}})
        records.update("classifiers", dataset, {**info, **records.provenance(
            f"python -m tools.artifacts.classifiers --epochs {args.epochs}")})
        print(f"{dataset}: test accuracy {info['test_accuracy']:.4f} on {info['n_test']} test images, "
              f"trained on {info['n_train']} for {info['epochs']} epochs in {info['seconds']} s")
    print("run `make release` to update docs/results.md")


if __name__ == "__main__":
    main()
