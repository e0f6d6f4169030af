"""Classroom tools: student copies, teacher notes, an executed HTML edition, and Colab badges.

A teacher's tool for the whole series, not used inside the notebooks (the first exercises it hands
out are those of ``01_data_loading.ipynb``). The command line, run from the repository root::

    python -m helpers.classroom student OUT_DIR [--notebooks NB ...]
    python -m helpers.classroom teacher OUT_DIR [--notebooks NB ...]
    python -m helpers.classroom html OUT_DIR [--notebooks NB ...] [--timeout S]
    python -m helpers.classroom badges [--check] [--notebooks NB ...]

The commands rely on the notebooks' cell tags:

* ``solution`` (code): the model solution of an exercise. It assigns the answer variables at top
  level; its first line is a comment such as ``# 2. feladat – megoldás``. In a student copy it
  becomes a placeholder that assigns ``None`` to the same names, so the copy still runs (and its
  self-check prints "még nincs kitöltve").
* ``self-check`` (code): calls :func:`helpers.exercises.check`; kept in student copies.
* ``model-answer`` (markdown): the model answer of a conceptual question; removed from student
  copies, collected into the teacher notes.
* ``check`` (section checks) and ``nbval-skip`` (cells the test suite and the HTML run skip).

``html`` executes each notebook in a fresh kernel (working folder ``notebooks/``) in the current
profile (``lesson`` unless ``TL_PROFILE`` says otherwise) and writes standalone HTML pages: figures
are embedded as ``data:`` URIs, widgets are stored in their state at the end of the run, and the
explorers' static first views are ordinary image outputs, so they show without a kernel.

``badges`` regenerates each notebook's "Open in Colab" link and its first code cell (the Colab
install cell) from the one place the repository address lives: ``[project.urls] Repository`` in
``pyproject.toml`` (or, for an installed package, its metadata).
"""

from __future__ import annotations

import argparse
import ast
import copy
import html
import importlib.metadata
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter

from helpers import config

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 has no TOML reader; _repository_from_pyproject reads the one key by regex
    tomllib = None

#: The distribution name of the package (``[project] name``).
DISTRIBUTION = "helpers"
#: Cell tags: model solution (code), model answer (markdown), cells that are not executed.
SOLUTION, SELF_CHECK, MODEL_ANSWER = "solution", "self-check", "model-answer"
SKIP = "nbval-skip"
#: The comment a student copy puts in place of a model solution.
PLACEHOLDER_HINT = "# Írd ide a megoldásodat, majd futtasd a lenti ellenőrző cellát."
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
#: A badge: an image link with the Colab badge image or to a Colab address.
BADGE_PATTERN = re.compile(
    r"\[!\[[^\]]*\]\(" + re.escape(BADGE_IMAGE) + r"\)\]\([^)]*\)"
    r"|\[!\[[^\]]*\]\([^)]*\)\]\(https://colab\.research\.google\.com/[^)]*\)"
)
#: Per-cell time limit of ``html`` in seconds (the test suite's nbval limit).
DEFAULT_TIMEOUT = 1800

_CHECKOUT = Path(__file__).resolve().parent.parent
_EXERCISE_NUMBER = re.compile(r"#\s*(\d+)\.\s*feladat")


class ClassroomError(RuntimeError):
    """A classroom command cannot go on; the message says which file or cell and what to do."""


# -- the repository address ----------------------------------------------------------------------


def _repository_from_toml(text: str) -> str | None:
    return tomllib.loads(text).get("project", {}).get("urls", {}).get("Repository")


