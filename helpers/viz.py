"""Pictures of the series: photo grids, histograms, learning curves, confusion matrices, and
what the network sees.

Introduced in ``01_data_loading.ipynb`` (photo grids, histograms),
``05_training_tensorboard.ipynb`` (learning curves, confusion matrix) and
``06_what_the_network_sees.ipynb`` (first-layer filters, activation maps, feature visualisation,
top-activating photos, Grad-CAM overlays). The numbers behind the notebook 06 pictures come from
:mod:`helpers.probes`; the interactive explorers are in :mod:`helpers.widgets`.

Every function returns the matplotlib figure; the notebook shows it with ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch, Rectangle

from helpers import probes

#: ``axes=`` styles of :func:`grid`.
AXES_STYLES = ("off", "bare", "on")


def to_uint8(image) -> np.ndarray:
    """A float photo (0..255, or -1..1 after MobileNetV2 preprocessing) as uint8 RGB for imshow.

    Introduced in ``01_data_loading.ipynb`` (behind :func:`show_images`).
    """
    arr = np.asarray(image, dtype="float32")
    if arr.min() < 0:  # MobileNetV2 range [-1, 1]
        arr = (arr + 1.0) * 127.5
    return np.clip(arr, 0, 255).astype("uint8")


def grid(
    rows: int,
    cols: int,
    size: float | tuple[float, float] = 2.0,
    *,
    axes: str = "off",
    title: str | None = None,
    title_size: float = 12,
    **subplots_kw,
):
    """A figure with a ``rows`` x ``cols`` grid of panels; every figure of the series starts here.

    Introduced in ``01_data_loading.ipynb`` (behind :func:`show_images`). Matplotlib's constrained
    layout places the panels when the figure is drawn, so titles set later (two-line panel titles
    and the figure title too) still fit without overlapping the pictures.

    Args:
        rows: Number of panel rows.
        cols: Number of panel columns.
        size: Inches per panel: one number (square panels) or ``(width, height)``.
        axes: ``"off"`` for pictures (no frame, no ticks), ``"bare"`` for pictures with row labels
            (no frame or ticks, but ``set_ylabel`` still shows), ``"on"`` for charts.
        title: Title of the whole figure.
        title_size: Font size of ``title``.
        **subplots_kw: Passed on to ``plt.subplots`` (e.g. ``gridspec_kw``).

    Returns:
        ``(fig, axes)`` where ``axes`` is always a 2-D array (``axes[row, col]``).
    """
    for value, name in ((rows, "sorok"), (cols, "oszlopok")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"A(z) {name} száma pozitív egész legyen, nem {value!r}.")
    if axes not in AXES_STYLES:
        raise ValueError(f"axes: {', '.join(map(repr, AXES_STYLES))} lehet, nem {axes!r}.")
    width, height = (size, size) if np.ndim(size) == 0 else size
    figsize = (cols * width, rows * height)
    fig, grid_axes = plt.subplots(
        rows, cols, figsize=figsize, squeeze=False, layout="constrained", **subplots_kw
    )
    for ax in grid_axes.flat:
        if axes == "off":
            ax.axis("off")
        elif axes == "bare":
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=title_size)
    return fig, grid_axes


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
    fig, axes = grid(rows, cols, (size, size * 1.2), title=suptitle, title_size=13)
    for i, ax in enumerate(axes.flat[:n]):
        ax.imshow(to_uint8(images[i]))
        if titles is not None:
            color = title_colors[i] if title_colors is not None else "black"
            ax.set_title(titles[i], fontsize=10, color=color)
    return fig


def pixel_histograms(arrays: dict[str, np.ndarray], *, bins: int = 60):
    """Side-by-side histograms of pixel values, one panel per named array.

    Introduced in ``01_data_loading.ipynb`` to compare ``1/255`` scaling with ``preprocess_input``.
    """
    fig, axes = grid(1, len(arrays), (4.2, 3.2), axes="on")
    for ax, (name, values) in zip(axes.flat, arrays.items(), strict=True):
        values = np.asarray(values).ravel()
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.85)
        ax.set_title(f"{name}\n[{values.min():.2f}, {values.max():.2f}]", fontsize=10)
        ax.set_xlabel("pixelérték")
        ax.set_ylabel("darab")
    return fig


#: Labels of the two training phases in :func:`plot_learning_curves`.
PHASE_LABELS = ("1. fázis: csak a fej", "2. fázis: finomhangolás")


def plot_learning_curves(
    scalars: dict[str, dict[str, list[float]]],
    *,
    title: str | None = None,
    boundary: int | None = None,
):
    """Plot loss and accuracy per epoch for the training and validation runs.

    Introduced in ``05_training_tensorboard.ipynb``. ``scalars`` is what
    :func:`helpers.training.read_scalars` returns.

    Args:
        scalars: ``{"train": {"epoch_loss": [...], "epoch_accuracy": [...]}, "validation": ...}``.
        title: Title of the whole figure.
        boundary: Epochs of the first phase of a two-phase training (the head alone). A dashed
            vertical line after that epoch separates the phases, the second phase is shaded, and
            the legend names them (:data:`PHASE_LABELS`). ``None``: one phase.

    Raises:
        ValueError: ``boundary`` is not a whole number that leaves epochs on both sides.
    """
    n_epochs = max((len(v) for tags in scalars.values() for v in tags.values()), default=0)
    if boundary is not None and (
        isinstance(boundary, bool)
        or not isinstance(boundary, (int, np.integer))
        or not 1 <= boundary < n_epochs
    ):
        raise ValueError(
            f"A boundary az 1. fázis epochjainak száma: egész szám 1 és {n_epochs - 1} között "
            f"(mindkét fázisban legyen epoch), nem {boundary!r}."
        )
    labels = {"train": "tanító", "validation": "validációs"}
    fig, axes = grid(1, 2, (5.0, 3.6), axes="on", title=title)
    panels = [("epoch_loss", "veszteség"), ("epoch_accuracy", "pontosság")]
    for ax, (tag, name) in zip(axes[0], panels, strict=True):
        for split, tags in scalars.items():
            if tag in tags:
                values = tags[tag]
                ax.plot(
                    range(1, len(values) + 1), values, marker="o", label=labels.get(split, split)
                )
        handles, _ = ax.get_legend_handles_labels()
        if boundary is not None:
            ax.axvline(boundary + 0.5, color="0.3", linestyle="--", linewidth=1.5)
            ax.axvspan(boundary + 0.5, n_epochs + 0.5, color="tab:orange", alpha=0.15, lw=0)
            ax.set_xlim(0.5, n_epochs + 0.5)
            handles += [
                Patch(facecolor="white", edgecolor="0.5", label=PHASE_LABELS[0]),
                Patch(facecolor="tab:orange", alpha=0.3, label=PHASE_LABELS[1]),
            ]
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(handles=handles)
    return fig


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], *, title: str = "Tévesztési mátrix"
):
    """Draw a 2x2 (or NxN) confusion matrix with counts in the cells.

    Introduced in ``05_training_tensorboard.ipynb``. Rows are true classes, columns predictions.
    """
    matrix = np.asarray(matrix)
    fig, axes = grid(1, 1, (3.8, 3.4), axes="on")
    ax = axes[0, 0]
    ax.imshow(matrix, cmap=plt.colormaps["Blues"])
    for (i, j), value in np.ndenumerate(matrix):
        color = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=14, color=color)
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("jósolt osztály")
    ax.set_ylabel("valódi osztály")
    ax.set_title(title)
    return fig


# --------------------------------------------------------------------------------------------
# What the network sees (notebook 06)
# --------------------------------------------------------------------------------------------


def plot_first_layer_filters(kernel: np.ndarray, *, title: str | None = None, cols: int = 8):
    """Draw the kernels of a first convolution layer (``kh, kw, 3, n``) as small colour patches.

    Introduced in ``06_what_the_network_sees.ipynb``. Every filter is scaled on its own,
    symmetrically: grey means weight 0, a bright/saturated colour a large positive weight on that
    colour channel, a dark/complementary colour a large negative weight. Dead filters (see
    :func:`helpers.probes.dead_filters`) are drawn plain grey with ``(0)`` in their title.
    """
    kernel = np.asarray(kernel, dtype="float32")
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        raise ValueError(
            f"Egy RGB-bemenetű réteg kernelét várom (kh, kw, 3, n), nem {kernel.shape}"
        )
    n = kernel.shape[-1]
    dead = set(probes.dead_filters(kernel).tolist())
    fig, axes = grid(int(np.ceil(n / cols)), cols, (1.1, 1.25), title=title)
    for i, ax in enumerate(axes.flat[:n]):
        w = kernel[..., i]
        patch = 0.5 + w / (2.0 * np.abs(w).max() + 1e-12)
        if i in dead:  # (nearly) all-zero filter: draw it plain grey instead of magnifying noise
            patch = np.full_like(w, 0.5)
        ax.imshow(np.clip(patch, 0, 1), interpolation="nearest")
        ax.set_title(
            f"#{i} (0)" if i in dead else f"#{i}", fontsize=8, color="0.5" if i in dead else "black"
        )
    return fig


def plot_feature_maps(
    maps: np.ndarray,
    channels: Sequence[int] | None = None,
    *,
    n: int = 16,
    cols: int = 8,
    title: str | None = None,
    size: float = 1.35,
    cmap: str = "viridis",
):
    """Draw the activation maps of one photo (``h, w, channels``) as a grid, one panel per channel.

    Introduced in ``06_what_the_network_sees.ipynb``. Without ``channels`` the ``n`` most active
    channels (:func:`helpers.probes.most_active_channels`) are shown. Each panel has its own colour
    scale (dark = 0).
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"Egy kép aktivációit várom (h, w, csatornák), nem {maps.shape}")
    channels = list(probes.most_active_channels(maps, n) if channels is None else channels)
    cols = max(1, min(cols, len(channels)))
    rows = int(np.ceil(len(channels) / cols))
    fig, axes = grid(rows, cols, (size, size * 1.15), title=title, title_size=11)
    colormap = plt.colormaps[cmap]
    for ax, channel in zip(axes.flat, channels, strict=False):
        ax.imshow(maps[..., int(channel)], cmap=colormap, vmin=0, interpolation="nearest")
        ax.set_title(f"#{int(channel)}", fontsize=8)
    return fig


