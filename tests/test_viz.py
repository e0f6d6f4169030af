"""Tests of the pictures (helpers.viz): every figure is drawn from generated arrays.

The numbers behind the notebook 06 pictures are tested in ``test_probes.py`` (on the real
weights), the explorers in ``test_widgets.py``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers import viz


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _photos(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_grid_gives_2d_axes_in_three_styles():
    fig, axes = viz.grid(1, 1, (3.0, 2.0), title="cím")
    assert axes.shape == (1, 1) and tuple(fig.get_size_inches()) == (3.0, 2.0)
    assert not axes[0, 0].axison and fig.get_suptitle() == "cím"
    assert fig.get_layout_engine() is not None  # tightened at draw time, no tight_layout call
    fig, axes = viz.grid(2, 3, 1.5, axes="bare")
    assert axes.shape == (2, 3) and tuple(fig.get_size_inches()) == (4.5, 3.0)
    bare = axes[1, 2]
    assert bare.axison and not bare.get_xticks().size and not bare.spines["left"].get_visible()
    _, axes = viz.grid(1, 2, axes="on", gridspec_kw={"width_ratios": [1, 2]})
    assert axes[0, 1].axison and axes[0, 1].spines["left"].get_visible()
    with pytest.raises(ValueError, match="pozitív egész"):
        viz.grid(0, 2)
    with pytest.raises(ValueError, match="axes:"):
        viz.grid(1, 1, axes="none")


def test_the_series_plots_keep_their_signatures():
    fig = viz.show_images(
        _photos(5, 16),
        [f"#{i}" for i in range(5)],
        cols=3,
        size=1.0,
        suptitle="fotók",
        title_colors=["red"] * 5,
    )
    assert len(fig.axes) == 6 and sum(ax.has_data() for ax in fig.axes) == 5
    assert fig.axes[0].get_title() == "#0" and fig.get_suptitle() == "fotók"
    with pytest.raises(ValueError, match="üres lista"):
        viz.show_images([])
    hist = viz.pixel_histograms({"1/255": _photos(1, 8) / 255, "preprocess": _photos(1, 8) / 127.5})
    assert [ax.get_xlabel() for ax in hist.axes] == ["pixelérték", "pixelérték"]
    scalars = {
        "train": {"epoch_loss": [0.6, 0.4], "epoch_accuracy": [0.7, 0.8]},
        "validation": {"epoch_loss": [0.5, 0.45], "epoch_accuracy": [0.75, 0.8]},
    }
    curves = viz.plot_learning_curves(scalars, title="görbék")
    assert [ax.get_title() for ax in curves.axes] == ["veszteség", "pontosság"]
    assert [len(ax.lines) for ax in curves.axes] == [2, 2]
    confusion = viz.plot_confusion(np.array([[5, 1], [2, 7]]), ["macska", "kutya"])
    assert [t.get_text() for t in confusion.axes[0].texts] == ["5", "1", "2", "7"]


def test_learning_curves_mark_the_phase_boundary():
    scalars = {
        split: {
            "epoch_loss": [0.6, 0.4, 0.3, 0.2, 0.1],
            "epoch_accuracy": [0.6, 0.7, 0.8, 0.9, 0.95],
        }
        for split in ("train", "validation")
    }
    assert viz.PHASE_LABELS == ("1. fázis: csak a fej", "2. fázis: finomhangolás")
    fig = viz.plot_learning_curves(scalars, title="két fázis", boundary=3)
    for ax in fig.axes:
        legend = [text.get_text() for text in ax.get_legend().get_texts()]
        assert legend == ["tanító", "validációs", *viz.PHASE_LABELS]
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [3.5, 3.5]
        assert ax.get_xlim() == (0.5, 5.5)
    plain = viz.plot_learning_curves(scalars)
    for ax in plain.axes:
        assert len(ax.lines) == 2 and len(ax.get_legend().get_texts()) == 2
    for bad in (0, 5, 2.5, True, "3"):
        with pytest.raises(ValueError, match="boundary"):
            viz.plot_learning_curves(scalars, boundary=bad)


def test_to_uint8_and_overlay():
    assert viz.to_uint8(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 127, 255]
    assert viz.to_uint8(np.array([0.0, 300.0])).tolist() == [0, 255]
    cam = np.linspace(0, 1, 100).reshape(10, 10)
    blended = viz.overlay_heatmap(_photos(1, 10)[0], cam)
    assert blended.shape == (10, 10, 3) and 0 <= blended.min() and blended.max() <= 1
    with pytest.raises(ValueError, match="méretére kell nagyítani"):
        viz.overlay_heatmap(_photos(1, 20)[0], cam)


def test_notebook_06_pictures():
    kernel = np.random.default_rng(0).normal(0, 1, (3, 3, 3, 10)).astype("float32")
    kernel[..., 4] = 0.0
    filters = viz.plot_first_layer_filters(kernel, title="szűrők", cols=4)
    assert len(filters.axes) == 12 and filters.axes[4].get_title() == "#4 (0)"  # dead filter
    with pytest.raises(ValueError, match="kh, kw, 3, n"):
        viz.plot_first_layer_filters(kernel[:, :, :2])
    maps = _photos(1, 8)[0] / 255.0
    assert len(viz.plot_feature_maps(maps, n=3, cols=3).axes) == 3
    assert [ax.get_title() for ax in viz.plot_feature_maps(maps, [2, 0]).axes] == ["#2", "#0"]
    vis = {"a": (_photos(2, 16), [0, 1]), "b": (_photos(1, 16), [5])}
    vis_fig = viz.plot_feature_visualisations(vis)
    assert len(vis_fig.axes) == 4 and vis_fig.axes[2].get_ylabel() == "b"
    shown = viz.stretch_contrast(_photos(2, 50))
    assert shown.shape == (2, 44, 44, 3) and shown.min() >= 0 and shown.max() <= 1
    hits = {0: [(2, 1, 1, 3.0), (0, 3, 0, 2.0)], 1: [(1, 0, 3, 1.0), (2, 2, 2, 0.5)]}
    photos = _photos(3, 32)
    fig = viz.plot_top_activating(photos, hits, (4, 4), box=16, visualisations=_photos(2, 16))
    assert len(fig.axes) == 12 and len(fig.axes[1].patches) == 1  # the red frame
    cams = np.random.default_rng(1).uniform(0, 1, (2, 32, 32))
    cam_fig = viz.plot_grad_cam(_photos(2, 32), cams, cams, ["a", "b"])
    assert len(cam_fig.axes) == 6 and cam_fig.axes[2].get_ylabel() == "„kutya” térkép"


def test_viz_keeps_only_the_pictures():
    """The numbers moved to helpers.probes, the explorers to helpers.widgets; dead code is gone."""
    for name in (
        "grad_cam",
        "activation_model",
        "ChannelScan",
        "channel_explorer",
        "history_to_scalars",
        "top_activating",
        "PROBE_LAYERS",
    ):
        assert not hasattr(viz, name), name
