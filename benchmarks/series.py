"""Time every notebook of the series with one command, in seconds and in units of U.

Run it from the repository root (a measurement, not a test)::

    python benchmarks/series.py                      # lesson profile, notebooks 01…08 (~10–15 min)
    python benchmarks/series.py --fresh              # the same with an empty output folder
    python benchmarks/series.py --profile smoke      # the test suite's quick profile
    python benchmarks/series.py --notebooks 05 07 --u-after
    python benchmarks/series.py --student            # the students' copies: no exercise solutions

It prints a Markdown table (notebook, wall s, wall / U, wall / U_graph, peak RSS MiB, totals)
with the machine, the load average, the date and the git commit, and writes it to
``benchmarks/results/<profile>-<date>.md`` (git-ignored; ``--output`` chooses another file).

**U**, the unit of the series' time figures, is one MobileNetV2 forward pass
(``include_top=False``, ImageNet weights, 224 px, batch 32) over 3000 photos. The photos are
decoded beforehand: 640 real photos (``data.load_images``) are decoded once and cycled, so U
measures the network, not JPEG decoding. The same pass is timed two ways, one after the other:

* **U**: ``model(batch)`` batch by batch, the forward pass as a notebook writes it (Keras 3
  runs it eagerly, layer by layer). The issues that set the series' targets put U at "about
  65–80 s on these 2-core machines"; of the two, this is the one that takes that long here.
* **U_graph**: the same batches through Keras' compiled graph (``predict_on_batch``), about
  2.2x faster: the floor of any forward pass, and the stricter unit.

Both are measured in a fresh process right before the notebooks (``--u-after``: once more right
after them, which shows how the machine's load drifted); the first batch of each shape is run
once in each mode before the clock starts (graph tracing). With ``--u-photos N`` fewer photos
are timed and the times are scaled to 3000 photos.

**Notebooks** run in order (01…08 by default) in the profile given by ``--profile`` or
``TL_PROFILE``, each in a fresh kernel whose working folder is ``notebooks/``, cells tagged
``nbval-skip`` skipped as in the test suite — through :func:`helpers.classroom.execute`, the code
that executes the HTML edition. Wall time: kernel start to kernel shutdown. Peak RSS: that of the
kernel process. Every notebook runs in a child process of this script, which starts the kernel
and reaps it when it shuts down; the child then reads ``getrusage(RUSAGE_CHILDREN).ru_maxrss``,
the largest resident set of its reaped children, i.e. of the kernel (the child's own memory is
not counted). ``/usr/bin/time -v`` on the same child reports the same number. A failing cell
stops the run with a message that names the notebook and the cell.

In the series, notebooks 06 and 08 load the model that 05 saved and 07 loads the features 05
stored on disk; run in order they do exactly that. By default the notebooks use the normal output
folder (``TL_OUTPUT_DIR``, else the project's ``models/``, ``logs/`` and ``cache/``), so a
later run may find the disk caches of an earlier one; ``--fresh`` gives the run an empty
temporary output folder (removed at the end), so every cache is computed inside the run.

By default every cell runs, the exercises' model solutions included (the teacher's notebook).
``--student`` runs each notebook's student copy instead (:func:`helpers.classroom.student_copy`:
solutions replaced by placeholders, self-checks answering "not filled in"): the lecture as a
student follows it in class, before trying the exercises.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
RESULTS_DIR = REPO / "benchmarks" / "results"
PROFILES = ("lesson", "smoke")
#: U: photos per forward pass, the batch size, and how many photos are decoded and cycled.
U_PHOTOS, U_BATCH, U_DECODED = 3000, 32, 640
COLUMNS = ("notebook", "wall s", "wall / U", "wall / U_graph", "peak RSS MiB")


# --------------------------------------------------------------------------------------------
# Child side: U, or one notebook
# --------------------------------------------------------------------------------------------


def _mib(max_rss: int) -> float:
    """``ru_maxrss`` in MiB: KiB on Linux, bytes on macOS."""
    return max_rss / 2**20 if sys.platform == "darwin" else max_rss / 2**10


def measure_u(n_photos: int) -> dict:
    """Time MobileNetV2's forward pass over ``n_photos`` decoded photos, eagerly (``model(x)``)
    and compiled (``predict_on_batch``); return both scaled to 3000 photos (U and U_graph)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from helpers import backbone, data

    info = data.inspect_dataset(check_images=False, verbose=False)
    cats, dogs = (info.train.files[name] for name in info.class_names)
    paths = [p for pair in zip(cats, dogs, strict=False) for p in pair][: min(U_DECODED, n_photos)]
    photos = data.load_images(paths) / 127.5 - 1.0  # MobileNetV2's preprocess_input
    model = backbone.load_backbone("imagenet")
    sizes = [min(U_BATCH, n_photos - start) for start in range(0, n_photos, U_BATCH)]

    def eager(batch):
        return model(batch, training=False)

    def timed(forward) -> float:
        for size in set(sizes):  # run each batch shape once before the clock starts
            forward(photos[:size])
        start_time = time.perf_counter()
        for i, size in enumerate(sizes):
            # 640 = 20 batches of 32 (or all photos when fewer are timed): no batch wraps around
            first = i * U_BATCH % len(photos)
            forward(photos[first : first + size])
        return time.perf_counter() - start_time

    seconds, graph_seconds = timed(eager), timed(model.predict_on_batch)
    return {
        "seconds": seconds,
        "graph_seconds": graph_seconds,
        "photos": n_photos,
        "decoded": len(photos),
        "u_s": seconds * U_PHOTOS / n_photos,
        "u_graph_s": graph_seconds * U_PHOTOS / n_photos,
    }