def stretch_contrast(images: np.ndarray, *, spread: float = 0.15, crop: float = 0.06) -> np.ndarray:
    """Make synthetic images readable: per-image standardisation, clipping, a thin border crop.

    Introduced in ``06_what_the_network_sees.ipynb`` (the ``deprocess_image`` step of keras.io),
    for the images of :func:`helpers.probes.gradient_ascent`.

    Returns:
        Float images with values 0..1.
    """
    out = []
    for img in np.asarray(images, dtype="float32"):
        img = (img - img.mean()) / (img.std() + 1e-5) * spread + 0.5
        b = int(round(img.shape[0] * crop))
        out.append(np.clip(img[b : img.shape[0] - b, b : img.shape[1] - b], 0, 1))
    return np.stack(out)


def plot_feature_visualisations(
    rows: dict[str, tuple[np.ndarray, Sequence[int]]],
    *,
    title: str | None = None,
    size: float = 1.7,
):
    """Grid of synthetic images: one row per layer (shallow to deep), one column per channel.

    Introduced in ``06_what_the_network_sees.ipynb``.

    Args:
        rows: Layer name -> ``(images, channels)`` from :func:`helpers.probes.gradient_ascent`.
        title: Figure title.
        size: Inches per panel.
    """
    cols = max(len(ch) for _, ch in rows.values())
    fig, axes = grid(len(rows), cols, (size, size * 1.12), axes="bare", title=title)
    for r, (layer, (images, channels)) in enumerate(rows.items()):
        shown = stretch_contrast(images)
        for c, ax in enumerate(axes[r]):
            if c >= len(channels):
                continue
            ax.imshow(shown[c])
            ax.set_title(f"#{int(channels[c])}", fontsize=8)
            if c == 0:
                ax.set_ylabel(layer, fontsize=9)
    return fig