def _repository_from_text(text: str) -> str | None:
    section = re.search(r"^\[project\.urls\][ \t]*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = section and re.search(r'^Repository\s*=\s*"([^"]+)"', section.group(1), re.M)
    return found.group(1) if found else None


def _repository_from_metadata() -> str | None:
    try:
        metadata = importlib.metadata.metadata(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in metadata.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip()
    return None


def repository_url() -> str:
    """Return the repository address, ``[project.urls] Repository`` of ``pyproject.toml``.

    Introduced in ``01_data_loading.ipynb`` (its Colab badge). Read from ``pyproject.toml`` in a
    checkout, from the installed package's metadata (``Project-URL``) otherwise.

    Raises:
        ClassroomError: Neither has the address.
    """
    pyproject = _CHECKOUT / "pyproject.toml"
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        url = _repository_from_toml(text) if tomllib else _repository_from_text(text)
        where = str(pyproject)
    else:
        url = _repository_from_metadata()
        where = f"a(z) {DISTRIBUTION} csomag metaadatai (Project-URL)"
    if not url:
        raise ClassroomError(
            f"Nem találom a repó címét ({where}). Írd be a pyproject.toml [project.urls] részébe: "
            'Repository = "https://github.com/<tulajdonos>/<repó>", és telepítsd újra a csomagot.'
        )
    return url


def colab_url(repository: str, filename: str) -> str:
    """Return the "Open in Colab" address of ``notebooks/<filename>`` on the ``main`` branch.

    Introduced in ``01_data_loading.ipynb``.
    """
    found = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repository)
    if not found:
        raise ClassroomError(
            "A Colab csak GitHubról nyit meg notebookot: a pyproject.toml Repository címe "
            f"https://github.com/<tulajdonos>/<repó> alakú legyen (most: {repository!r})."
        )
    owner, repo = found.groups()
    return f"https://colab.research.google.com/github/{owner}/{repo}/blob/main/notebooks/{filename}"


def badge_markdown(repository: str, filename: str) -> str:
    """Return the Markdown of a notebook's "Open in Colab" badge."""
    return f"[![Megnyitás Colabban]({BADGE_IMAGE})]({colab_url(repository, filename)})"


def install_cell(repository: str) -> str:
    """Return the source of the Colab install cell, the first code cell of every notebook.

    Introduced in ``01_data_loading.ipynb``. In Colab it installs the package with its runtime
    dependencies straight from the repository; anywhere else it does nothing.
    """
    return (
        "# Colabban ez a cella telepíti a sorozat `helpers` csomagját a függőségeivel együtt.\n"
        "# Helyben (JupyterLab) nem csinál semmit: ott a `pip install -r requirements.txt` már "
        "telepítette.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install -q "{DISTRIBUTION} @ git+{repository}"'
    )


def _with_badge(source: str, badge: str) -> str:
    if BADGE_PATTERN.search(source):
        return BADGE_PATTERN.sub(lambda _match: badge, source)
    title, _, rest = source.partition("\n")
    return f"{title}\n\n{badge}" + (f"\n\n{rest.lstrip()}" if rest.strip() else "")


def apply_badges(nb: nbformat.NotebookNode, filename: str, repository: str) -> list[str]:
    """Bring a notebook's Colab badge and install cell in line with the templates, in place.

    Introduced in ``01_data_loading.ipynb``. The badge is in the first markdown cell; the install
    cell is the first code cell (recognised by ``google.colab``; inserted if missing).

    Returns:
        What was out of line (empty if nothing).
    """
    problems = []
    markdown = next((cell for cell in nb.cells if cell.cell_type == "markdown"), None)
    if markdown is None:
        raise ClassroomError(f"{filename}: nincs markdown cella, amelybe a jelvény kerülhetne.")
    source = _with_badge(markdown.source, badge_markdown(repository, filename))
    if source != markdown.source:
        problems.append("a Colab-jelvény hiányzik, vagy nem ide mutat")
        markdown.source = source
    template = install_cell(repository)
    first_code = next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"), None)
    if first_code is not None and "google.colab" in nb.cells[first_code].source:
        if nb.cells[first_code].source != template:
            problems.append("az első kódcella (a Colab-telepítő) eltér a sablontól")
            nb.cells[first_code].source = template
    else:
        problems.append("nincs Colab-telepítő cella (az első kódcella)")
        where = first_code if first_code is not None else nb.cells.index(markdown) + 1
        nb.cells.insert(where, nbformat.v4.new_code_cell(template))
    return problems


def sync_badges(notebooks: list[Path], *, check: bool = False) -> list[str]:
    """Regenerate (or, with ``check``, only compare) every notebook's badge and install cell.

    Introduced in ``01_data_loading.ipynb``.

    Returns:
        ``"<file>: <problem>"`` for every mismatch found (fixed on disk unless ``check``).
    """
    repository = repository_url()
    problems = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        found = apply_badges(nb, path.name, repository)
        problems += [f"{path.name}: {problem}" for problem in found]
        if found and not check:
            nbformat.write(nb, path)
    return problems


# -- student copies and teacher notes ------------------------------------------------------------


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _without_magics(source: str) -> str:
    """Python text of a cell: ``%magic`` and ``!shell`` lines become ``pass``."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        magic = stripped.startswith(("%", "!"))
        lines.append(line[: len(line) - len(stripped)] + "pass" if magic else line)
    return "\n".join(lines)


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for item in target.elts for name in _target_names(item)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []  # attributes and subscripts bind no new name


def _module_scope(node: ast.AST):
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            yield child
            yield from _module_scope(child)


def assigned_names(source: str) -> list[str]:
    """Names a code cell assigns at module level (``=``, ``+=``, annotated), in source order.

    Introduced in ``01_data_loading.ipynb``. Assignments inside functions and classes do not
    count; those inside top-level ``if``/``for``/``with``/``try`` blocks do.

    Raises:
        SyntaxError: The cell is not valid Python.
    """
    names = []
    for node in _module_scope(ast.parse(_without_magics(source))):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        names += [name for target in targets for name in _target_names(target)]
    return list(dict.fromkeys(names))


def placeholder(source: str) -> str:
    """The student copy's stand-in for a solution cell: a comment and ``name = None`` lines.

    Introduced in ``01_data_loading.ipynb``.
    """
    lines = []
    number = _EXERCISE_NUMBER.match(source.lstrip())
    if number:
        lines.append(f"# {number.group(1)}. feladat – a te megoldásod")
    lines.append(PLACEHOLDER_HINT)
    lines += [f"{name} = None" for name in assigned_names(source)]
    return "\n".join(lines)


def student_copy(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """Return the students' version of a notebook (the original is not changed).

    Introduced in ``01_data_loading.ipynb``. Solution cells become placeholders, model answers are
    removed, outputs and execution counts are stripped; all other cells and metadata stay.

    Args:
        nb: The notebook.
        name: Its file name, for messages.
    """
    result = copy.deepcopy(nb)
    cells = []
    for index, cell in enumerate(result.cells):
        tags = _tags(cell)
        if MODEL_ANSWER in tags:
            continue
        if SOLUTION in tags:
            if cell.cell_type != "code":
                raise ClassroomError(
                    f"{name}, {index + 1}. cella: a '{SOLUTION}' címke kódcellára való; "
                    f"egy markdown mintaválasz címkéje '{MODEL_ANSWER}'."
                )
            try:
                cell.source = placeholder(cell.source)
            except SyntaxError as err:
                raise ClassroomError(
                    f"{name}, {index + 1}. cella: a megoldás nem érvényes Python ({err.msg}, "
                    f"{err.lineno}. sor)."
                ) from None
            cell.metadata["tags"] = [tag for tag in tags if tag != SOLUTION]
            if not cell.metadata["tags"]:
                del cell.metadata["tags"]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    result.cells = cells
    result.metadata.pop("widgets", None)  # widget state is output, too
    return result


#: The heading that opens every notebook's exercise section (the notebook's last section).
EXERCISES_HEADING = "## Feladatok"


def exercises_start(nb: nbformat.NotebookNode, name: str = "notebook") -> int:
    """Index of the cell that opens the exercise section (the one with ``## Feladatok``).

    Introduced in ``01_data_loading.ipynb``. Every exercise cell (solution, self-check, model
    answer) comes after it, and the section is the notebook's tail: the student copy differs from
    the original only from here on.

    Raises:
        ClassroomError: No such heading, or an exercise cell before it.
    """
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and any(
            line.strip() == EXERCISES_HEADING for line in cell.source.splitlines()
        ):
            early = [
                i + 1
                for i, c in enumerate(nb.cells[:index])
                if {SOLUTION, SELF_CHECK, MODEL_ANSWER} & set(_tags(c))
            ]
            if early:
                raise ClassroomError(
                    f"{name}: a(z) {early} cella feladatcella, de a „{EXERCISES_HEADING}” "
                    "fejezet előtt áll."
                )
            return index
    raise ClassroomError(f"{name}: nincs „{EXERCISES_HEADING}” fejezet.")


def student_then_teacher(
    nb: nbformat.NotebookNode, name: str = "notebook"
) -> nbformat.NotebookNode:
    """The student copy followed by the original's exercise section: both paths in one run.

    Introduced for the test suite (``tests/test_notebooks_run.py``). Executing it runs the lesson
    once, then the student copy's exercise cells exactly as a student gets them (placeholders set
    to ``None``, self-checks that must not crash), then the model solutions with their
    self-checks (which fail under the test suite if a solution is wrong). The first part *is* the
    student copy, cell for cell.
    """
    start = exercises_start(nb, name)
    both = student_copy(nb, name)
    teacher = copy.deepcopy(nb.cells[start:])
    for index, cell in enumerate(teacher):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if "id" in cell:  # the copies must not repeat the student part's cell ids
            cell.id = f"teacher-{index}-{cell.id}"[:64]
    both.cells = both.cells + teacher
    return both


def _protected_folders(notebooks: list[Path]) -> set[Path]:
    return {_CHECKOUT / "notebooks"} | {path.resolve().parent for path in notebooks}


def write_student_copies(out_dir: str | Path, notebooks: list[Path]) -> list[Path]:
    """Write the student copy of every notebook into ``out_dir`` (same file names).

    Introduced in ``01_data_loading.ipynb``.

    Raises:
        ClassroomError: ``out_dir`` is a notebook folder (or inside one): the originals would be
            overwritten.
    """
    out = Path(out_dir).resolve()
    for folder in _protected_folders(notebooks):
        if out == folder or folder in out.parents:
            raise ClassroomError(
                f"A diákváltozatok mappája ({out}) nem lehet a(z) {folder} mappa, és nem lehet "
                "benne: felülírná vagy összekeverné őket az eredetiekkel. Adj meg egy másik "
                "mappát, például: python -m helpers.classroom student diak/"
            )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        target = out / path.name
        nbformat.write(student_copy(nbformat.read(path, as_version=4), path.name), target)
        written.append(target)
    return written


@dataclass
class Exercise:
    """One exercise of a notebook as the teacher notes show it.

    Attributes:
        text: The markdown cells just before the solution (or the model answer).
        solutions: Sources of its "solution" cells.
        model_answers: ``(cell_type, source)`` of its "model-answer" cells.
    """

    text: list[str]
    solutions: list[str] = field(default_factory=list)
    model_answers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def label(self) -> str | None:
        for source in self.solutions:
            number = _EXERCISE_NUMBER.match(source.lstrip())
            if number:
                return f"{number.group(1)}. feladat"
        return None


def _after_last_heading(text: list[str], source: str) -> list[str]:
    """Extend an exercise's text with a markdown cell; a heading starts the text afresh.

    So the summary before "## Feladatok" does not end up in the first exercise's text.
    """
    lines = source.splitlines()
    headings = [i for i, line in enumerate(lines) if line.lstrip().startswith("#")]
    if not headings:
        return [*text, source]
    return ["\n".join(lines[headings[-1] :])]


def exercises_of(nb: nbformat.NotebookNode) -> list[Exercise]:
    """Group a notebook's "solution" and "model-answer" cells into exercises, in order.

    Introduced in ``01_data_loading.ipynb``. A solution cell starts a new exercise whose text is
    the run of markdown cells right before it, from the last heading on; a model answer joins
    the current exercise unless new markdown text came in between, in which case it is an
    exercise of its own.
    """
    found: list[Exercise] = []
    text: list[str] = []
    current = None
    for cell in nb.cells:
        tags = _tags(cell)
        if SOLUTION in tags:
            current = Exercise(text=text, solutions=[cell.source])
            found.append(current)
            text = []
        elif MODEL_ANSWER in tags:
            if text or current is None:
                current = Exercise(text=text)
                found.append(current)
                text = []
            current.model_answers.append((cell.cell_type, cell.source))
        elif cell.cell_type == "markdown":
            text = _after_last_heading(text, cell.source)
        else:
            text = []
    return found


def _fence(source: str, language: str = "python") -> str:
    longest = max((len(run) for run in re.findall(r"`+", source)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{source.rstrip()}\n{ticks}"


def _title(nb: nbformat.NotebookNode) -> str | None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def teacher_notes(nb: nbformat.NotebookNode, name: str) -> str:
    """Return the Hungarian teacher notes of one notebook as Markdown.

    Introduced in ``01_data_loading.ipynb``: for each exercise its text (quoted), the model
    solution and the model answers.
    """
    lines = [
        f"# Tanári jegyzet – {_title(nb) or name}",
        "",
        f"Forrás: `notebooks/{name}`. A diákváltozatból kimaradó mintamegoldások és mintaválaszok.",
        "",
    ]
    found = exercises_of(nb)
    if not found:
        lines.append(
            "Ebben a notebookban nincs mintamegoldásos feladat (nincs `solution` vagy "
            "`model-answer` címkéjű cella)."
        )
    for number, exercise in enumerate(found, 1):
        lines += [f"## {exercise.label or f'{number}. feladat'}", ""]
        text = "\n\n".join(exercise.text).strip()  # quoted: its headings stay inside
        quoted = "\n".join(f"> {line}".rstrip() for line in text.splitlines())
        lines += [quoted or "_(A feladat szövege az előző feladatnál olvasható.)_", ""]
        for source in exercise.solutions:
            lines += ["### Mintamegoldás", "", _fence(source), ""]
        for cell_type, source in exercise.model_answers:
            body = source.strip() if cell_type == "markdown" else _fence(source)
            lines += ["### Mintaválasz", "", body, ""]
    return "\n".join(lines).rstrip() + "\n"


def write_teacher_notes(out_dir: str | Path, notebooks: list[Path]) -> list[Path]:
    """Write ``<notebook name>.md`` teacher notes for every notebook into ``out_dir``.

    Introduced in ``01_data_loading.ipynb``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        target = out / f"{path.stem}.md"
        target.write_text(teacher_notes(nbformat.read(path, as_version=4), path.name), "utf-8")
        written.append(target)
    return written


# -- the executed HTML edition -------------------------------------------------------------------


def execute(
    path: Path, timeout: int = DEFAULT_TIMEOUT, notebook: nbformat.NotebookNode | None = None
) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook top to bottom in a fresh kernel, in its own folder; keep widget state.

    Introduced in ``06_what_the_network_sees.ipynb`` (its explorers in the HTML edition). Cells
    tagged ``nbval-skip`` are skipped, as in the test suite.

    Args:
        path: The notebook file.
        timeout: Time limit of one cell, in seconds.
        notebook: Run this notebook instead of the file's content (e.g. its
            :func:`student_copy`); ``path`` still gives the working folder and the name in
            messages.

    Returns:
        The executed notebook and the wall time in seconds (kernel start included).

    Raises:
        ClassroomError: A cell failed or ran out of time; the message names the notebook and
            the cell.
    """
    nb = nbformat.read(path, as_version=4) if notebook is None else copy.deepcopy(notebook)
    running = {"index": 0}

    def note_cell(cell, cell_index):
        running["index"] = cell_index

    client = NotebookClient(
        nb,
        timeout=timeout,
        resources={"metadata": {"path": str(Path(path).resolve().parent)}},
        store_widget_state=True,
        skip_cells_with_tag=SKIP,
        on_cell_start=note_cell,
    )
    start = time.perf_counter()
    # The kernel's own stdout/stderr (TensorFlow's C++ log lines) would break the progress
    # lines; it is kept aside and shown only when the kernel dies.
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as kernel_log:
        try:
            client.execute(stdout=kernel_log, stderr=kernel_log)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
            kernel_log.seek(0)
            raise ClassroomError(
                _failure(path, nb, running["index"], err, timeout, kernel_log.read())
            ) from None
    return nb, time.perf_counter() - start


def _failure(path: Path, nb, index: int, err: Exception, timeout: int, kernel_log: str) -> str:
    cell = nb.cells[index]
    errors = [out for out in cell.get("outputs", []) if out.output_type == "error"]
    if isinstance(err, CellTimeoutError):  # checked first: the kernel is interrupted, too
        what = f"túllépte a cellánkénti időkorlátot ({timeout} s; --timeout)"
    elif errors:
        what = f"{errors[-1].ename}: {errors[-1].evalue}"
    else:
        last = (str(err).strip().splitlines() or [""])[-1]
        what = f"{type(err).__name__}: {last}"
        if isinstance(err, DeadKernelError) and kernel_log.strip():
            what += "\nA kernel utolsó üzenetei:\n" + "\n".join(kernel_log.splitlines()[-15:])
    first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f"Megállt: {Path(path).name}, {index + 1}. cella ({first_line.strip()[:80]!r}): {what}"


def _size_text(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f}".replace(".", ",") + " MiB"


def _index_page(rows: list[tuple[str, str, float, int]], profile: str) -> str:
    items = "\n".join(
        f'  <li><a href="{html.escape(href)}">{html.escape(title)}</a> '
        f"<small>({seconds:.0f} s, {_size_text(size)})</small></li>"
        for href, title, seconds, size in rows
    )
    total = sum(row[2] for row in rows)
    return (
        '<!DOCTYPE html>\n<html lang="hu">\n<head>\n<meta charset="utf-8">\n'
        "<title>Transzfer tanulás MobileNetV2-vel – lefuttatott notebookok</title>\n"
        "</head>\n<body>\n<h1>Transzfer tanulás MobileNetV2-vel – lefuttatott notebookok</h1>\n"
        f"<p>Profil: <code>{html.escape(profile)}</code>; a futásidő a kernel indításával "
        f"együtt értendő, összesen {total:.0f} s.</p>\n<ol>\n{items}\n</ol>\n</body>\n</html>\n"
    )


def export_html(
    out_dir: str | Path, notebooks: list[Path], timeout: int = DEFAULT_TIMEOUT
) -> list[Path]:
    """Execute the notebooks in order and write one standalone HTML page each, plus index.html.

    Introduced in ``06_what_the_network_sees.ipynb``. Prints one progress line per notebook.

    Raises:
        ClassroomError: A cell failed (nothing more is run).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    profile = config.profile()
    print(f"Profil: {profile} ({config.PROFILE_ENV}); {len(notebooks)} notebook.", flush=True)
    exporter = HTMLExporter(template_name="lab")
    rows, written = [], []
    for path in notebooks:
        print(f"{path.name} … ", end="", flush=True)
        try:
            nb, seconds = execute(path, timeout)
        except ClassroomError:
            print("hiba", flush=True)
            raise
        title = _title(nb) or path.stem
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        target = out / f"{path.stem}.html"
        target.write_text(body, encoding="utf-8")
        size = target.stat().st_size
        print(f"{seconds:.0f} s (HTML: {_size_text(size)})", flush=True)
        rows.append((target.name, title, seconds, size))
        written.append(target)
    index = out / "index.html"
    index.write_text(_index_page(rows, profile), encoding="utf-8")
    return [*written, index]


# -- the command line ----------------------------------------------------------------------------


def _notebook_paths(given: list[Path] | None) -> list[Path]:
    if not given:
        folder = _CHECKOUT / "notebooks"
        found = sorted(folder.glob("*.ipynb"))
        if not found:
            raise ClassroomError(
                f"Nem találok notebookot a(z) {folder} mappában. Futtasd a repó gyökeréből, vagy "
                "add meg a notebookokat: --notebooks notebooks/01_data_loading.ipynb ..."
            )
        return found
    for path in given:
        if path.suffix != ".ipynb" or not path.is_file():
            raise ClassroomError(f"Nem találom ezt a notebookot: {path} (.ipynb fájl kell).")
    return list(given)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.classroom",
        description="Diákváltozatok, tanári jegyzetek, HTML-kiadás és Colab-jelvények.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str, out_dir: bool = True) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, description=help_text)
        if out_dir:
            command.add_argument("out_dir", type=Path, help="ide kerülnek a fájlok")
        command.add_argument(
            "--notebooks",
            nargs="+",
            type=Path,
            metavar="NB",
            help="csak ezek a notebookok (alapból notebooks/*.ipynb, sorrendben)",
        )
        return command

    add("student", "diákváltozatok: megoldások és mintaválaszok nélkül, kimenetek nélkül")
    add("teacher", "tanári jegyzet notebookonként (Markdown): feladatok, megoldások, mintaválaszok")
    html_command = add("html", "lefuttatja a notebookokat, és önálló HTML-oldalakat ír")
    html_command.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"cellánkénti időkorlát másodpercben (alapból {DEFAULT_TIMEOUT})",
    )
    badges = add("badges", "Colab-jelvények és telepítő cellák a pyproject.toml címéből", False)
    badges.add_argument("--check", action="store_true", help="csak ellenőriz, nem ír")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (1 after a reported problem)."""
    args = _parser().parse_args(argv)
    try:
        notebooks = _notebook_paths(args.notebooks)
        if args.command == "student":
            written = write_student_copies(args.out_dir, notebooks)
            print(f"{len(written)} diákváltozat: {args.out_dir}")
        elif args.command == "teacher":
            written = write_teacher_notes(args.out_dir, notebooks)
            print(f"{len(written)} tanári jegyzet: {args.out_dir}")
        elif args.command == "html":
            written = export_html(args.out_dir, notebooks, args.timeout)
            print(f"Kész: {written[-1]}")
        else:
            problems = sync_badges(notebooks, check=args.check)
            for problem in problems:
                print(problem)
            if args.check and problems:
                print("Javítás: python -m helpers.classroom badges", file=sys.stderr)
                return 1
            verb = "javítva" if problems else "rendben"
            print(f"Jelvények és telepítő cellák: {len(notebooks)} notebook, {verb}.")
    except (ClassroomError, config.ProfileError) as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