def run_notebook(path: Path, timeout: int, student: bool = False) -> dict:
    """Execute one notebook (or its student copy) in a fresh kernel; wall time and peak RSS."""
    import nbformat

    from helpers import classroom

    try:
        notebook = None
        if student:
            notebook = classroom.student_copy(nbformat.read(path, as_version=4), path.name)
        _, seconds = classroom.execute(path, timeout, notebook=notebook)
    except classroom.ClassroomError as err:
        return {"error": str(err)}
    kernel_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if kernel_rss == 0:  # the kernel was not reaped by this process: no number to report
        return {"error": f"{path.name}: the kernel's peak RSS could not be read"}
    return {"wall_s": seconds, "peak_rss_mib": _mib(kernel_rss)}


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------


class SeriesError(RuntimeError):
    """The run cannot go on; the message says why (a notebook and its cell, or a bad option)."""


def _child(args: list[str], env: dict[str, str]) -> dict:
    """Run this script in a child process with ``args``; return the JSON it wrote."""
    with tempfile.TemporaryDirectory(prefix="tl-series-") as tmp:
        result = Path(tmp) / "result.json"
        command = [sys.executable, str(Path(__file__).resolve()), *args, f"--result={result}"]
        completed = subprocess.run(command, cwd=REPO, env=env)
        if not result.is_file():
            raise SeriesError(
                f"the child process {' '.join(args)} exited with code {completed.returncode} "
                "without a result (its output is above)"
            )
        return json.loads(result.read_text(encoding="utf-8"))


def measure_u_in_child(n_photos: int, env: dict[str, str]) -> dict:
    print(f"U: MobileNetV2 forward pass over {n_photos} photos …", flush=True)
    u = _child([f"--child-u={n_photos}"], env)
    print(f"   U = {u['u_s']:.1f} s, U_graph = {u['u_graph_s']:.1f} s", flush=True)
    return u


