"""The house (STYLE.md, ARCHITECTURE.md): layers import one way, rooms stay small, the public
names keep working, and the core never loads the UI.

Layers, lowest first (a module may import its own layer and the ones below, never above):

    leaves   _checks · presets · synthetic · nn · tasks · measure · data
    engine   fitting
    science  experiments
    UI       viz · cli · the faces (old module names that re-export)
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dipspec

PACKAGE = Path(__file__).resolve().parent.parent / "dipspec"
UI = {"matplotlib", "seaborn", "ipywidgets", "IPython"}
LEAVES = {"_checks", "presets", "synthetic", "nn", "tasks", "measure", "data"}
#: the names a room may import from dipspec (its first component under dipspec)
ALLOWED = {
    "_checks": set(),
    "presets": set(),
    "synthetic": {"_checks"},
    "nn": {"_checks", "nn"},
    "tasks": {"_checks", "tasks"},
    "measure": {"_checks", "measure"},
    "data": {"_checks", "data"},
    "fitting": LEAVES | {"fitting"},
    "experiments": LEAVES | {"fitting", "experiments"},
    "viz": LEAVES | {"fitting", "experiments", "viz"},
}
#: old flat module names kept as re-exports of the new rooms, so users' code keeps working
FACES = {"layers": "nn", "models": "nn", "baselines": "nn", "spectral": "measure",
         "stopping": "measure", "metrics": "measure", "chakrabarty": "experiments",
         "plots": "viz", "widgets": "viz"}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80  # body lines, docstring excluded; longer needs a "# long on purpose" why


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    """``dipspec.nn.decoder`` -> ``nn``; ``dipspec`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(dipspec modules, top-level third-party packages) that ``path`` imports, resolved."""
    module = _name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    known = {_name(p) for p in _modules()}
    internal, external = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("dipspec"):
                target = node.module
            else:
                external.add((node.module or "").split(".")[0])
                continue
            for alias in node.names:  # `from . import data` imports a submodule
                child = f"{target}.{alias.name}"
                internal.add(child if child in known else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dipspec"):
                    internal.add(alias.name)
                else:
                    external.add(alias.name.split(".")[0])
    return internal, external


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_one_way(path):
    module = _name(path)
    room = _room(module)
    internal, external = _imports(path)
    if room in ALLOWED:
        rooms = {_room(m) for m in internal} - {""}
        assert rooms <= ALLOWED[room], f"{module} imports {rooms - ALLOWED[room]}"
        assert not any(_room(m) in FACES for m in internal), f"{module} imports a face"
        if room not in ("viz",):
            assert not external & UI, f"{module} imports UI packages {external & UI}"


@pytest.mark.parametrize("room", ["nn", "measure"])
def test_network_and_meters_need_only_torch(room):
    for path in (PACKAGE / room).glob("*.py"):
        _, external = _imports(path)
        assert external <= {"torch", "math", "functools", "collections", "__future__",
                            "dataclasses", "typing", "ctypes", "ctypes.util", "sys",
                            "numpy"}, (path.name, external)


def test_no_import_circle():
    graph = {_name(p): {m for m in _imports(p)[0]} for p in _modules()}
    done, active = set(), []

    def visit(node):
        if node in active:
            cycle = active[active.index(node):] + [node]
            pytest.fail("import circle: " + " -> ".join(cycle))
        if node in done or node not in graph:
            return
        active.append(node)
        for child in sorted(graph[node]):
            visit(child)
        active.pop()
        done.add(node)

    for node in sorted(graph):
        if not node.endswith("__init__"):
            visit(node)


@pytest.mark.parametrize("face, room", sorted(FACES.items()))
def test_faces_only_re_export(face, room):
    """An old module name holds nothing of its own: imports from its room and ``__all__``."""
    path = PACKAGE / f"{face}.py"
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1 and (node.module or "").split(".")[0] in (room, "viz"), \
                f"{face} imports {node.module}"
            continue
        assert isinstance(node, ast.Assign) and node.targets[0].id == "__all__", \
            f"{face}.py holds code of its own (line {node.lineno})"


def test_every_module_declares_all():
    missing = [str(p.relative_to(PACKAGE)) for p in _modules()
               if p.name != "__main__.py" and "__all__" not in p.read_text()]
    assert not missing, f"modules without __all__: {missing}"


def test_rooms_a_reader_can_hold():
    long_modules = {str(p.relative_to(PACKAGE)): n for p in _modules()
                    if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long_modules, f"modules over {MAX_MODULE_LINES} lines: {long_modules}"
    long_functions = []
    for path in _modules():
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body[1:] if ast.get_docstring(node) else node.body
            if not body:
                continue
            length = node.end_lineno - body[0].lineno + 1
            source = "\n".join(lines[node.lineno - 1: node.end_lineno])
            if length > MAX_FUNCTION_LINES and "# long on purpose" not in source:
                long_functions.append(f"{path.relative_to(PACKAGE)}:{node.name} ({length})")
    assert not long_functions, f"functions over {MAX_FUNCTION_LINES} lines: {long_functions}"


#: The public surface that README, notebooks and users' code rely on (0.1 names kept).
PUBLIC = {
    "dipspec": ["fit", "fit_many", "FitResult", "data", "tasks", "models", "layers", "spectral",
                "stopping", "metrics", "presets"],
    "dipspec.models": ["Decoder", "ConvNet", "SkipNet", "LinearDIP", "ReLUNet", "make_input",
                       "controlled_layers", "init_weights", "UPSAMPLE_MODES", "INPUT_KINDS"],
    "dipspec.layers": ["LipschitzConv2d", "LipschitzConvTranspose2d", "GaussianUpsample",
                       "gaussian_upsample", "gaussian_kernel", "gaussian_kernel1d",
                       "MeanOnlyBatchNorm", "sigma_max", "sigma_max_warm", "lipschitz_divisor",
                       "lipschitz_normalise", "precompute_sigma_max", "set_sigma_method",
                       "SIGMA_METHODS"],
    "dipspec.baselines": ["LinearDIP", "ReLUNet", "retain_freed_memory", "LINEAR_DIP_DEPTH",
                          "linear_dip_parameter_count"],
    "dipspec.tasks": ["Task", "Denoise", "Deblock", "Inpaint", "SuperResolve", "Enhance",
                      "make_task", "TASKS", "add_gaussian_noise", "jpeg_compress",
                      "bernoulli_mask", "lanczos2_kernel", "lanczos2_downsample",
                      "enhance_details"],
    "dipspec.spectral": ["fbc", "radial_profile", "to_grey", "FrequencyBandCorrespondence"],
    "dipspec.stopping": ["blurriness", "mlv_sharpness", "blur_sharpness_ratio", "AutoStop",
                         "first_stop_iteration", "ratio_defined"],
    "dipspec.metrics": ["psnr", "ssim"],
    "dipspec.data": ["load_image", "save_image", "paper_image", "paper_mask", "paper_images",
                     "EMBEDDED_IMAGES"],
    "dipspec.presets": ["QUICK", "PAPER", "resolve", "resolve_device", "Preset"],
    "dipspec.experiments": ["Setup", "configure", "sweep_lambda", "sweep_sigma", "summary",
                            "report", "fit_model", "fit_together"],
    "dipspec.chakrabarty": ["trajectory_pair", "architecture_table", "write_table",
                            "update_table", "figure_table", "figure_trajectories"],
    "dipspec.plots": ["save_figure", "plot_psnr", "plot_fbc", "figure_bands"],
    "dipspec.widgets": ["lambda_explorer", "upsampling_explorer", "stopping_explorer"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_keep_working(module):
    imported = __import__(module, fromlist=["_"])
    missing = [name for name in PUBLIC[module] if not hasattr(imported, name)]
    assert not missing, f"{module} lost {missing}"


def test_faces_are_the_rooms_objects():
    """A face re-exports, it does not copy: ``dipspec.models.Decoder is dipspec.nn.Decoder``."""
    from dipspec import layers, measure, models, nn, stopping

    assert models.Decoder is nn.Decoder and layers.GaussianUpsample is nn.GaussianUpsample
    assert stopping.AutoStop is measure.AutoStop and dipspec.fit is dipspec.fitting.fit


def test_import_dipspec_loads_no_ui():
    code = ("import sys, dipspec, dipspec.experiments; "
            "print(sorted(m for m in ('matplotlib', 'seaborn', 'ipywidgets', 'IPython') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
