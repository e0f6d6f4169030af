"""What a student sees: the notebooks in a real JupyterLab, in headless Chromium.

nbval executes the notebooks' code; this file checks what only a browser shows: that Run All from
JupyterLab's menu gets through every cell without an error output, that every widget view renders,
that the explorers of ``06`` redraw their one picture in place when a control changes, that the
photo upload of ``06`` takes a file, and that ``05``'s embedded TensorBoard loads and shows the run
that the notebook has just written -- also when JupyterLab was started without activating the
virtual environment (``tensorboard`` not on the PATH).

One JupyterLab server (started without the venv's ``bin`` on the PATH) and one browser serve every
test; the second TensorBoard case starts a second, short-lived server with the venv activated.
The notebooks are copies in a temporary folder and JupyterLab never saves them.

The first tests run deliberately broken scratch notebooks: the detectors must find every error
output, stopped Run All, widget that does not render, picture that does not change and picture
added instead of replaced -- and must not mistake a warning on stderr for an error.

Needs Chromium (``apt-get install chromium``, or ``TL_CHROMIUM=/path/to/chromium``): skipped
without it, a failure under ``CI=true``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import nbformat
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from helpers import config
from tests import browser_support
from tests.browser_support import (
    CHROMIUM_ARGS,
    ENABLE_HINT,
    VENV_BIN,
    JupyterLab,
    NotebookPage,
    error_outputs,
    find_chromium,
    kernel_eval,
    process_command,
    stop_tensorboard,
    tensorboards,
    unexecuted_cells,
)

#: One JupyterLab and one Chromium for the whole file: under pytest-xdist its tests share a worker.
pytestmark = pytest.mark.xdist_group("browser")

REPO = Path(__file__).resolve().parent.parent
NB05 = "notebooks/05_training_tensorboard.ipynb"
NB06 = "notebooks/06_what_the_network_sees.ipynb"
#: Longest Run All of one notebook in the smoke profile (2 shared cores, under load).
RUN_TIMEOUT = 600
#: The photo upload of notebook 06 (``helpers.widgets``), by its ``tl-live--KIND`` class.
UPLOAD = "photo-upload"
UPLOAD_NAME = "feltoltott_kutya.jpg"


def _chromium_problem(path: str | None) -> str | None:
    if path is None:
        return ENABLE_HINT
    if not os.access(path, os.X_OK):
        return f"{path} is not an executable file; {ENABLE_HINT}"
    return None


CHROMIUM = find_chromium()
CHROMIUM_PROBLEM = _chromium_problem(CHROMIUM)
if CHROMIUM_PROBLEM is not None and os.environ.get("CI", "").lower() != "true":
    pytest.skip(CHROMIUM_PROBLEM, allow_module_level=True)


# --------------------------------------------------------------------------------------------
# Fixtures: one browser, one JupyterLab server


@pytest.fixture(scope="session")
def chromium() -> str:
    if CHROMIUM_PROBLEM is not None:  # only under CI=true: elsewhere the module is skipped
        pytest.fail(CHROMIUM_PROBLEM, pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium, tmp_path_factory):
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": 1400, "height": 1000},
        )
        yield context
        context.close()


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory) -> Path:
    """A folder with copies of the notebooks (JupyterLab serves it; the repo is never written)."""
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    (root / "scratch").mkdir()
    return root


@pytest.fixture(scope="session")
def lab(browser, lab_root, tmp_path_factory):
    """JupyterLab started the way a student does without activating the venv (PATH lacks it)."""
    server = JupyterLab(tmp_path_factory.mktemp("lab"), lab_root, venv_on_path=False).start()
    yield server
    for info in tensorboards(server):  # left behind by a failed test
        stop_tensorboard(server, info)
    server.stop()


@pytest.fixture
def open_notebook(browser, tmp_path):
    """``open_notebook(server, path)``: the notebook in a new tab; the tab closes afterwards."""
    pages = []

    def open_(server: JupyterLab, path: str) -> NotebookPage:
        page = browser.new_page()
        pages.append(page)
        return NotebookPage(page, server, path).open()

    yield open_
    for page in pages:
        page.close()


@contextlib.contextmanager
def screenshot_on_failure(nb: NotebookPage, folder: Path, name: str):
    """A failure inside saves a screenshot of the whole notebook and names it in the message."""
    try:
        yield
    except (AssertionError, TimeoutError, PlaywrightError, pytest.fail.Exception) as exc:
        shot = nb.screenshot(folder, name)
        pytest.fail(f"{exc}\nscreenshot: {shot}", pytrace=False)


def expect_none(problems: list[str], nb: NotebookPage, folder: Path, name: str, element=None):
    """Fail with every problem and a screenshot (of ``element``, else of the page)."""
    if problems:
        shot = nb.screenshot(folder, name, element)
        pytest.fail("\n".join(problems) + f"\nscreenshot: {shot}", pytrace=False)


def write_notebook(root: Path, name: str, cells: list) -> str:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nbformat.write(nb, root / "scratch" / name)
    return f"scratch/{name}"


def code(source: str, *tags: str):
    return nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)} if tags else {})


# --------------------------------------------------------------------------------------------
# The detectors fail on broken notebooks (and only there)


def test_error_detector_on_a_failing_notebook(lab, lab_root, open_notebook, tmp_path):
    path = write_notebook(
        lab_root,
        "errors.ipynb",
        [
            code(
                "import sys\nimport warnings\n\n"
                "warnings.warn('csak egy figyelmeztetés')\n"
                "print('Error szó a stderr-en, de ez nem kivétel', file=sys.stderr)\n"
                "print('ok')"
            ),
            code("def f():\n    raise ValueError('szándékos hiba')\n\n\nf()", "raises-exception"),
            code("x = (", "raises-exception"),
            code("%tensorbord --logdir logs", "raises-exception"),
            code(
                "from IPython.display import display\n\n"
                "view = {'model_id': 'nincs-ilyen', 'version_major': 2, 'version_minor': 0}\n"
                "display({'application/vnd.jupyter.widget-view+json': view}, raw=True)"
            ),
            code("raise KeyError('a Run All itt megáll')"),
            code("print('ide már nem jut el')"),
        ],
    )
    nb = open_notebook(lab, path)
    with screenshot_on_failure(nb, tmp_path, "errors"):
        cells = nb.run_all(timeout=120)
        errors = error_outputs(cells)
        assert [e.split(":", 1)[0] for e in errors] == [
            "cell 2 [2]",
            "cell 3 [3]",
            "cell 4 [4]",
            "cell 6 [6]",
        ], errors
        for error, name in zip(
            errors, ["ValueError", "SyntaxError", "UsageError", "KeyError"], strict=True
        ):
            assert name in error, errors
        assert [u.split(":", 1)[0] for u in unexecuted_cells(cells)] == ["cell 7 [ ]"]
        problems = nb.wait_for_widgets(timeout=2)
        assert len(problems) == 1 and problems[0].startswith("cell 5 [5]"), problems


#: A stand-in for ``helpers.widgets``: one picture with a display id and a slider below it.
LIVE_SETUP = """\
import base64
import io