def time_notebooks(
    notebooks: list[Path], env: dict[str, str], timeout: int, student: bool = False
) -> list[dict]:
    """Run every notebook in its own child process, in order; stop at the first failure.

    Raises:
        SeriesError: A notebook failed; the message names it and the cell.
    """
    results = []
    for path in notebooks:
        print(f"{path.name} …", flush=True)
        flags = ["--student"] if student else []
        result = _child([f"--child-notebook={path}", f"--timeout={timeout}", *flags], env)
        if "error" in result:
            raise SeriesError(f"stopped at {path.name}: {result['error']}")
        results.append({"notebook": path.stem, **result})
        print(f"   {result['wall_s']:.0f} s, peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)
    return results


def make_rows(results: list[dict], u_s: float, u_graph_s: float) -> list[list[str]]:
    """Table rows: one per notebook, then the total (peak RSS: the largest)."""

    def row(name: str, wall_s: float, rss_mib: float) -> list[str]:
        in_u, in_u_graph = f"{wall_s / u_s:.2f}", f"{wall_s / u_graph_s:.2f}"
        return [name, f"{wall_s:.0f}", in_u, in_u_graph, f"{rss_mib:.0f}"]

    rows = [row(r["notebook"], r["wall_s"], r["peak_rss_mib"]) for r in results]
    total = sum(r["wall_s"] for r in results)
    peak = max(r["peak_rss_mib"] for r in results)
    return [*rows, row("total (RSS: largest)", total, peak)]


def markdown(rows: list[list[str]], columns: tuple[str, ...] = COLUMNS) -> str:
    """A Markdown table with padded columns (benchmark.py uses it with its own columns)."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(columns), sep, *(line(r) for r in rows)])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_state() -> str:
    """``<short commit>``, plus the notebooks and helpers that differ from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "notebooks", "helpers"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        return "unknown (no git)"
    if not commit:
        return "unknown (not a git checkout)"
    if changed:
        names = ", ".join(line[3:] for line in changed)
        return f"{commit}, with uncommitted changes in {names}"
    return commit


def machine_lines(
    load_before: tuple, load_after: tuple, date: dt.datetime, commit: str
) -> list[str]:
    """The load average, the machine, the date and the commit: where a measurement comes from."""

    def load(values: tuple) -> str:
        return " / ".join(f"{v:.2f}" for v in values)

    return [
        f"Load average (1 / 5 / 15 min) before: {load(load_before)}; after: {load(load_after)}.",
        f"Machine: {os.cpu_count()} CPUs, {cpu_model()}; Python {platform.python_version()}, "
        f"TensorFlow {_tensorflow_version()}.",
        f"Date: {date:%Y-%m-%d %H:%M}; git commit {commit}.",
    ]


def describe_run(u: dict, u_after: dict | None, run: dict) -> str:
    scaled = (
        "" if u["photos"] == U_PHOTOS else f" (timed on {u['photos']} photos, scaled to {U_PHOTOS})"
    )
    after = (
        ""
        if u_after is None
        else f" ({u_after['u_s']:.1f} s and {u_after['u_graph_s']:.1f} s right after them)"
    )
    return "\n".join(
        [
            f"U = {u['u_s']:.1f} s and U_graph = {u['u_graph_s']:.1f} s right before the "
            f"notebooks{after}: one MobileNetV2 forward pass (include_top=False, ImageNet "
            f"weights, 224 px, batch {U_BATCH}) over {U_PHOTOS} photos{scaled}, {u['decoded']} "
            "real photos decoded beforehand and cycled, in a fresh process; U runs model(batch) "
            "batch by batch (eagerly, as a notebook writes it), U_graph the same batches "
            "through the compiled graph (predict_on_batch).",
            f"Profile {run['profile']}; {run['copies']}; output folder: {run['output_dir']}. "
            "Each notebook in a fresh kernel (working folder notebooks/, cells tagged nbval-skip "
            "skipped); wall time from kernel start to kernel shutdown; peak RSS of the kernel "
            "process. Whole run "
            f"{run['seconds']:.0f} s.",
            *run["machine"],
        ]
    )


def _tensorflow_version() -> str:
    try:
        return importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def resolve_notebooks(given: list[str] | None) -> list[Path]:
    """Paths or two-digit numbers (``05``) -> notebook files, in the series' order."""
    available = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not given:
        if not available:
            raise SeriesError(f"no notebooks in {NOTEBOOK_DIR}")
        return available
    paths = []
    for item in given:
        matches = [p for p in available if p.name.startswith(f"{item}_")]
        path = matches[0] if len(matches) == 1 else Path(item)
        if path.suffix != ".ipynb" or not path.is_file():
            names = ", ".join(p.name[:2] for p in available)
            raise SeriesError(f"no such notebook: {item} (give a path or a number: {names})")
        paths.append(path.resolve())
    return sorted(paths, key=lambda p: p.name)


def default_output(profile: str, today: dt.date) -> Path:
    """``benchmarks/results/<profile>-<date>.md``; ``-2``, ``-3`` … if that file exists."""
    base = RESULTS_DIR / f"{profile}-{today.isoformat()}"
    path, n = base.with_suffix(".md"), 2
    while path.exists():
        path, n = base.with_name(f"{base.name}-{n}.md"), n + 1
    return path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--notebooks",
        nargs="+",
        metavar="NB",
        help="notebook files or numbers, e.g. 05 07 (default: all, 01…08); always run in order",
    )
    parser.add_argument("--profile", choices=PROFILES, help="default: $TL_PROFILE, else lesson")
    parser.add_argument(
        "--output",
        type=Path,
        help="Markdown file (default: benchmarks/results/<profile>-<date>.md)",
    )
    parser.add_argument(
        "--u-photos",
        type=int,
        default=U_PHOTOS,
        metavar="N",
        help=f"photos timed for U, scaled to {U_PHOTOS} (default {U_PHOTOS})",
    )
    parser.add_argument("--u-after", action="store_true", help="measure U again at the end")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="run with an empty temporary output folder: every disk cache is computed in the run",
    )
    parser.add_argument(
        "--timeout", type=int, default=1800, metavar="S", help="time limit per cell (1800 s)"
    )
    parser.add_argument(
        "--student",
        action="store_true",
        help="run the students' copies (exercise solutions replaced by placeholders)",
    )
    parser.add_argument("--child-u", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-notebook", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profile is None:
        args.profile = os.environ.get("TL_PROFILE", "").strip().lower() or "lesson"
        if args.profile not in PROFILES:
            parser.error(f"TL_PROFILE={args.profile!r}: use one of {', '.join(PROFILES)}")
    if args.u_photos < 1:
        parser.error("--u-photos must be a positive number")
    if args.timeout < 1:
        parser.error("--timeout must be a positive number of seconds")
    return args


def run_series(args: argparse.Namespace) -> str:
    """Measure U, time the notebooks, and return the Markdown text (also printed)."""
    notebooks = resolve_notebooks(args.notebooks)
    env = {**os.environ, "TL_PROFILE": args.profile}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start, now, commit = time.perf_counter(), dt.datetime.now(), git_state()
    with tempfile.TemporaryDirectory(prefix="tl-series-output-") as fresh_dir:
        if args.fresh:
            env["TL_OUTPUT_DIR"] = fresh_dir
            output_dir = "fresh (an empty temporary folder: every disk cache computed in the run)"
        else:
            output_dir = env.get("TL_OUTPUT_DIR") or f"{REPO} (models/, logs/, cache/)"
        load_before = os.getloadavg()
        u = measure_u_in_child(args.u_photos, env)
        results = time_notebooks(notebooks, env, args.timeout, args.student)
        u_after = measure_u_in_child(args.u_photos, env) if args.u_after else None
        load_after = os.getloadavg()
    run = {
        "profile": args.profile,
        "output_dir": output_dir,
        "copies": (
            "student copies (exercise solutions replaced by placeholders)"
            if args.student
            else "every cell, the exercises' model solutions included"
        ),
        "seconds": time.perf_counter() - start,
        "machine": machine_lines(load_before, load_after, now, commit),
    }
    rows = make_rows(results, u["u_s"], u["u_graph_s"])
    return markdown(rows) + "\n\n" + describe_run(u, u_after, run)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child_u is not None or args.child_notebook is not None:  # child
        os.environ["TL_PROFILE"] = args.profile
        if args.child_u is not None:
            result = measure_u(args.child_u)
        else:
            result = run_notebook(args.child_notebook, args.timeout, args.student)
        args.result.write_text(json.dumps(result), encoding="utf-8")
        return 1 if "error" in result else 0
    try:
        text = run_series(args)
    except SeriesError as err:
        print(f"series.py: {err}", file=sys.stderr)
        return 1
    output = args.output or default_output(args.profile, dt.date.today())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text + "\n", encoding="utf-8")
    print(f"\n{text}\n\nWritten to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
