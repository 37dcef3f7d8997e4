"""The evaluation's pictures: confusion matrices, pitch-class profiles, piano rolls.

matplotlib draws (with the non-interactive Agg backend, so no display is needed);
pretty_midi turns samples into piano rolls.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from composer.io.outputs import write_atomic

if TYPE_CHECKING:
    from composer.evaluate.samples import Sample

DEGREES = ("1", "b2", "2", "b3", "3", "4", "#4", "5", "b6", "6", "b7", "7")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    write_atomic(path, buffer.getvalue())
    return path.name


def confusion_plot(path: Path, matrix: np.ndarray, styles: list[str], title: str) -> str:
    plt = _pyplot()
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    figure, axes = plt.subplots(figsize=(7, 6))
    axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            axes.text(j, i, str(count), ha="center", va="center",
                      color="white" if share[i, j] > 0.5 else "black", fontsize=8)
    axes.set_xticks(range(len(styles)), styles, rotation=45, ha="right")
    axes.set_yticks(range(len(styles)), styles)
    axes.set_xlabel("judged as")
    axes.set_ylabel("asked for" if "generated" in title else "true style")
    axes.set_title(title)
    return _save(figure, path)


def pitch_class_plot(path: Path, profiles: dict[str, dict[str, list[float]]]) -> str:
    plt = _pyplot()
    styles = list(profiles)
    columns = min(5, max(1, len(styles)))
    rows = (len(styles) + columns - 1) // columns
    figure, grid = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    x = np.arange(12)
    for axes, style in zip(grid.ravel(), styles, strict=False):
        axes.bar(x - 0.2, profiles[style]["real"], width=0.4, label="real")
        axes.bar(x + 0.2, profiles[style]["generated"], width=0.4, label="generated")
        axes.set_title(style, fontsize=10)
        axes.set_xticks(x, DEGREES, fontsize=7)
    for axes in grid.ravel()[len(styles):]:
        axes.axis("off")
    grid.ravel()[0].legend(fontsize=7)
    figure.suptitle("Pitch classes from the tonic: real vs generated")
    figure.tight_layout()
    return _save(figure, path)


def piano_roll_plot(path: Path, samples: list[Sample]) -> str:
    import pretty_midi

    plt = _pyplot()
    figure, grid = plt.subplots(len(samples), 1, figsize=(10, 2.2 * len(samples)), squeeze=False)
    for axes, sample in zip(grid.ravel(), samples, strict=True):
        midi = pretty_midi.PrettyMIDI(io.BytesIO(sample.score.dumps_midi()))
        roll = midi.get_piano_roll(fs=8)  # (128, frames)
        pitched = np.nonzero(roll.sum(axis=1))[0]
        low, high = (int(pitched.min()) - 2, int(pitched.max()) + 3) if pitched.size else (48, 84)
        axes.imshow(roll[low:high] > 0, aspect="auto", origin="lower", cmap="Greys",
                    extent=(0, roll.shape[1] / 8, low, high), interpolation="nearest")
        axes.set_title(f"{sample.style} sample {sample.number}", fontsize=10)
        axes.set_ylabel("pitch")
    grid.ravel()[-1].set_xlabel("seconds")
    figure.tight_layout()
    return _save(figure, path)


def write_plots(out_dir: Path, report: dict[str, Any], profiles: dict[str, dict[str, list[float]]],
                samples: list[Sample]) -> list[str]:
    """Draw every plot into ``out_dir``; returns the file names."""
    judged = report["style_accuracy"]
    styles = judged["styles"]
    written = [
        confusion_plot(out_dir / "confusion_generated.png",
                       np.array(judged["generated"]["confusion"]), styles, "Style judge on generated music"),
        confusion_plot(out_dir / "confusion_real_test.png",
                       np.array(judged["ceiling_real_test"]["confusion"]), styles,
                       "Style judge on real test pieces (ceiling)"),
        pitch_class_plot(out_dir / "pitch_classes.png", profiles),
    ]
    if samples:
        written.append(piano_roll_plot(out_dir / "piano_rolls.png", samples))
    return written


__all__ = ["confusion_plot", "piano_roll_plot", "pitch_class_plot", "write_plots"]