import ipywidgets
from IPython.display import display
from PIL import Image


def picture(kind, value):
    buffer = io.BytesIO()
    Image.new("RGB", (60, 40), (40 * value % 256, 90, 160)).save(buffer, format="PNG")
    src = base64.b64encode(buffer.getvalue()).decode()
    css = f"tl-live-picture tl-live-picture--{kind}"
    return {"text/html": f'<img class="{css}" src="data:image/png;base64,{src}">'}


def live(kind, on_change):
    slider = ipywidgets.IntSlider(value=1, min=0, max=5, continuous_update=False)
    status = ipywidgets.HTML("")
    box = ipywidgets.VBox([slider, status])
    box.add_class("tl-live")
    box.add_class(f"tl-live--{kind}")
    handle = display(picture(kind, 1), raw=True, display_id=True)
    slider.observe(lambda change: on_change(kind, handle, box, change["new"]), names="value")
    display(box)
"""

#: How each stand-in reacts to the slider (the body of ``react(kind, handle, box, value)``):
#: only the first one is right. "appends" is the old explorers' way: a new picture below.
LIVE_VARIANTS = {
    "in-place": "handle.update(picture(kind, value), raw=True)",
    "raises": "raise RuntimeError('szándékos hiba az újrarajzolásban')",
    "appends": (
        "out = ipywidgets.Output()\n"
        "box.children += (out,)\n"
        "with out:\n"
        "    display(picture(kind, value), raw=True)"
    ),
    "reports-error": "box.children[1].value = \"<span class='tl-live-error'>Nem sikerült</span>\"",
}


def press_slider(box):
    box.locator(".noUi-handle").first.press("ArrowRight")


def test_live_picture_detector_on_broken_redraws(lab, lab_root, open_notebook, tmp_path):
    cells = [code(LIVE_SETUP)]
    cells += [
        code(
            f"def react(kind, handle, box, value):\n{textwrap.indent(body, '    ')}\n\n\n"
            f"live({kind!r}, react)"
        )
        for kind, body in LIVE_VARIANTS.items()
    ]
    nb = open_notebook(lab, write_notebook(lab_root, "live.ipynb", cells))
    with screenshot_on_failure(nb, tmp_path, "live"):
        cells = nb.run_all(timeout=120)
        assert not error_outputs(cells) and not unexecuted_cells(cells), cells
        assert nb.wait_for_widgets() == []
        found = {}
        for kind in LIVE_VARIANTS:
            found[kind], *_ = nb.change_live_picture(kind, "ArrowRight", press_slider, timeout=5)
        assert found["in-place"] == [], found
        assert found["raises"] == ["raises: the picture did not change within 5 s of ArrowRight"]
        assert found["appends"] == [
            "appends: 2 pictures after ArrowRight (expected one picture, redrawn in place)"
        ]
        assert found["reports-error"][0] == (
            "reports-error: after ArrowRight the widget shows an error: Nem sikerült"
        ), found


# --------------------------------------------------------------------------------------------
# Notebook 05: training, and TensorBoard embedded in the notebook


def check_tensorboard(nb: NotebookPage, run: str, timeout: float = 90) -> tuple[list[str], object]:
    """The ``%tensorboard`` cell's iframe loads and lists ``run`` with its scalar tags.

    Returns:
        ``(problems, info)``: the problems (empty = fine) and the TensorBoard's
        ``TensorBoardInfo`` (``None`` if none was found).
    """
    cell = nb.cell("%tensorboard")
    text = cell.locator(".jp-OutputArea").inner_text()
    if "ERROR" in text:
        return [f"the %tensorboard cell says: {text.strip()}"], None
    frame = cell.locator("iframe[id^='tensorboard-frame-']")
    if frame.count() != 1:
        return [f"{frame.count()} TensorBoard iframes in the %tensorboard cell:\n{text}"], None
    frame.element_handle().wait_for_element_state("visible")
    nb.page.wait_for_function("f => f.src !== ''", arg=frame.element_handle(), timeout=30_000)
    url = frame.evaluate("f => f.src")
    port = urlparse(url).port
    infos = [info for info in tensorboards(nb.server) if info.port == port]
    if len(infos) != 1:
        return [f"no TensorBoard of this server listens on port {port} (iframe: {url})"], None
    problems = []
    # TensorBoard's HTTP API, at the iframe's address: the run and its scalar tags
    expected = {
        f"{run}/{split}": {"epoch_loss", "epoch_accuracy"} for split in ("train", "validation")
    }
    deadline = time.monotonic() + timeout
    while True:
        runs = json.loads(nb.page.request.get(f"{url}data/runs").text())
        tags = json.loads(nb.page.request.get(f"{url}data/plugin/scalars/tags").text())
        missing = {
            name: sorted(wanted - set(tags.get(name, {})))
            for name, wanted in expected.items()
            if name not in runs or wanted - set(tags.get(name, {}))
        }
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    if missing:
        problems.append(f"TensorBoard at {url} lacks (run: missing tags) {missing}; runs: {runs}")
    # what the student sees inside the iframe: the run's name and the accuracy chart
    content = frame.element_handle().content_frame()
    try:
        content.wait_for_function(
            "run => document.body && document.body.innerText.includes(run)"
            " && document.body.innerText.includes('epoch_accuracy')",
            arg=run,
            timeout=timeout * 1000,
        )
    except Exception:
        shown = content.evaluate("() => document.body ? document.body.innerText : ''")[:500]
        problems.append(f"the TensorBoard iframe does not show {run} and epoch_accuracy: {shown!r}")
    command = process_command(infos[0].pid)
    if str(VENV_BIN / "tensorboard") not in command:
        problems.append(f"TensorBoard is not this venv's program: {command}")
    return problems, infos[0]


def test_notebook_05_and_tensorboard_without_venv_on_path(lab, open_notebook, tmp_path):
    """Run All of 05, ``%tensorboard`` included, in a JupyterLab whose PATH lacks the venv."""
    assert str(VENV_BIN) not in lab.env["PATH"].split(os.pathsep)
    runs_before = set(config.LOGS_ROOT.glob("*"))
    nb = open_notebook(lab, NB05)
    with screenshot_on_failure(nb, tmp_path, "05"):
        cells = nb.run_all(timeout=RUN_TIMEOUT)
    problems = error_outputs(cells) + unexecuted_cells(cells) + nb.wait_for_widgets()
    expect_none(problems, nb, tmp_path, "05")
    new_runs = sorted(set(config.LOGS_ROOT.glob("*")) - runs_before)
    assert len(new_runs) == 1, f"05 wrote {len(new_runs)} new runs in {config.LOGS_ROOT}"
    problems, info = check_tensorboard(nb, new_runs[0].name)
    if info is not None:
        problems += stop_tensorboard(lab, info)
    expect_none(problems, nb, tmp_path, "05-tensorboard", nb.cell("%tensorboard"))


def tensorboard_cell_source() -> str:
    """The ``%tensorboard`` cell of notebook 05."""
    nb = nbformat.read(REPO / NB05, as_version=4)
    (source,) = [c.source for c in nb.cells if "%tensorboard" in c.source]
    return source


def test_tensorboard_listing_survives_a_tensorboard_exiting_meanwhile(monkeypatch, tmp_path):
    """CI once failed in ``stop_tensorboard``: ``get_all`` listed an info file that the exiting
    TensorBoard removed before it was opened."""
    calls = []

    def racing_get_all():
        calls.append(tempfile.gettempdir())
        if len(calls) == 1:
            raise FileNotFoundError("pid-1.info vanished")
        return ["listed"]

    monkeypatch.setattr(browser_support.manager, "get_all", racing_get_all)
    assert browser_support.tensorboards(SimpleNamespace(temp_dir=tmp_path)) == ["listed"]
    assert calls == [str(tmp_path)] * 2 and tempfile.gettempdir() != str(tmp_path)


def test_tensorboard_cell_with_venv_on_path(browser, lab_root, open_notebook, tmp_path):
    """05's ``%tensorboard`` cell, unchanged, in a JupyterLab started from the activated venv.

    The run it shows is a tiny one written here into the server's own ``TL_OUTPUT_DIR``.
    """
    server = JupyterLab(tmp_path / "lab", lab_root, venv_on_path=True)
    server.env["TL_OUTPUT_DIR"] = str(tmp_path / "output")
    for split in ("train", "validation"):
        writer = tf.summary.create_file_writer(str(tmp_path / "output" / "logs" / "probe" / split))
        with writer.as_default():
            for step, value in enumerate([0.5, 0.8]):
                tf.summary.scalar("epoch_accuracy", value, step=step)
                tf.summary.scalar("epoch_loss", 1 - value, step=step)
        writer.close()
    setup = "import os\nimport sys\n\nfrom helpers import config"
    path = write_notebook(
        lab_root, "tensorboard_on_path.ipynb", [code(setup), code(tensorboard_cell_source())]
    )
    server.start()
    try:
        assert server.env["PATH"].split(os.pathsep)[0] == str(VENV_BIN)
        nb = open_notebook(server, path)
        with screenshot_on_failure(nb, tmp_path, "tensorboard-on-path"):
            cells = nb.run_all(timeout=180)
        expect_none(error_outputs(cells) + unexecuted_cells(cells), nb, tmp_path, "on-path")
        problems, info = check_tensorboard(nb, "probe")
        if info is not None:
            problems += stop_tensorboard(server, info)
        expect_none(problems, nb, tmp_path, "on-path-tensorboard", nb.cell("%tensorboard"))
    finally:
        for left in tensorboards(server):
            stop_tensorboard(server, left)
        server.stop()


# --------------------------------------------------------------------------------------------
# Notebook 06: the interactive explorers and the photo upload


def picture_digest(live: dict) -> str:
    src = live["pictures"][0]["src"]
    return hashlib.sha256(base64.b64decode(src.split(",", 1)[1])).hexdigest()


#: Reads the live pictures of the kernel (``helpers.widgets.LivePicture``) without any output.
PROBE = """\
import json as _json
from helpers import widgets as _widgets
print(_json.dumps([
    {"kind": _v.kind, "renders": _v.renders, "error": _v.error, "digest": _v.digest,
     "name": getattr(_v, "name", None), "p_dog": getattr(_v, "p_dog", None)}
    for _v in list(globals().values()) if isinstance(_v, _widgets.LivePicture)
]))
"""


def shown_in_kernel(pictures: list[dict], kind: str, digest: str) -> dict | None:
    """The kernel's live picture of ``kind`` whose current picture is ``digest``."""
    return next((p for p in pictures if p["kind"] == kind and p["digest"] == digest), None)


