"""Interactive ``ipywidgets`` explorers and the photo upload of notebook 06.

Introduced in ``06_what_the_network_sees.ipynb``: the channel explorer (section 7), the Grad-CAM
explorer, the freeze-point explorer and the photo upload (:func:`photo_upload`).

Every explorer is **one picture that updates in place**. Displaying it (``display(explorer)``, or
the explorer as the last line of a cell) writes the first view as an ordinary image output with a
display id, followed by the controls and a status line. A changed control redraws the picture and
*replaces* that output (``DisplayHandle.update``), so the page does not grow, and a notebook that
is saved, exported or projected without a kernel shows the picture of the last state.

For tests and browser checks:

* ``explorer.renders`` counts the pictures drawn, ``explorer.png`` is the current picture (PNG
  bytes), ``explorer.digest`` its SHA-256, ``explorer.error`` the Hungarian message of the last
  failed redraw (``None`` after a successful one); setting a control's ``value`` (see
  ``explorer.controls``) redraws synchronously.
* In the page the picture is ``<img class="tl-live-picture tl-live-picture--KIND">`` with ``KIND``
  one of ``channel-explorer``, ``grad-cam-explorer``, ``freeze-explorer``, ``photo-upload``; the
  widget box has the classes ``tl-live`` and ``tl-live--KIND``, the status line ``tl-live-status``
  and an error message in it ``tl-live-error``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
from collections.abc import Callable, Sequence

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from helpers import backbone, config, data, probes, viz

#: Resolution of the explorers' pictures.
DPI = 100
_HINT = "Állítsd át a vezérlőket: a fenti ábra helyben frissül."


def figure_png(fig, *, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes (cropped to its content, like the notebook's inline pictures)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


class LivePicture:
    """One picture plus a few controls; the picture is redrawn in place.

    Introduced in ``06_what_the_network_sees.ipynb``. Subclasses call :meth:`_show` with a function
    that draws a new matplotlib figure.

    Attributes:
        kind: The CSS suffix of this picture (``tl-live-picture--KIND``).
        renders: How many pictures have been drawn (the first view included).
        png: The current picture as PNG bytes.
        error: The Hungarian message of the last failed redraw, ``None`` after a successful one.
        exception: The exception behind ``error`` (for the teacher: its traceback), or ``None``.
        widget: The ``ipywidgets.VBox`` of controls and status line (the picture is displayed
            separately, above it, so that it stays in the notebook without a kernel).
    """

    def __init__(self, kind: str, controls: Sequence, hint: str):
        self.kind = kind
        self.renders = 0
        self.png = b""
        self.error: str | None = None
        self.exception: Exception | None = None
        self._hint = hint
        self._handles: list = []
        self.status = ipywidgets.HTML(self._hint_html())
        self.status.add_class("tl-live-status")
        row = ipywidgets.HBox(list(controls), layout=ipywidgets.Layout(flex_flow="row wrap"))
        row.add_class("tl-live-controls")
        self.widget = ipywidgets.VBox([row, self.status])
        self.widget.add_class("tl-live")
        self.widget.add_class(f"tl-live--{kind}")

    @property
    def digest(self) -> str:
        """SHA-256 of the current picture (changes exactly when the picture changes)."""
        return hashlib.sha256(self.png).hexdigest()

    def _hint_html(self) -> str:
        return f"<span style='color:#666;font-size:90%'>{html.escape(self._hint)}</span>"

    def _bundle(self) -> dict[str, str]:
        encoded = base64.b64encode(self.png).decode("ascii")
        alt = html.escape(f"{self.kind} ({self.renders}. ábra)")
        return {
            "text/html": (
                f'<img class="tl-live-picture tl-live-picture--{self.kind}" alt="{alt}" '
                f'style="max-width:100%" src="data:image/png;base64,{encoded}"/>'
            ),
            "image/png": encoded,
            "text/plain": f"<{self.kind}: {self.renders}. ábra>",
        }

    def _show(self, draw: Callable, *, raise_errors: bool = False, describe=None) -> bool:
        """Draw a new picture and put it in place of the old one.

        Args:
            draw: Returns a new matplotlib figure. Every figure it opens is closed afterwards.
            raise_errors: Let an exception propagate (the first view: a wrong argument must
                stop the cell) instead of showing it in the status line.
            describe: ``exception -> Hungarian message`` for the status line; ``None`` uses a
                general message.

        Returns:
            Whether the picture was redrawn.
        """
        before = set(plt.get_fignums())
        try:
            png = figure_png(draw())
        except Exception as exc:
            if raise_errors:
                raise
            self.exception = exc
            self.error = describe(exc) if describe is not None else _redraw_failed(exc)
            self.status.value = (
                f"<span class='tl-live-error' style='color:#b00020'>⚠ "
                f"{html.escape(self.error)}</span>"
            )
            return False
        finally:
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
        self.png, self.error, self.exception = png, None, None
        self.renders += 1
        self.status.value = self._hint_html()
        for handle in self._handles:
            handle.update(self._bundle(), raw=True)
        return True

    def _ipython_display_(self):
        handle = display(self._bundle(), raw=True, display_id=True)
        if handle is not None:  # None outside IPython (plain ``python``)
            self._handles.append(handle)
        display(self.widget)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}: {self.renders} ábra, hiba: {self.error}>"


def _redraw_failed(exc: Exception) -> str:
    return (
        f"Nem sikerült újrarajzolni az ábrát ({type(exc).__name__}: {exc}). A fenti ábra a "
        "legutóbbi sikeres beállítást mutatja; próbálj más beállítást, vagy futtasd újra a cellát."
    )


class Explorer(LivePicture):
    """Controls whose values are the arguments of a drawing function; one picture per state.

    Introduced in ``06_what_the_network_sees.ipynb`` (built by :func:`channel_explorer`,
    :func:`grad_cam_explorer` and :func:`freeze_explorer`).

    Attributes:
        controls: Argument name -> control widget; setting a control's ``value`` redraws once.
    """

    def __init__(
        self,
        kind: str,
        render: Callable,
        controls: dict,
        *,
        adjust: Callable | None = None,
        hint: str = _HINT,
    ):
        super().__init__(kind, list(controls.values()), hint)
        self.controls = controls
        self._render = render
        self._adjust = adjust
        self._adjusting = False
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self._show(lambda: self._render(**self.values()), raise_errors=True)

    def values(self) -> dict:
        """The controls' current values, by argument name."""
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self) -> bool:
        """Draw the picture of the current values (a control change does this by itself)."""
        return self._show(lambda: self._render(**self.values()))

    def _on_change(self, change) -> None:
        if self._adjusting:  # a dependent control moved by ``adjust``: one redraw is enough
            return

        def draw():
            if self._adjust is not None:
                self._adjusting = True
                try:
                    self._adjust(change)
                finally:
                    self._adjusting = False
            return self._render(**self.values())

        self._show(draw)


