"""Tests of the explorers and the photo upload of notebook 06 (helpers.widgets).

The widgets run without a browser: a control's ``value`` is set from Python (exactly what the
browser's message does), and a bare IPython shell records what would go to the notebook. The
networks have random weights (``weights=None``): the widgets' behaviour does not depend on them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io

import matplotlib

matplotlib.use("Agg")

import ipywidgets
import keras
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display
from IPython.utils.capture import capture_output
from nbclient import NotebookClient
from PIL import Image
from traitlets.config import Config

from helpers import backbone, data, viz, widgets


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def shell():
    """A bare IPython shell, so ``display`` publishes (and ``capture_output`` records) outputs."""
    config = Config()
    config.HistoryManager.enabled = False
    yield InteractiveShell.instance(config=config)
    InteractiveShell.clear_instance()


@pytest.fixture(scope="module")
def classifier():
    return backbone.build_classifier(weights=None)


@pytest.fixture(scope="module")
def first_photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "cica.jpg"
    Image.fromarray(_pixels(180, 240)).save(path, quality=90)
    return path


def _pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _photos(n: int, size: int, seed: int = 0) -> np.ndarray:
    return _pixels(n * size, size, seed).reshape(n, size, size, 3).astype("float32")


def _encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _two_conv_classifier():
    """32x32 input -> conv1 -> conv2 -> avg_pool -> dog_probability (random weights)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="dog_probability")(x)
    return keras.Model(inputs, outputs)


def _change_each(explorer, changes):
    """Set the controls one by one; each change must draw exactly one new picture."""
    for name, value in changes:
        renders, digest = explorer.renders, explorer.digest
        explorer.controls[name].value = value
        assert explorer.error is None, explorer.error
        assert explorer.renders == renders + 1, (name, value)
        assert explorer.digest != digest, (name, value)


