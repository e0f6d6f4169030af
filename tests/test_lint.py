"""Code hygiene: the repository is ruff-clean (configuration in pyproject.toml; notebooks
included), helpers import at module level, and no warning filter hides deprecations."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_check_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    print(output)
    assert "No module named ruff" not in output, output
    assert result.returncode == 0, f"ruff check . failed:\n{output}"


#: Function-level imports allowed in helpers: TensorFlow/Keras load lazily in the modules a
#: notebook imports before it sets TF_CPP_MIN_LOG_LEVEL (config, data).
LAZY_IMPORTS = {"config.py": {"keras"}, "data.py": {"keras", "tensorflow"}}


def _function_imports(path: Path) -> list[tuple[str, str]]:
    found = []
    for func in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    found += [(func.name, alias.name) for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    found.append((func.name, node.module or "."))
    return found


def test_helpers_import_at_module_level():
    problems = [
        f"{path.name}: {function}() imports {module}"
        for path in sorted((REPO / "helpers").glob("*.py"))
        for function, module in _function_imports(path)
        if module.split(".")[0] not in LAZY_IMPORTS.get(path.name, set())
    ]
    assert not problems, "\n".join(problems)


def test_no_warning_filter_hides_deprecations(pytestconfig):
    assert not [f for f in pytestconfig.getini("filterwarnings") if "Deprecation" in f]
    for path in sorted((REPO / "helpers").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [
            ast.unparse(node)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("filterwarnings", "simplefilter")
        ]
        assert not calls, f"{path.name}: {calls}"