def plot_top_activating(
    photos,
    hits: dict[int, list[tuple[int, int, int, float]]],
    map_size: tuple[int, int],
    *,
    box: int = 80,
    labels: Sequence[str] | None = None,
    visualisations: np.ndarray | None = None,
    title: str | None = None,
    size: float = 1.55,
):
    """For each channel: its top photos with the strongest region framed, and the crops.

    Introduced in ``06_what_the_network_sees.ipynb``. Two rows per channel: the whole photos with
    a red frame around the most active cell's region (:func:`helpers.probes.receptive_box`), then
    that region enlarged. With ``visualisations`` (one synthetic image per channel, from
    :func:`helpers.probes.gradient_ascent`) the first column shows what the channel "wants to see".

    Args:
        photos: Photo index -> image (0..255); a dict or an array indexed by photo index.
        hits: Channel -> ``(photo index, row, column, value)`` list, as
            :meth:`helpers.probes.ChannelScan.top` returns.
        map_size: ``(h, w)`` of the activation map.
        box: Side of the framed region in pixels.
        labels: Caption per photo index (e.g. the class name).
        visualisations: One synthetic image per channel, in the order of ``hits``.
        title: Figure title.
        size: Inches per panel.
    """
    extra = 1 if visualisations is not None else 0
    shown = stretch_contrast(visualisations) if visualisations is not None else None
    cols = max(len(h) for h in hits.values()) + extra
    fig, axes = grid(2 * len(hits), cols, (size, size * 1.05), title=title)
    for r, (channel, top) in enumerate(hits.items()):
        photo_row, crop_row = axes[2 * r], axes[2 * r + 1]
        if shown is not None:
            photo_row[0].imshow(shown[r])
            photo_row[0].set_title(f"#{int(channel)} „ideálja”", fontsize=8)
            crop_row[0].text(
                0.5,
                0.5,
                f"csatorna #{int(channel)}\nkivágások →",
                ha="center",
                va="center",
                fontsize=9,
                transform=crop_row[0].transAxes,
            )
        for j, (idx, row, col, value) in enumerate(top):
            image = np.asarray(photos[idx])
            y0, x0, y1, x1 = probes.receptive_box(row, col, map_size, image.shape[0], box)
            ax = photo_row[extra + j]
            ax.imshow(to_uint8(image))
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="red", lw=1.8))
            name = f"{labels[idx]}, " if labels is not None else ""
            ax.set_title(f"{name}max {value:.1f}", fontsize=8)
            crop_row[extra + j].imshow(to_uint8(image[y0:y1, x0:x1]))
    return fig


