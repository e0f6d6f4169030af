"""What ``test_browser.py`` needs to look at the notebooks the way a student does.

* :class:`JupyterLab`: a real JupyterLab server started from this virtual environment on a free
  loopback port, token-protected, with its own settings, workspace, runtime and temporary folders.
  Its kernels are this environment's Python and inherit the test suite's environment
  (``TL_PROFILE=smoke`` ...). ``venv_on_path`` chooses between a student who activated the
  environment and one who started ``.venv/bin/jupyter lab`` without activating it.
* :func:`find_chromium` and :data:`CHROMIUM_ARGS`: the operating system's headless Chromium
  (Playwright's own browser download is not used).
* :class:`NotebookPage`: one notebook opened in JupyterLab in a browser tab: run all cells through
  the menu, read every cell's prompt and outputs from the page, act on widgets.
* The detectors, which read a page snapshot and return a list of problems (empty = fine):
  :func:`error_outputs`, :func:`unexecuted_cells`, :func:`widget_problems` and
  :meth:`NotebookPage.change_live_picture` (a control change must replace the picture in place).
* :func:`kernel_eval`: a read-only look into the kernel behind an open notebook (a second client
  of it); :func:`tensorboards` and :func:`stop_tensorboard`: the TensorBoards its ``%tensorboard``
  started, and stopping them for good.

The explorers of ``helpers.widgets`` mark their picture ``<img class="tl-live-picture
tl-live-picture--KIND">`` and their widget box ``tl-live--KIND``; an error of a redraw appears as
``.tl-live-error`` in the box. The page checks rely on that and on JupyterLab 4's DOM.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from jupyter_client import BlockingKernelClient
from playwright.sync_api import Locator, Page
from tensorboard import manager

#: Environment variable naming the Chromium binary to use.
CHROMIUM_ENV = "TL_CHROMIUM"
#: Where Debian's ``chromium`` package puts the browser.
DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: One line that says how to enable the browser tests.
ENABLE_HINT = (
    "browser tests need Chromium: `apt-get install chromium`, or set TL_CHROMIUM=/path/to/chromium"
)
#: Headless, no sandbox (root in CI), and no background connections: on a closed network
#: Chromium's own update/sync/metrics connections are refused and slow everything down.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: JupyterLab user settings of the test server: never save the executed notebooks, attach every
#: cell to the page (the checks read all of them), no news or update notifications.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
#: The venv's ``bin`` folder (``Scripts`` on Windows): where ``tensorboard`` lives.
VENV_BIN = Path(sys.executable).parent

TRACEBACK = "Traceback (most recent call last)"
#: The last line of an exception report: ``ValueError: ...``, ``SyntaxError: ...``,
#: ``UsageError: ...`` (IPython writes a wrong magic as stderr text, not as an error output),
#: ``KeyboardInterrupt``. A warning's line starts with its file name, so it does not match.
EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)(?::|$)"
)
STDERR = "application/vnd.jupyter.stderr"


def find_chromium() -> str | None:
    """The Chromium binary to use: ``$TL_CHROMIUM``, ``chromium`` on the PATH or Debian's path."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit
    found = shutil.which("chromium")
    if found:
        return found
    return DEFAULT_CHROMIUM if os.access(DEFAULT_CHROMIUM, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def path_without_venv(path: str) -> list[str]:
    """The entries of a PATH value without this virtual environment's ``bin`` folder."""
    kept = []
    for entry in path.split(os.pathsep):
        if not entry:
            continue
        try:
            if Path(entry).resolve() == VENV_BIN.resolve():
                continue
        except OSError:
            pass
        kept.append(entry)
    return kept


class JupyterLab:
    """A JupyterLab server of this virtual environment, for the duration of the tests.

    Args:
        home: An empty folder for the server's own folders (settings, workspaces, runtime, ...).
        root: The folder the server serves (the notebooks are opened relative to it).
        venv_on_path: ``True``: PATH starts with the venv's ``bin`` (the environment was
            activated). ``False``: PATH lacks it, as when ``.venv/bin/jupyter lab`` is started
            without activating the environment.
    """

    def __init__(self, home: Path, root: Path, *, venv_on_path: bool):
        self.home, self.root = home, root
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyterlab.log"
        self.env = self._environment(venv_on_path)
        self.process: subprocess.Popen | None = None

    @property
    def runtime_dir(self) -> Path:
        return self.home / "runtime"

    @property
    def temp_dir(self) -> Path:
        """The kernels' temporary folder (TensorBoard keeps its ``.tensorboard-info`` there)."""
        return self.home / "tmp"

    def _environment(self, venv_on_path: bool) -> dict[str, str]:
        env = dict(os.environ)
        folders = {
            "JUPYTER_CONFIG_DIR": "config",
            "JUPYTER_DATA_DIR": "data",  # no user kernelspec can replace this venv's python
            "JUPYTERLAB_SETTINGS_DIR": "settings",
            "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
            "JUPYTER_RUNTIME_DIR": "runtime",
            "IPYTHONDIR": "ipython",
            "TMPDIR": "tmp",
        }
        for name, folder in folders.items():
            (self.home / folder).mkdir(parents=True, exist_ok=True)
            env[name] = str(self.home / folder)
        for plugin, values in LAB_SETTINGS.items():
            path = self.home / "settings" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        entries = path_without_venv(env.get("PATH", ""))
        if venv_on_path:
            env["PATH"] = os.pathsep.join([str(VENV_BIN), *entries])
            env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
        else:
            env["PATH"] = os.pathsep.join(entries)
            env.pop("VIRTUAL_ENV", None)
        env.pop("MPLBACKEND", None)  # a student's kernel draws inline
        env.pop("JUPYTER_TOKEN", None)
        return env

    def start(self, timeout: float = 90) -> JupyterLab:
        command = [
            sys.executable,  # = .venv/bin/jupyter lab: the kernel is this venv's python
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.process.returncode}):\n{self.log()}")
            try:
                self.api("api/status")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log()}")

    def log(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def api(self, path: str):
        request = urllib.request.Request(
            f"{self.base_url}/{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def notebook_url(self, path: str, workspace: str) -> str:
        """The URL that opens ``path`` alone, in a fresh workspace of its own."""
        return f"{self.base_url}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def kernel_client(self, notebook_path: str) -> BlockingKernelClient:
        """A second client of the kernel behind an open notebook (for read-only probes)."""
        sessions = [s for s in self.api("api/sessions") if s["path"] == notebook_path]
        if len(sessions) != 1:
            raise RuntimeError(f"{len(sessions)} kernel sessions for {notebook_path}")
        client = BlockingKernelClient(
            connection_file=str(self.runtime_dir / f"kernel-{sessions[0]['kernel']['id']}.json")
        )
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=30)
        return client

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # the server shuts its kernels down first
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def kernel_eval(client: BlockingKernelClient, code: str, timeout: float = 60) -> str:
    """Run ``code`` in a kernel without touching the notebook; returns what it printed."""
    printed: list[str] = []

    def collect(msg):
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            printed.append("\n".join(msg["content"]["traceback"]))

    reply = client.execute_interactive(
        code, store_history=False, output_hook=collect, timeout=timeout
    )
    text = "".join(printed)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"kernel probe failed:\n{text}")
    return text