def _titles(n: int, titles: Sequence[str] | None) -> list[str]:
    if titles is None:
        return [f"{i}. fotó" for i in range(n)]
    if len(titles) != n:
        raise ValueError(f"Fotónként egy címet várok: {n} fotó, de {len(titles)} cím.")
    return list(titles)


def _photo_dropdown(titles: list[str]):
    return ipywidgets.Dropdown(
        options=[(t, i) for i, t in enumerate(titles)], value=0, description="fotó"
    )


def channel_explorer(
    model,
    images: np.ndarray,
    layer_names: Sequence[str] = probes.PROBE_LAYERS,
    *,
    titles: Sequence[str] | None = None,
) -> Explorer:
    """Interactive explorer: choose photo, layer and channel; see the activation map.

    Introduced in ``06_what_the_network_sees.ipynb``. All activations are computed once up front,
    so moving the slider only redraws. Three panels: the photo, the channel's map at its own
    resolution, and the map enlarged over the photo.

    Args:
        model: A flat functional model on raw 0..255 images (classifier or backbone).
        images: A few photos ``(n, 224, 224, 3)``.
        layer_names: Layers offered in the drop-down.
        titles: One caption per photo.

    Returns:
        An :class:`Explorer`; show it with ``display(explorer)``.
    """
    layer_names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
    outputs = probes.activations(probes.activation_model(model, layer_names), images)
    images = np.asarray(images, dtype="float32")
    titles = _titles(len(images), titles)
    maps = dict(zip(layer_names, outputs, strict=True))
    first = int(probes.most_active_channels(maps[layer_names[0]][0], 1, by="contrast")[0])
    controls = {
        "photo": _photo_dropdown(titles),
        "layer": ipywidgets.Dropdown(
            options=layer_names, value=layer_names[0], description="réteg"
        ),
        "channel": ipywidgets.IntSlider(
            value=first,
            min=0,
            max=maps[layer_names[0]].shape[-1] - 1,
            description="csatorna",
            continuous_update=False,
        ),
    }

    def adjust(change):
        if change["owner"] is controls["layer"]:  # the slider follows the layer's channel count
            controls["channel"].max = maps[change["new"]].shape[-1] - 1

    def render(photo, layer, channel):
        fmap = maps[layer][photo, ..., channel]
        h, w, c = maps[layer].shape[1:]
        fig, axes = viz.grid(
            1,
            3,
            (3.5, 3.6),
            title=f"Mit lát a(z) {layer} réteg {channel}. csatornája? ({c} csatornából)",
        )
        axes[0, 0].imshow(viz.to_uint8(images[photo]))
        axes[0, 0].set_title(titles[photo])
        axes[0, 1].imshow(fmap, cmap=plt.colormaps["viridis"], vmin=0, interpolation="nearest")
        axes[0, 1].set_title(
            f"{layer} #{channel}\n{h}×{w} cella (1 cella ≈ {images.shape[1] // h} px)", fontsize=9
        )
        big = probes.enlarge(fmap[None], images.shape[1:3])[0]
        scaled = big / big.max() if big.max() > 0 else big
        axes[0, 2].imshow(viz.overlay_heatmap(images[photo], scaled, cmap="inferno", alpha=0.55))
        axes[0, 2].set_title(f"ráhelyezve a fotóra (max {fmap.max():.2f})", fontsize=9)
        return fig

    return Explorer("channel-explorer", render, controls, adjust=adjust)