def test_channel_explorer_redraws_one_picture_in_place(shell):
    features = backbone.build_features(weights=None)
    explorer = widgets.channel_explorer(
        features, _photos(2, 64), ["block_1_expand_relu", "out_relu"], titles=["a", "b"]
    )
    assert explorer.renders == 1 and explorer.png.startswith(b"\x89PNG")
    figures = plt.get_fignums()
    with capture_output() as captured:
        display(explorer)
        _change_each(
            explorer,
            [("photo", 1), ("channel", 90), ("layer", "out_relu"), ("channel", 1000)],
        )
        # back to 96 channels: the slider is clamped to 95, still one picture for one change
        _change_each(explorer, [("layer", "block_1_expand_relu")])
    assert explorer.controls["channel"].max == 95 and explorer.controls["channel"].value == 95
    assert plt.get_fignums() == figures  # every picture's figure is closed
    picture, controls, *updates = captured.outputs
    display_id = picture.transient["display_id"]
    assert 'class="tl-live-picture tl-live-picture--channel-explorer"' in picture.data["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in controls.data
    assert len(updates) == 5 and all(u.update for u in updates)  # no new outputs, only updates
    assert {u.transient["display_id"] for u in updates} == {display_id}
    assert base64.b64decode(updates[-1].data["image/png"]) == explorer.png
    assert "tl-live--channel-explorer" in explorer.widget._dom_classes


def test_grad_cam_explorer_redraws_once_per_control():
    explorer = widgets.grad_cam_explorer(
        _two_conv_classifier(), _photos(2, 32), titles=["a", "b"], layers=["conv2", "conv1"]
    )
    assert explorer.values() == {"photo": 0, "layer": "conv2", "target": "predicted"}
    _change_each(explorer, [("photo", 1), ("layer", "conv1"), ("target", 1.0), ("target", -1.0)])
    with pytest.raises(ValueError, match="Nincs 'conv3' nevű réteg"):
        widgets.grad_cam_explorer(_two_conv_classifier(), _photos(1, 32), layers=["conv3"])
    with pytest.raises(ValueError, match="egyetlen kép"):
        widgets.grad_cam_explorer(_two_conv_classifier(), _photos(1, 32)[0])


def test_freeze_explorer_keeps_the_flags(classifier):
    before = [layer.trainable for layer in classifier.layers]
    table = backbone.freeze_table(classifier, ["block_12_project", "dog_probability"])
    assert table["block_12_project"]["trainable_params"] == 1_719_937
    explorer = widgets.freeze_explorer(classifier)
    assert explorer.controls["cut"].options == tuple(backbone.freeze_candidates())
    assert explorer.controls["cut"].value == "block_12_project"
    _change_each(explorer, [("cut", "Conv1"), ("cut", "dog_probability")])
    assert [layer.trainable for layer in classifier.layers] == before


def test_a_failing_redraw_shows_a_hungarian_message_and_keeps_the_picture():
    def render(n):
        fig, axes = viz.grid(1, 1)
        if n == 2:
            raise RuntimeError("elromlott a rajz")
        axes[0, 0].plot([0, n])
        return fig

    explorer = widgets.Explorer("test", render, {"n": ipywidgets.IntSlider(value=1)})
    png, figures = explorer.png, plt.get_fignums()
    explorer.controls["n"].value = 2  # no exception escapes into the widget machinery
    assert explorer.renders == 1 and explorer.png == png and plt.get_fignums() == figures
    assert "Nem sikerült újrarajzolni az ábrát" in explorer.error
    assert "elromlott a rajz" in explorer.error and isinstance(explorer.exception, RuntimeError)
    assert "tl-live-error" in explorer.status.value and "elromlott" in explorer.status.value
    explorer.controls["n"].value = 3
    assert explorer.renders == 2 and explorer.error is None
    assert "tl-live-error" not in explorer.status.value
    with pytest.raises(RuntimeError, match="elromlott"):  # a broken first view stops the cell
        widgets.Explorer("test", render, {"n": ipywidgets.IntSlider(value=2)})


def test_an_exported_notebook_keeps_the_last_picture(tmp_path):
    """In a real kernel the first output is updated in place; the saved notebook shows it."""
    cells = [
        "import matplotlib.pyplot as plt, ipywidgets\n"
        "from helpers import widgets, viz\n"
        "def render(n):\n"
        "    fig, axes = viz.grid(1, 1)\n"
        "    axes[0, 0].plot([0, n])\n"
        "    return fig\n"
        "explorer = widgets.Explorer('test', render, {'n': ipywidgets.IntSlider(value=1)})\n"
        "explorer",
        "explorer.controls['n'].value = 5\nexplorer.controls['n'].value = 7",
        "print(explorer.renders, explorer.digest)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"path": tmp_path}).execute()
    pictures = [o for o in nb.cells[0].outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 1 and not nb.cells[1].outputs
    renders, digest = nb.cells[2].outputs[0]["text"].split()
    shown = base64.b64decode(pictures[0]["data"]["image/png"])
    assert renders == "3"
    assert hashlib.sha256(shown).hexdigest() == digest


# -- photo upload -------------------------------------------------------------------------------


def test_photo_upload_starts_with_the_first_photo(classifier, first_photo):
    upload = widgets.photo_upload(classifier, first_photo=first_photo)
    assert upload.renders == 1 and upload.error is None and upload.name == "cica.jpg"
    assert upload.photo.shape == (224, 224, 3) and 0 <= upload.p_dog <= 1
    assert upload.upload.accept == "image/*" and not upload.upload.multiple
    with pytest.raises(data.PhotoError, match="nincs ilyen fájl"):
        widgets.photo_upload(classifier, first_photo=first_photo.with_name("nincs.jpg"))
    with pytest.raises(TypeError, match="elérési útja"):
        widgets.photo_upload(classifier, first_photo=np.zeros((224, 224, 3)))


def _rgba_png() -> bytes:
    alpha = np.tile(np.linspace(0, 255, 90).astype(np.uint8), (120, 1))  # transparent on the left
    return _encoded(Image.fromarray(np.dstack([_pixels(120, 90, 2), alpha])), "PNG")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("kutya.jpg", _encoded(Image.fromarray(_pixels(300, 400, seed=1)), "JPEG", quality=85)),
        ("atlatszo.png", _rgba_png()),
    ],
    ids=["jpeg", "png-with-alpha"],
)
def test_photo_upload_shows_a_photo(classifier, first_photo, name, content):
    upload = widgets.photo_upload(classifier, first_photo=first_photo)
    digest = upload.digest
    assert upload.show_bytes(name, memoryview(content)) is True
    assert upload.renders == 2 and upload.error is None and upload.name == name
    assert upload.digest != digest
    assert upload.photo.shape == (224, 224, 3) and upload.photo.dtype == np.float32
    assert 0 <= upload.photo.min() and upload.photo.max() <= 255


def test_an_exif_rotated_photo_is_shown_upright(classifier, first_photo):
    stored = np.zeros((200, 300, 3), dtype=np.uint8)  # landscape as stored by the camera
    stored[:, :150] = (255, 0, 0)  # left half red
    stored[:, 150:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": the left edge becomes the top
    content = _encoded(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    upload = widgets.photo_upload(classifier, first_photo=first_photo)
    assert upload.show_bytes("telefon.jpg", content)
    top, bottom = upload.photo[:80].mean(axis=(0, 1)), upload.photo[-80:].mean(axis=(0, 1))
    assert top[0] > 200 and top[2] < 50, top  # red on top
    assert bottom[2] > 200 and bottom[0] < 50, bottom  # blue at the bottom


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("jegyzet.jpg", "Ez egy szöveg, nem kép.".encode(), "nem kép"),
        ("pici.png", _encoded(Image.fromarray(_pixels(16, 16)), "PNG"), "túl kicsi"),
    ],
    ids=["text-renamed-to-jpg", "too-small"],
)
def test_a_bad_upload_shows_the_photo_error(classifier, first_photo, name, content, reason):
    upload = widgets.photo_upload(classifier, first_photo=first_photo)
    png, photo, figures = upload.png, upload.photo, plt.get_fignums()
    assert upload.show_bytes(name, content) is False  # no exception
    assert name in upload.error and reason in upload.error
    assert isinstance(upload.exception, data.PhotoError)
    assert "tl-live-error" in upload.status.value and reason in upload.status.value
    assert upload.renders == 1 and upload.png == png and upload.photo is photo
    assert upload.name == "cica.jpg" and plt.get_fignums() == figures


def test_the_upload_button_value_formats(classifier, first_photo):
    upload = widgets.photo_upload(classifier, first_photo=first_photo)
    jpeg = _encoded(Image.fromarray(_pixels(64, 64, seed=3)), "JPEG")
    upload.upload.value = (  # ipywidgets 8 (JupyterLab)
        {
            "name": "feltoltott.jpg",
            "type": "image/jpeg",
            "size": len(jpeg),
            "content": memoryview(jpeg),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )
    assert upload.renders == 2 and upload.name == "feltoltott.jpg"
    assert upload.upload.value == ()  # emptied: the same file can be uploaded again
    colab = {"regi.jpg": {"metadata": {"name": "regi.jpg", "size": 3}, "content": b"abc"}}
    assert widgets.uploaded_files(colab) == [("regi.jpg", b"abc")]  # ipywidgets 7 (Colab)
    assert widgets.uploaded_files(({"name": "a.png", "content": memoryview(b"x")},)) == [
        ("a.png", b"x")
    ]
    with pytest.raises(TypeError, match="Ismeretlen FileUpload-érték"):
        widgets.uploaded_files("a.jpg")
