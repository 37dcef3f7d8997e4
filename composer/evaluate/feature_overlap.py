"""MGEval-style comparison of feature distributions (Yang & Lerch, 2018).

For one feature, the distances between real pieces (intra-set) describe how varied the
real music is; the distances from each candidate piece to each real piece (inter-set)
describe how far the candidates sit from it. When candidates are drawn from the same
distribution as the real pieces, the two distance distributions coincide, so their
overlap area (1 = identical) measures fidelity without needing a model of the music.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID_POINTS = 512


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of (N, D) ``a`` and (M, D) ``b``: (N*M,)."""
    diff = a[:, None, :] - b[None, :, :]  # (N, M, D)
    return np.sqrt((diff ** 2).sum(axis=2)).ravel()


def intra_distances(a: np.ndarray) -> np.ndarray:
    """Distances between distinct rows of (N, D) ``a``: (N*(N-1)/2,)."""
    upper = np.triu_indices(len(a), k=1)
    diff = a[upper[0]] - a[upper[1]]  # (K, D)
    return np.sqrt((diff ** 2).sum(axis=1))


def _bandwidth(values: np.ndarray) -> float:
    """Scott's rule, with a floor so that a set of identical values is a narrow bump."""
    spread = float(values.std()) if values.size > 1 else 0.0
    return max(spread * values.size ** (-1 / 5), 1e-3 * (float(np.abs(values).max()) + 1e-3))


def density(values: np.ndarray, grid: np.ndarray, width: float) -> np.ndarray:
    """Gaussian kernel density of ``values`` on ``grid``, normalised to integrate to 1."""
    z = (grid[:, None] - values[None, :]) / width  # (G, K)
    curve = np.exp(-0.5 * z * z).sum(axis=1)
    area = np.trapezoid(curve, grid)
    return curve / area if area > 0 else curve


def _densities(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both densities on one grid with one bandwidth (from the pooled values).

    A shared bandwidth keeps a degenerate set (every real folk song is monophonic, so all
    its polyphony distances are 0) from becoming a spike that nothing else can overlap.
    """
    width = _bandwidth(np.concatenate([x, y]))
    grid = np.linspace(min(x.min(), y.min()) - 3 * width, max(x.max(), y.max()) + 3 * width, GRID_POINTS)
    return grid, density(x, grid, width), density(y, grid, width)


def overlap_area(x: np.ndarray, y: np.ndarray) -> float:
    """Area shared by the smoothed densities of two samples, in [0, 1]."""
    if x.size == 0 or y.size == 0:
        return float("nan")
    grid, p, q = _densities(x, y)
    return float(np.clip(np.trapezoid(np.minimum(p, q), grid), 0.0, 1.0))


def kl_divergence(p_values: np.ndarray, q_values: np.ndarray) -> float:
    """KL(P ‖ Q) of the smoothed densities, in nats."""
    if p_values.size == 0 or q_values.size == 0:
        return float("nan")
    grid, p, q = _densities(p_values, q_values)
    tiny = 1e-12
    return float(max(0.0, np.trapezoid(p * np.log((p + tiny) / (q + tiny)), grid)))


@dataclass(frozen=True)
class Overlap:
    overlap: float  # overlap area of inter-set vs real intra-set distances, 1 = indistinguishable
    kl: float  # KL(real intra ‖ inter), 0 = indistinguishable


def feature_overlap(real: np.ndarray, candidate: np.ndarray) -> Overlap:
    """How closely (M, D) candidate features follow the distribution of (N, D) real ones."""
    if len(real) < 2 or len(candidate) == 0:
        return Overlap(float("nan"), float("nan"))
    intra = intra_distances(real)
    inter = pairwise_distances(candidate, real)
    return Overlap(overlap_area(intra, inter), kl_divergence(intra, inter))


__all__ = ["Overlap", "density", "feature_overlap", "intra_distances", "kl_divergence", "overlap_area",
           "pairwise_distances"]
