"""Pictures of the series: photo grids, histograms, learning curves, confusion matrices.

Introduced in ``01_data_loading.ipynb`` (photo grids, histograms) and
``05_training_tensorboard.ipynb`` (learning curves, confusion matrix, galleries).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np


def _as_display(image) -> np.ndarray:
    """Float image (0..255, or -1..1 after preprocessing) -> uint8 RGB for imshow."""
    arr = np.asarray(image, dtype="float32")
    if arr.min() < 0:  # MobileNetV2 range [-1, 1]
        arr = (arr + 1.0) * 127.5
    return np.clip(arr, 0, 255).astype("uint8")


def show_images(
    images: Sequence,
    titles: Sequence[str] | None = None,
    *,
    cols: int = 4,
    size: float = 2.6,
    suptitle: str | None = None,
    title_colors: Sequence[str] | None = None,
):
    """Draw photos in a grid with optional per-photo titles.

    Introduced in ``01_data_loading.ipynb``.

    Args:
        images: Images with values 0..255 (or -1..1).
        titles: One title per image.
        cols: Images per row.
        size: Inches per image.
        suptitle: Title of the whole figure.
        title_colors: One colour per title (e.g. green for correct, red for wrong).

    Returns:
        The matplotlib figure.
    """
    n = len(images)
    if n == 0:
        raise ValueError("Nincs megjeleníthető kép (üres lista).")
    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size * 1.08), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(_as_display(images[i]))
        if titles is not None:
            color = title_colors[i] if title_colors is not None else "black"
            ax.set_title(titles[i], fontsize=10, color=color)
    if suptitle:
        fig.suptitle(suptitle, fontsize=13)
    fig.tight_layout()
    return fig


def pixel_histograms(arrays: dict[str, np.ndarray], *, bins: int = 60):
    """Side-by-side histograms of pixel values, one panel per named array.

    Introduced in ``01_data_loading.ipynb`` to compare ``1/255`` scaling with ``preprocess_input``.
    """
    fig, axes = plt.subplots(1, len(arrays), figsize=(4.2 * len(arrays), 3.2), squeeze=False)
    for ax, (name, values) in zip(axes.flat, arrays.items(), strict=True):
        values = np.asarray(values).ravel()
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.85)
        ax.set_title(f"{name}\n[{values.min():.2f}, {values.max():.2f}]", fontsize=10)
        ax.set_xlabel("pixelérték")
        ax.set_ylabel("darab")
    fig.tight_layout()
    return fig


def plot_learning_curves(scalars: dict[str, dict[str, list[float]]], *, title: str | None = None):
    """Plot loss and accuracy per epoch for the training and validation runs.

    Introduced in ``05_training_tensorboard.ipynb``. ``scalars`` is what
    :func:`helpers.training.read_scalars` returns (or a Keras ``History.history`` converted with
    :func:`history_to_scalars`).
    """
    labels = {"train": "tanító", "validation": "validációs"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    panels = [("epoch_loss", "veszteség"), ("epoch_accuracy", "pontosság")]
    for ax, (tag, name) in zip(axes, panels, strict=True):
        for split, tags in scalars.items():
            if tag in tags:
                values = tags[tag]
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, values, marker="o", label=labels.get(split, split))
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def history_to_scalars(history: dict[str, list[float]]) -> dict[str, dict[str, list[float]]]:
    """Convert a Keras ``History.history`` dict into the shape :func:`plot_learning_curves` takes.

    Introduced in ``05_training_tensorboard.ipynb``.
    """
    out: dict[str, dict[str, list[float]]] = {"train": {}, "validation": {}}
    for key, values in history.items():
        split = "validation" if key.startswith("val_") else "train"
        out[split]["epoch_" + key.removeprefix("val_")] = list(values)
    return out


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], *, title: str = "Tévesztési mátrix"
):
    """Draw a 2x2 (or NxN) confusion matrix with counts in the cells.

    Introduced in ``05_training_tensorboard.ipynb``. Rows are true classes, columns predictions.
    """
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(matrix, cmap=plt.colormaps["Blues"])
    for (i, j), value in np.ndenumerate(matrix):
        color = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=14, color=color)
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("jósolt osztály")
    ax.set_ylabel("valódi osztály")
    ax.set_title(title)
    fig.tight_layout()
    return fig