def grad_cam_explorer(
    model,
    images: np.ndarray,
    *,
    titles: Sequence[str] | None = None,
    layers: Sequence[str] = ("out_relu", "block_16_project", "block_13_expand_relu"),
) -> Explorer:
    """Interactive Grad-CAM: choose photo, layer and class; see the heat map over the photo.

    Introduced in ``06_what_the_network_sees.ipynb``. The class buttons offer the predicted class
    (the first view), "dog" (the logit) and "cat" (the negated logit); see
    :func:`helpers.probes.grad_cam`.

    Returns:
        An :class:`Explorer`; show it with ``display(explorer)``.
    """
    images = probes.photo_batch(images)
    titles = _titles(len(images), titles)
    layers = [layers] if isinstance(layers, str) else list(layers)
    for name in layers:
        backbone.layer_index(model, name)  # an unknown name stops here, with suggestions
    controls = {
        "photo": _photo_dropdown(titles),
        "layer": ipywidgets.Dropdown(options=layers, value=layers[0], description="réteg"),
        "target": ipywidgets.ToggleButtons(
            options=[("jósolt", "predicted"), ("kutya", 1.0), ("macska", -1.0)],
            value="predicted",
            description="osztály",
        ),
    }

    def render(photo, layer, target):
        cams, logits = probes.grad_cam(model, images[photo : photo + 1], layer=layer, sign=target)
        p_dog = 1 / (1 + np.exp(-logits[0]))
        if target == "predicted":
            name = "kutya" if logits[0] >= 0 else "macska"
            explained = f"„{name}” (a jósolt osztály)"
        else:
            explained = "„kutya”" if target > 0 else "„macska”"
        fig, axes = viz.grid(1, 2, (3.6, 3.8))
        axes[0, 0].imshow(viz.to_uint8(images[photo]))
        axes[0, 0].set_title(f"{titles[photo]}\nP(kutya) = {p_dog:.2f}", fontsize=10)
        axes[0, 1].imshow(viz.overlay_heatmap(images[photo], cams[0]))
        axes[0, 1].set_title(f"Grad-CAM: {explained}\nréteg: {layer}", fontsize=10)
        return fig

    return Explorer("grad-cam-explorer", render, controls)


