"""An independent judge of style: softmax regression on note features.

It is deliberately simple and separate from the music model (numpy only, features from
``composer.evaluate.note_features``), so that "the classifier thinks this sounds like Bach" is a
statement about the notes, not about the model grading its own tokens. Classes are
weighted by the inverse of their size: the corpus has 7,000 German folk songs and 50
Haydn excerpts, and an unweighted judge would call everything a folk song.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassifierSettings:
    steps: int = 800  # full-batch Adam steps
    learning_rate: float = 0.05
    l2: float = 1e-3  # weight decay on the (standardised) feature weights
    seed: int = 0


@dataclass(frozen=True)
class StyleClassifier:
    styles: tuple[str, ...]
    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    weights: np.ndarray  # (D, C)
    bias: np.ndarray  # (C,)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features → (N, C) class probabilities."""
        logits = ((features - self.mean) / self.scale) @ self.weights + self.bias  # (N, C)
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> list[str]:
        if len(features) == 0:
            return []
        return [self.styles[i] for i in self.probabilities(features).argmax(axis=1)]


def train_style_classifier(features: np.ndarray, labels: Sequence[str],
                           settings: ClassifierSettings | None = None) -> StyleClassifier:
    """Fit on (N, D) features with one style label per row."""
    settings = settings or ClassifierSettings()
    styles = tuple(sorted(set(labels)))
    if len(styles) < 2:
        raise ValueError("a style classifier needs at least two styles")
    index = {s: i for i, s in enumerate(styles)}
    y = np.array([index[s] for s in labels])  # (N,)
    counts = np.bincount(y, minlength=len(styles))
    sample_weight = (len(y) / (len(styles) * counts))[y]  # (N,) balanced classes
    sample_weight /= sample_weight.sum()
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale < 1e-9] = 1.0
    x = (features - mean) / scale  # (N, D)
    onehot = np.eye(len(styles))[y]  # (N, C)
    rng = np.random.default_rng(settings.seed)
    params = [rng.normal(0, 0.01, (x.shape[1], len(styles))), np.zeros(len(styles))]
    moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
    beta1, beta2 = 0.9, 0.999
    for step in range(1, settings.steps + 1):
        logits = x @ params[0] + params[1]  # (N, C)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        error = (probs - onehot) * sample_weight[:, None]  # (N, C)
        grads = [x.T @ error + settings.l2 * params[0], error.sum(axis=0)]
        for param, grad, (m, v) in zip(params, grads, moments, strict=True):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            m_hat = m / (1 - beta1 ** step)
            v_hat = v / (1 - beta2 ** step)
            param -= settings.learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)
    return StyleClassifier(styles, mean, scale, params[0], params[1])


def confusion_matrix(true: Sequence[str], predicted: Sequence[str], styles: Sequence[str]) -> np.ndarray:
    """(C, C) counts: row = the true style, column = the style the judge chose."""
    index = {s: i for i, s in enumerate(styles)}
    matrix = np.zeros((len(styles), len(styles)), dtype=np.int64)
    for t, p in zip(true, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    return matrix


def accuracy(matrix: np.ndarray) -> float:
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else float("nan")


def wilson_interval(hits: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share ``hits / trials`` (95 % at the default ``z``).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or 1 hits,
    which matters for per-style shares judged from a few dozen pieces.
    """
    if trials <= 0:
        raise ValueError("an interval needs at least one trial")
    share = hits / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def balanced_accuracy(matrix: np.ndarray) -> float:
    """Mean of per-style recall over the styles that have examples."""
    rows = matrix.sum(axis=1)
    present = rows > 0
    return float(np.mean(np.diag(matrix)[present] / rows[present])) if present.any() else float("nan")


__all__ = ["ClassifierSettings", "StyleClassifier", "accuracy", "balanced_accuracy", "confusion_matrix",
           "train_style_classifier", "wilson_interval"]