def overlay_heatmap(image, cam: np.ndarray, *, alpha: float = 0.45, cmap: str = "jet"):
    """Blend a [0, 1] heat map over a 0..255 photo; returns an RGB float image in [0, 1].

    Introduced in ``06_what_the_network_sees.ipynb``.
    """
    photo = to_uint8(image).astype("float32") / 255.0
    heat = plt.colormaps[cmap](np.clip(cam, 0, 1))[..., :3]
    if heat.shape != photo.shape:
        raise ValueError(
            f"A hőtérkép {np.shape(cam)} és a fotó {photo.shape[:2]} mérete eltér: a térképet "
            "a fotó méretére kell nagyítani (grad_cam(..., size=...))."
        )
    return np.clip((1 - alpha) * photo + alpha * heat, 0.0, 1.0)


def plot_grad_cam(
    images: np.ndarray,
    dog_maps: np.ndarray,
    cat_maps: np.ndarray,
    titles: Sequence[str],
    *,
    title_colors: Sequence[str] | None = None,
    suptitle: str | None = None,
    size: float = 2.0,
    cmap: str = "jet",
):
    """Photos (top row) with their "dog" (middle) and "cat" (bottom) Grad-CAM overlays.

    Introduced in ``06_what_the_network_sees.ipynb``; the maps come from
    :func:`helpers.probes.grad_cam` with ``sign=+1`` and ``sign=-1``.
    """
    n = len(images)
    if n == 0:
        raise ValueError("Nincs megjeleníthető kép (üres lista).")
    fig, axes = grid(3, n, (size, size * 1.08), axes="bare", title=suptitle)
    for j in range(n):
        color = title_colors[j] if title_colors is not None else "black"
        axes[0, j].imshow(to_uint8(images[j]))
        axes[0, j].set_title(titles[j], fontsize=9, color=color)
        axes[1, j].imshow(overlay_heatmap(images[j], dog_maps[j], cmap=cmap))
        axes[2, j].imshow(overlay_heatmap(images[j], cat_maps[j], cmap=cmap))
    axes[0, 0].set_ylabel("fotó")
    axes[1, 0].set_ylabel("„kutya” térkép")
    axes[2, 0].set_ylabel("„macska” térkép")
    return fig