# --------------------------------------------------------------------------------------------
# Reading the page

#: Every cell of the notebook shown in the page: prompt, source and outputs as a student sees them.
_SNAPSHOT_JS = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const status = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status ?? '';
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].map((cell, index) => ({
    index,
    code: cell.classList.contains('jp-CodeCell'),
    prompt: (cell.querySelector('.jp-InputArea-prompt')?.textContent ?? '').trim(),
    source: cell.querySelector('.cm-content')?.innerText ?? '',
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(out => ({
      mime: out.dataset.mimeType ?? '',
      text: out.innerText,
      widget_error: out.querySelector('.jupyter-widgets-error-widget') !== null,
    })),
  }));
  return {status, cells};
}
"""

#: The live pictures and status line of the cell that shows the ``tl-live--KIND`` widget.
_LIVE_JS = """
kind => {
  const box = document.querySelector(`.jp-NotebookPanel:not(.lm-mod-hidden) .tl-live--${kind}`);
  const cell = box?.closest('.jp-Cell');
  if (!cell) return null;
  const pictures = [...cell.querySelectorAll('.jp-OutputArea img')].map(img => ({
    src: img.getAttribute('src') ?? '',
    live: img.classList.contains(`tl-live-picture--${kind}`),
    loaded: img.complete && img.naturalWidth > 0,
  }));
  const error = box.querySelector('.tl-live-error');
  return {pictures, error: error ? error.innerText : null, status: box.innerText};
}
"""


def _cell_label(cell: dict) -> str:
    first = cell["source"].strip().splitlines()[0][:70] if cell["source"].strip() else ""
    return f"cell {cell['index'] + 1} {cell['prompt']} `{first}`"


def error_outputs(cells: list[dict]) -> list[str]:
    """Outputs that report an exception.

    In JupyterLab 4 an error output and a stream written to stderr look alike: both are
    ``.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]``. Warnings (and
    TensorFlow's log lines) are stderr too and are not errors. What marks an exception is its text:
    a traceback header (any rendered text), or -- on stderr -- a last line naming an exception:
    ``SyntaxError: ...`` has no traceback header, a wrong ``%magic`` only prints ``UsageError:``.
    """
    problems = []
    for cell in cells:
        for output in cell["outputs"]:
            text = output["text"]
            lines = [line for line in text.strip().splitlines() if line.strip()]
            if TRACEBACK in text or (
                output["mime"] == STDERR and lines and EXCEPTION_LINE.match(lines[-1].strip())
            ):
                problems.append(f"{_cell_label(cell)}: {lines[-1] if lines else text[:200]}")
    return problems


def unexecuted_cells(cells: list[dict]) -> list[str]:
    """Code cells without an execution count (a Run All stops at the first exception)."""
    return [
        f"{_cell_label(cell)} has no execution count"
        for cell in cells
        if cell["code"] and not re.fullmatch(r"\[\d+\]:", cell["prompt"])
    ]


def widget_problems(cells: list[dict]) -> list[str]:
    """Widget views that did not render: still loading, model not found, or a view error."""
    problems = []
    for cell in cells:
        for output in cell["outputs"]:
            text = output["text"].strip()
            if text.startswith(("Loading widget...", "Error displaying widget")):
                problems.append(f"{_cell_label(cell)}: {text.splitlines()[0]}")
            elif output["widget_error"]:
                problems.append(f"{_cell_label(cell)}: a widget view failed (error widget)")
    return problems


class NotebookPage:
    """One notebook opened alone in JupyterLab in a browser tab.

    Args:
        page: A Playwright page of the shared browser.
        server: The JupyterLab server.
        path: The notebook's path relative to the server's root.
    """

    def __init__(self, page: Page, server: JupyterLab, path: str):
        self.page, self.server, self.path = page, server, path

    def open(self, timeout: float = 120) -> NotebookPage:
        workspace = re.sub(r"\W", "-", self.path)
        self.page.goto(self.server.notebook_url(self.path, workspace))
        # the kernel is attached and idle: the status bar says "Python 3 (ipykernel) | Idle"
        self.page.wait_for_function(
            """() => {
              const item = document.querySelector('.jp-StatusBar-TextItem[title^="Change kernel"]');
              const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
              return item !== null && item.textContent.endsWith('| Idle') && panel !== null
                && panel.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]');
            }""",
            timeout=timeout * 1000,
        )
        return self

    def snapshot(self) -> dict:
        return self.page.evaluate(_SNAPSHOT_JS)

    def cells(self) -> list[dict]:
        return self.snapshot()["cells"]

    def run_all(self, timeout: float) -> list[dict]:
        """Run → Run All Cells from the menu bar; wait until no cell is queued or running.

        Returns:
            The cells afterwards (see :meth:`cells`).
        """
        self.page.click("#jp-MainMenu .lm-MenuBar-itemLabel:text-is('Run')")
        self.page.click('li[data-command="runmenu:run-all"]')
        return self.wait_until_idle(timeout)

    def wait_until_idle(self, timeout: float, settle: float = 1.0) -> list[dict]:
        """Wait until the kernel is idle and no prompt shows ``[*]``, for ``settle`` seconds."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while True:
            snap = self.snapshot()
            busy = [c for c in snap["cells"] if "*" in c["prompt"]]
            if snap["status"] == "idle" and not busy:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return snap["cells"]
            else:
                quiet_since = None
            if time.monotonic() > deadline:
                where = _cell_label(busy[0]) if busy else f"kernel {snap['status']}"
                raise TimeoutError(f"{self.path} still running after {timeout:.0f} s: {where}")
            time.sleep(0.25)

    def wait_for_widgets(self, timeout: float = 30) -> list[str]:
        """Wait until no widget view says "Loading widget..."; return the widget problems."""
        deadline = time.monotonic() + timeout
        while True:
            problems = widget_problems(self.cells())
            loading = [p for p in problems if "Loading widget" in p]
            if not loading or time.monotonic() > deadline:
                return problems
            time.sleep(0.25)

    def cell(self, containing: str) -> Locator:
        """The one code cell whose source contains ``containing``."""
        cells = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").filter(
            has=self.page.locator(".cm-content", has_text=containing)
        )
        if cells.count() != 1:
            raise AssertionError(f"{cells.count()} cells contain {containing!r} in {self.path}")
        return cells

    def live(self, kind: str) -> dict | None:
        """The pictures of the ``kind`` widget's cell and its error line (``None``: no widget)."""
        return self.page.evaluate(_LIVE_JS, kind)

    def live_box(self, kind: str) -> Locator:
        return self.page.locator(f".jp-NotebookPanel:not(.lm-mod-hidden) .tl-live--{kind}")

    def change_live_picture(
        self, kind: str, action: str, act: Callable[[Locator], None], timeout: float = 60
    ) -> tuple[list[str], dict | None, dict | None]:
        """Change a control of a live picture; the one picture must be replaced in place.

        Args:
            kind: The widget's ``tl-live--KIND`` suffix.
            action: What ``act`` does, in words (for the problem messages).
            act: Acts on the widget box (clicks a button, selects an option, ...).
            timeout: How long the redraw may take.

        Returns:
            ``(problems, before, after)``: the problems (empty = fine) and :meth:`live` before
            and after.
        """
        before = self.live(kind)
        if before is None:
            return [f"{kind}: no `.tl-live--{kind}` widget in the page"], None, None
        problems = _picture_problems(kind, before, "before any change")
        if problems:
            return problems, before, None
        old = before["pictures"][0]["src"]
        act(self.live_box(kind))
        deadline = time.monotonic() + timeout
        after = before
        while time.monotonic() < deadline:
            after = self.live(kind)
            srcs = [p["src"] for p in after["pictures"]]
            if after["error"] or srcs != [old]:
                break
            time.sleep(0.25)
        self.wait_until_idle(timeout)
        after = self.live(kind)
        problems = _picture_problems(kind, after, f"after {action}")
        if after["error"]:
            problems.append(f"{kind}: after {action} the widget shows an error: {after['error']}")
        if [p["src"] for p in after["pictures"]] == [old]:
            problems.append(
                f"{kind}: the picture did not change within {timeout:.0f} s of {action}"
            )
        return problems, before, after

    def screenshot(self, folder: Path, name: str, element: Locator | None = None) -> Path:
        """Save a screenshot (of ``element``, or of the whole page) and return its path."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        try:
            if element is not None and element.count() == 1:
                element.screenshot(path=path, timeout=10_000)
            else:
                self.page.screenshot(path=path, full_page=True, timeout=10_000)
        except Exception as exc:  # a screenshot must not hide the failure it documents
            path = folder / f"{name}.txt"
            path.write_text(f"screenshot failed: {exc}")
        return path


def _picture_problems(kind: str, live: dict, when: str) -> list[str]:
    pictures = live["pictures"]
    marked = [p for p in pictures if p["live"]]
    if len(pictures) != 1:
        return [f"{kind}: {len(pictures)} pictures {when} (expected one picture, redrawn in place)"]
    if len(marked) != 1:
        return [f"{kind}: the picture {when} is not a `tl-live-picture--{kind}` image"]
    if not marked[0]["loaded"] or not marked[0]["src"].startswith("data:image/"):
        return [f"{kind}: the picture {when} did not load"]
    return []


# --------------------------------------------------------------------------------------------
# TensorBoard started by a notebook's `%tensorboard`


def tensorboards(server: JupyterLab, attempts: int = 5) -> list:
    """``tensorboard.manager.get_all()`` of the server's kernels (their TMPDIR is the server's).

    ``get_all`` lists the info folder, then opens each file: a TensorBoard that exits in between
    (as when :func:`stop_tensorboard` waits for one to go) removes its file, and ``get_all``
    raises ``FileNotFoundError``. The listing is then simply taken again.
    """
    saved = tempfile.tempdir
    tempfile.tempdir = str(server.temp_dir)
    try:
        for _ in range(attempts - 1):
            try:
                return manager.get_all()
            except FileNotFoundError:
                time.sleep(0.1)
        return manager.get_all()
    finally:
        tempfile.tempdir = saved


def process_state(pid: int) -> str | None:
    """The state letter in ``/proc`` (``"Z"``: exited, not yet reaped); ``None``: no process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def process_command(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_tensorboard(server: JupyterLab, info, timeout: float = 30) -> list[str]:
    """SIGTERM a TensorBoard; return what is still left of it after ``timeout`` (empty = gone)."""
    if process_state(info.pid) not in (None, "Z"):
        os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while True:
        left = []
        if info.pid in [i.pid for i in tensorboards(server)]:
            left.append(f"tensorboard.manager.get_all() still lists pid {info.pid}")
        if process_state(info.pid) not in (None, "Z"):
            left.append(f"process {info.pid} is still running")
        if port_open(info.port):
            left.append(f"port {info.port} still accepts connections")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.25)