def freeze_explorer(
    model, candidates: Sequence[str] | None = None, *, initial: str | None = None
) -> Explorer:
    """Interactive freeze point: choose the cut layer, see how much stays frozen.

    Introduced in ``06_what_the_network_sees.ipynb``. Everything before the cut is frozen, the
    cut layer and the later ones learn (BatchNorm layers always stay frozen, as in ``03``). The
    model's ``trainable`` flags are left as they were.

    Args:
        model: The flat classifier.
        candidates: Cut layers offered (default :func:`helpers.backbone.freeze_candidates`).
        initial: The first selection (default: the series' ``block_12_project``).

    Returns:
        An :class:`Explorer`; show it with ``display(explorer)``.
    """
    candidates = list(candidates or backbone.freeze_candidates())
    initial = initial or (backbone.CUT_LAYER if backbone.CUT_LAYER in candidates else candidates[0])
    if initial not in candidates:
        raise ValueError(f"Az initial={initial!r} nincs a felkínált vágási pontok között.")
    table = backbone.freeze_table(model, candidates)
    trainable_curve = np.array([table[c]["trainable_params"] for c in candidates]) / 1e6
    controls = {"cut": ipywidgets.Dropdown(options=candidates, value=initial, description="vágás")}

    def render(cut):
        counts = table[cut]
        fig, axes = viz.grid(1, 2, (5.5, 3.6), axes="on", gridspec_kw={"width_ratios": [1, 2]})
        bars, curve = axes[0]
        frozen_m = counts["non_trainable_params"] / 1e6
        train_m = counts["trainable_params"] / 1e6
        bars.bar(["fagyott", "tanítható"], [frozen_m, train_m], color=["tab:blue", "tab:orange"])
        for x, (v, layers) in enumerate(
            [(frozen_m, counts["frozen_layers"]), (train_m, counts["trainable_layers"])]
        ):
            bars.text(x, v, f"{v:.2f} M\n{layers} réteg", ha="center", va="bottom", fontsize=9)
        bars.set_ylabel("paraméterek (millió)")
        bars.set_ylim(0, max(frozen_m, train_m) * 1.3)
        bars.set_title(f"Vágás: {cut}", fontsize=10)
        xs = np.arange(len(candidates))
        curve.plot(xs, trainable_curve, marker="o", color="tab:orange")
        i = candidates.index(cut)
        curve.plot([i], [trainable_curve[i]], marker="o", ms=12, mfc="none", mec="red", mew=2)
        curve.set_xticks(xs, candidates, rotation=70, fontsize=7)
        curve.set_ylabel("tanítható paraméterek (millió)")
        curve.set_title("Minél korábban vágunk, annál több tanul", fontsize=10)
        curve.grid(alpha=0.3)
        return fig

    return Explorer("freeze-explorer", render, controls)


# -- photo upload -------------------------------------------------------------------------------


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """``(file name, content)`` of every file in a ``FileUpload`` value.

    Introduced in ``06_what_the_network_sees.ipynb`` (behind :func:`photo_upload`). Accepts both
    formats: ipywidgets 8 (JupyterLab; a tuple of dicts with ``"name"`` and ``"content"``, a
    ``memoryview``) and ipywidgets 7 (Colab; a dict ``name -> {"metadata": {...}, "content":
    bytes}``).
    """
    if isinstance(value, dict):  # ipywidgets 7
        return [
            (str(entry.get("metadata", {}).get("name", name)), bytes(entry["content"]))
            for name, entry in value.items()
        ]
    if isinstance(value, (tuple, list)):  # ipywidgets 8
        return [(str(entry["name"]), bytes(entry["content"])) for entry in value]
    raise TypeError(f"Ismeretlen FileUpload-érték: {type(value).__name__}")


