"""The package as a student installs it: non-editable, into a fresh virtual environment.

What a real ``pip install "helpers @ git+<repository>"`` does is simulated in two parts, because
installing TensorFlow into a second virtualenv costs minutes and gigabytes on every CI run:

* ``test_non_editable_install_into_a_fresh_venv`` builds the package from a copy of the checkout
  (pip, build isolation, no ``-e``), installs it with ``--no-deps`` into a fresh virtualenv whose
  third-party packages come from the test suite's environment through a ``.pth`` file, and imports
  every module of ``helpers/`` there, from the fresh site-packages, with no checkout beside it. The
  repository address is read from the installed metadata.
* ``test_helpers_imports_are_declared_dependencies`` checks statically that every third-party
  package ``helpers/`` imports belongs to a distribution declared in ``[project.dependencies]``,
  which the ``.pth`` shortcut cannot see. Resolving those dependencies with pip is exercised by
  CI's own ``pip install -r requirements.txt``, which installs the package with its declared
  dependencies.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Top-level folders of the checkout that are not part of the source (git-ignored or generated).
NOT_SOURCE = {".git", ".venv", "data", "models", "logs", ".keras", ".whl", "build", "dist"}
HELPER_MODULES = sorted(m.name for m in pkgutil.iter_modules([str(REPO / "helpers")]))

_IMPORT_ALL = """
import importlib, importlib.metadata, json, sys
import helpers
from helpers import classroom
files = {name: importlib.import_module("helpers." + name).__file__ for name in sys.argv[1:]}
print(json.dumps({
    "helpers": helpers.__file__,
    "modules": files,
    "repository": classroom.repository_url(),
    "version": importlib.metadata.version("helpers"),
}))
"""


def _copy_source(target: Path) -> Path:
    """The checkout without its environments, data and build outputs (pip builds in-tree)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        return skipped | (NOT_SOURCE & set(names) if Path(folder) == REPO else set())

    return Path(shutil.copytree(REPO, target, ignore=ignore))


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _declared_distributions() -> set[str]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11+")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {
        re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1)
        for req in project["dependencies"]
    }
    return {_normalise(name) for name in names}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _optional_imports(tree: ast.AST) -> list[ast.AST]:
    """Imports inside ``try: ... except ImportError:`` (optional extras, e.g. HEIF support)."""
    optional = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            optional += [n for stmt in node.body for n in ast.walk(stmt)]
    return optional


def _imported_packages() -> dict[str, list[str]]:
    """Third-party packages imported anywhere in helpers/ -> the modules that import them."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "helpers").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        optional = {id(node) for node in _optional_imports(tree)}
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "helpers":
                    found.setdefault(top, []).append(path.name)
    return found


def test_helpers_imports_are_declared_dependencies():
    declared = _declared_distributions()
    providers = importlib.metadata.packages_distributions()
    imported = _imported_packages()
    assert {"numpy", "keras"} <= set(imported), "the import scan found nothing?"
    missing = {
        package: sorted(set(modules))
        for package, modules in imported.items()
        if not {_normalise(d) for d in providers.get(package, [])} & declared
    }
    assert not missing, (
        "helpers/ imports packages whose distribution is not in pyproject.toml "
        f"[project.dependencies] ({sorted(declared)}): "
        + "; ".join(
            f"{package} (from {', '.join(providers.get(package, ['?']))}) in {', '.join(modules)}"
            for package, modules in missing.items()
        )
    )


def test_non_editable_install_into_a_fresh_venv(tmp_path):
    source = _copy_source(tmp_path / "source")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = _venv_python(venv)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--disable-pip-version-check", str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    # Third-party packages (TensorFlow, ...) from this environment; not its editable helpers,
    # whose finder is a .pth there that a plain path entry does not run.
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "test_suite_packages.pth").write_text("\n".join(ours) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST_"))}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    run = subprocess.run(
        [str(python), "-I", "-c", _IMPORT_ALL, *HELPER_MODULES],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])

    assert Path(result["helpers"]).parent == site / "helpers", "helpers came from elsewhere"
    assert set(result["modules"]) == set(HELPER_MODULES)
    for name, file in result["modules"].items():
        assert Path(file) == site / "helpers" / f"{name}.py", f"helpers.{name} came from {file}"
    assert not (site / "pyproject.toml").exists()  # so the address came from the metadata
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert f'Repository = "{result["repository"]}"' in pyproject
    assert f'version = "{result["version"]}"' in pyproject
