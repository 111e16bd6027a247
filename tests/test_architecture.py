"""Module boundaries of STYLE.md: imports go one way, the core never loads the UI."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dipspec"
UI = {"matplotlib", "seaborn", "ipywidgets", "IPython"}
# module -> dipspec modules it must never import
FORBIDDEN = {
    "layers": {"models", "_fit", "tasks", "data", "spectral", "stopping", "plots", "widgets",
               "cli", "presets"},
    "models": {"_fit", "tasks", "data", "plots", "widgets", "cli", "presets"},
    "spectral": {"models", "layers", "tasks", "data", "_fit", "plots", "widgets", "cli"},
    "stopping": {"models", "layers", "tasks", "data", "_fit", "plots", "widgets", "cli"},
    "metrics": {"models", "layers", "tasks", "data", "_fit", "plots", "widgets", "cli"},
    "tasks": {"models", "layers", "_fit", "plots", "widgets", "cli"},
    "data": {"models", "layers", "_fit", "plots", "widgets", "cli"},
    "_fit": {"plots", "widgets", "cli"},
    "presets": {"plots", "widgets", "cli", "_fit"},
}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(dipspec modules, top-level third-party packages) imported anywhere in ``path``."""
    tree = ast.parse(path.read_text())
    internal, external = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level or (node.module or "").startswith("dipspec"):
                module = (node.module or "").removeprefix("dipspec").lstrip(".")
                if module:
                    internal.add(module.split(".")[0])
                else:
                    internal.update(alias.name for alias in node.names)
            else:
                external.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                if name.startswith("dipspec."):
                    internal.add(name.split(".")[1])
                else:
                    external.add(name.split(".")[0])
    return internal, external


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_imports_go_one_way(module):
    internal, external = _imports(PACKAGE / f"{module}.py")
    assert not internal & FORBIDDEN[module], f"{module} imports {internal & FORBIDDEN[module]}"
    assert not external & UI, f"{module} imports UI packages {external & UI}"


@pytest.mark.parametrize("module", ["layers", "spectral", "stopping", "metrics"])
def test_leaves_import_only_torch(module):
    _, external = _imports(PACKAGE / f"{module}.py")
    assert external <= {"torch", "math", "functools", "collections", "__future__", "dataclasses",
                        "typing"}, external


def test_every_module_declares_all():
    missing = [p.name for p in PACKAGE.glob("*.py")
               if p.name != "__main__.py" and "__all__" not in p.read_text()]
    assert not missing, f"modules without __all__: {missing}"


def test_import_dipspec_loads_no_ui():
    code = ("import sys, dipspec; "
            "print(sorted(m for m in ('matplotlib', 'seaborn', 'ipywidgets', 'IPython') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