def jpeg_photo() -> bytes:
    """A generated 320x240 photo (a warm blob on a cool background)."""
    y, x = np.mgrid[0:240, 0:320]
    blob = np.exp(-(((x - 170) / 70.0) ** 2 + ((y - 120) / 55.0) ** 2))
    rgb = np.stack([60 + 180 * blob, 90 + 80 * blob, 150 - 90 * blob], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def choose_file(nb: NotebookPage, button) -> None:
    """Click the upload button and pick a generated JPEG in the file chooser that opens."""
    with nb.page.expect_file_chooser() as chooser:
        button.click()
    chooser.value.set_files({"name": UPLOAD_NAME, "mimeType": "image/jpeg", "buffer": jpeg_photo()})


def move_slider(box):
    handle = box.locator(".noUi-handle").first
    at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
    handle.press("ArrowLeft" if at_max else "ArrowRight")


def click_cat_toggle(box):
    box.locator(".widget-toggle-button", has_text="macska").first.click()


def select_other_option(box):
    select = box.locator("select").first
    values = select.evaluate("s => [...s.options].filter(o => !o.selected).map(o => o.value)")
    select.select_option(values[0])


#: What the test does to each explorer of 06, by its ``tl-live--KIND`` class.
ACTIONS = {
    "channel-explorer": ("the channel slider moved by one", move_slider),
    "grad-cam-explorer": ("the 'macska' class button clicked", click_cat_toggle),
    "freeze-explorer": ("another cut layer selected", select_other_option),
}


def test_notebook_06_explorers_and_upload(lab, open_notebook, tmp_path):
    started = time.monotonic()
    nb = open_notebook(lab, NB06)
    with screenshot_on_failure(nb, tmp_path, "06"):
        cells = nb.run_all(timeout=RUN_TIMEOUT)
    print(f"06: Run All took {time.monotonic() - started:.0f} s")
    problems = error_outputs(cells) + unexecuted_cells(cells) + nb.wait_for_widgets()
    expect_none(problems, nb, tmp_path, "06")

    problems, shown = [], {}
    with screenshot_on_failure(nb, tmp_path, "06-controls"):
        for kind, (action, act) in ACTIONS.items():
            found, _, after = nb.change_live_picture(kind, action, act)
            if found:
                nb.screenshot(tmp_path, kind, nb.page.locator(".jp-Cell", has=nb.live_box(kind)))
            elif after is not None:
                shown[kind] = picture_digest(after)
            problems += found
        # the photo upload: the upload button's file chooser gets a generated JPEG
        client = lab.kernel_client(NB06)
        try:
            kernel_before = json.loads(kernel_eval(client, PROBE))
            found, before, after = nb.change_live_picture(
                UPLOAD,
                f"uploading {UPLOAD_NAME}",
                lambda box: choose_file(nb, box.locator(".widget-upload")),
            )
            kernel_after = json.loads(kernel_eval(client, PROBE))
        finally:
            client.stop_channels()
        if found:
            nb.screenshot(tmp_path, UPLOAD, nb.page.locator(".jp-Cell", has=nb.live_box(UPLOAD)))
        elif after is not None:
            shown[UPLOAD] = picture_digest(after)
        problems += found
    print(f"06: Run All and controls took {time.monotonic() - started:.0f} s")
    # the page shows the kernel's current picture; the upload changed the photo and P(dog)
    for kind, digest in shown.items():
        if shown_in_kernel(kernel_after, kind, digest) is None:
            problems.append(f"{kind}: the page's picture is no {kind}'s current picture")
    if UPLOAD in shown:
        old = shown_in_kernel(kernel_before, UPLOAD, picture_digest(before))
        new = shown_in_kernel(kernel_after, UPLOAD, shown[UPLOAD])
        if old is None or new is None or new["name"] != UPLOAD_NAME or new["p_dog"] == old["p_dog"]:
            problems.append(f"the upload did not change the photo and P(dog): {old} -> {new}")
        elif not 0 <= new["p_dog"] <= 1:
            problems.append(f"P(dog) = {new['p_dog']} after the upload")
    expect_none(problems, nb, tmp_path, "06-explorers")