class PhotoUpload(LivePicture):
    """Upload a photo and see what the classifier makes of it (see :func:`photo_upload`).

    Introduced in ``06_what_the_network_sees.ipynb``.

    Attributes:
        upload: The ``ipywidgets.FileUpload`` button.
        photo: The photo the picture shows, as the model sees it (``(224, 224, 3)``, 0..255).
        name: Its file name.
        p_dog: The model's P(dog) for it.
    """

    def __init__(self, model, first_photo, *, layer: str = "out_relu"):
        if not isinstance(first_photo, (str, os.PathLike)):
            raise TypeError(
                "A first_photo egy fotó elérési útja legyen (str vagy pathlib.Path), "
                f"nem {type(first_photo).__name__}."
            )
        backbone.layer_index(model, layer)  # an unknown name stops here, with suggestions
        self.model, self.layer = model, layer
        self.image_size = int(model.inputs[0].shape[1] or config.IMAGE_SIZE)
        self.upload = ipywidgets.FileUpload(
            accept="image/*", multiple=False, description="Fotó feltöltése"
        )
        super().__init__(
            "photo-upload",
            [self.upload],
            "Tölts fel egy macskás vagy kutyás fotót (JPG, PNG …): a fenti ábra azt mutatja, "
            "mit lát benne a modell.",
        )
        self.photo: np.ndarray | None = None
        self.name: str | None = None
        self.p_dog: float | None = None
        name = os.path.basename(os.fspath(first_photo))
        self._show(lambda: self._draw(self._load(first_photo), name), raise_errors=True)
        self.upload.observe(self._on_upload, names="value")

    def show_bytes(self, name: str, content: bytes | memoryview) -> bool:
        """Show an uploaded file (what the upload button does); tests call it directly.

        A file that is not a usable photo leaves the picture as it was and puts the Hungarian
        message of :class:`helpers.data.PhotoError` in the status line; nothing is raised.

        Returns:
            Whether the picture now shows this photo.
        """

        def describe(exc: Exception) -> str:
            if not isinstance(exc, data.PhotoError):
                return _redraw_failed(exc)
            message = str(exc)  # Hungarian, says what to do
            return message if str(name) in message else f"„{name}”: {message}"

        def draw():
            upload = io.BytesIO(bytes(content))
            upload.name = str(name)  # load_photo's messages name the file
            return self._draw(self._load(upload), str(name))

        return self._show(draw, describe=describe)

    def _load(self, source) -> np.ndarray:
        return data.load_photo(source, image_size=self.image_size)

    def _on_upload(self, change) -> None:
        files = uploaded_files(change["new"])
        if not files:  # our own reset below
            return
        self.show_bytes(*files[-1])
        # empty the button, so uploading the same file again is a change too
        self.upload.set_trait("value", type(change["new"])())

    def _draw(self, photo: np.ndarray, name: str):
        batch = data.as_model_input(photo, image_size=self.image_size)
        cams, logits = probes.grad_cam(self.model, batch, layer=self.layer, sign="predicted")
        p_dog = float(1 / (1 + np.exp(-logits[0])))
        predicted = "kutya" if logits[0] >= 0 else "macska"
        fig, axes = viz.grid(
            1,
            3,
            (3.3, 3.6),
            gridspec_kw={"width_ratios": [1, 1, 0.9]},
            title=f"{name}: a modell szerint {predicted} (P(kutya) = {p_dog:.2f})",
        )
        shown, cam, bar = axes[0]
        shown.imshow(viz.to_uint8(photo))
        shown.set_title(f"Így látja a modell ({photo.shape[0]}×{photo.shape[1]})", fontsize=10)
        cam.imshow(viz.overlay_heatmap(photo, cams[0]))
        cam.set_title(f"Grad-CAM: mi szólt a „{predicted}” mellett?", fontsize=10)
        bar.axis("on")
        bar.barh([0, 1], [1 - p_dog, p_dog], color=["tab:purple", "tab:orange"])
        bar.set_yticks([0, 1], ["macska", "kutya"])
        bar.set_xlim(0, 1)
        bar.set_xlabel("valószínűség")
        for y, p in enumerate([1 - p_dog, p_dog]):
            bar.text(min(p + 0.02, 0.8), y, f"{p:.2f}", va="center", fontsize=10)
        bar.set_title("P(macska) és P(kutya)", fontsize=10)
        self.photo, self.name, self.p_dog = photo, name, p_dog
        return fig


def photo_upload(model, *, first_photo, layer: str = "out_relu") -> PhotoUpload:
    """Upload your own photo: the classifier's P(dog) and the Grad-CAM map of its decision.

    Introduced in ``06_what_the_network_sees.ipynb``. The photo goes through
    :func:`helpers.data.load_photo` (the series' one way from a photo file to a model input:
    EXIF rotation, transparency, size), so the picture shows it exactly as the model sees it
    (224x224), with P(dog) as a bar and the Grad-CAM map of the predicted class
    (:func:`helpers.probes.grad_cam` with ``sign="predicted"``). A file that is not a usable photo
    (not an image, unreadable, too small) shows :class:`helpers.data.PhotoError`'s message in
    the widget instead of a traceback.

    Args:
        model: The flat classifier (see :func:`helpers.backbone.build_classifier`).
        first_photo: Path of the photo shown before anything is uploaded (e.g. a test photo), so
            the cell is useful exported or projected.
        layer: The convolutional layer of the Grad-CAM map.

    Returns:
        A :class:`PhotoUpload`; show it with ``display(upload)``.
    """
    return PhotoUpload(model, first_photo, layer=layer)
