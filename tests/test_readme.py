"""The README's numbers are the code's: preset sizes, widths, iterations and λ, the CLI's demo
size, and the committed figures' scale. Reading them here keeps them from drifting apart."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dipspec.cli.parser import QUICK_SIZE
from dipspec.presets import PAPER, QUICK, default_lambda
from dipspec.tasks import TASKS, Denoise

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FIGURES_README = (ROOT / "figures" / "README.md").read_text()


def _number(text: str) -> float:
    """``"10 000"`` → 10000.0, ``"1.2"`` → 1.2."""
    return float(text.replace(" ", ""))


def _find(pattern: str, text: str = README) -> tuple[str, ...]:
    found = re.search(pattern, text)
    assert found, f"the README no longer says {pattern!r}: update this test with the README"
    return found.groups()


def test_the_two_commands_on_top():
    top = README.split("```")[1]
    assert top.strip().splitlines()[1:] == [
        "pip install torch==2.13.0 -e . && dipspec run denoise --image astronaut "
        "--out out/astronaut",
        'pip install torch==2.13.0 -e ".[dev]" && python -m pytest',
    ]


def test_main_job_numbers():
    channels, steps, lam, size = _find(r"quick preset: (\d+) channels, ([\d ]+) steps, λ ([\d.]+);"
                                       r"\s+`dipspec run`\s+resizes an embedded image to (\d+) px")
    assert int(channels) == QUICK.channels
    # fit() runs the task's own count capped by the preset's
    assert _number(steps) == min(Denoise.default_iterations, QUICK.iterations)
    assert _number(lam) == default_lambda("denoise", "quick")
    assert int(size) == QUICK_SIZE


def test_presets_row():
    size, channels, steps, lam = _find(r"`quick` \(CPU: (\d+) px, (\d+) channels, ([\d ]+) steps, "
                                       r"denoising λ ([\d.]+)\)")
    assert (int(size), int(channels), _number(steps), _number(lam)) == (
        QUICK.image_size, QUICK.channels, QUICK.iterations, default_lambda("denoise", "quick"))
    channels, steps, lam = _find(r"`paper` \(full size, (\d+) channels, ([\d ]+) steps, "
                                 r"denoising λ ([\d.]+)\)")
    assert PAPER.image_size is None
    assert (int(channels), _number(steps), _number(lam)) == (
        PAPER.channels, PAPER.iterations, default_lambda("denoise", "paper"))
    for name, pattern in [("inpaint", r"inpainting ([\d.]+)"),
                          ("super_resolve", r"super-resolution ([\d.]+)"),
                          ("enhance", r"enhancement ([\d.]+)\)")]:
        (lam,) = _find(r"the paper's for the others \(.*?" + pattern)
        assert _number(lam) == default_lambda(name, "quick") == default_lambda(name, "paper")


def test_notebook_example_uses_the_quick_preset():
    example = README.split("## In a notebook")[1].split("```")[1]
    assert f"size={QUICK.image_size})" in example
    assert f"channels={QUICK.channels}, lipschitz_lambda=None" in example
    (lam,) = _find(r"lipschitz_lambda=([\d.]+)\)", example)
    assert _number(lam) == default_lambda("denoise", "quick")


def test_lambda_triples_and_sigma_lambda():
    triple = _find(r"quick preset: ([\d.]+) / ([\d.]+) / ([\d.]+) for over-smooth")
    assert tuple(map(_number, triple)) == QUICK.lipschitz_lambdas
    paper = _find(r"instead of the paper's (\d) / (\d) / (\d)\.")
    assert tuple(map(_number, paper)) == PAPER.lipschitz_lambdas
    (lam,) = _find(r"\(λ = (\d+), `Preset.gaussian_lambda`\)")
    assert _number(lam) == QUICK.gaussian_lambda == PAPER.gaussian_lambda
    # figures/README.md states the same quick preset
    triple = _find(r"λ triple \(([\d.]+), ([\d.]+), ([\d.]+)\)", FIGURES_README)
    assert tuple(map(_number, triple)) == QUICK.lipschitz_lambdas
    (lam,) = _find(r"denoising λ ([\d.]+)", FIGURES_README)
    assert _number(lam) == default_lambda("denoise", "quick")
    sigmas = _find(r"σ sweep \(([\d.]+), ([\d.]+), ([\d.]+)\) at λ (\d+)", FIGURES_README)
    assert tuple(map(_number, sigmas)) == (*QUICK.gaussian_sigmas, QUICK.gaussian_lambda)


def test_paper_lambdas_are_the_tasks():
    """Each task class keeps the paper's λ as data; presets.default_lambda reads the same."""
    for name, task in TASKS.items():
        assert default_lambda(name, "paper") == task.default_lipschitz_lambda, name


def _provenance(figure: str) -> dict:
    return json.loads((ROOT / "figures" / f"{figure}.json").read_text())


def test_gallery_scale_matches_the_committed_figures():
    size, width, low, high = _find(r"one step above the CI preset: (\d+) px, decoder width (\d+), "
                                   r"([\d ]+)–([\d ]+) iterations")
    shi = ["quickstart", "fbc_noise", "architecture", "lipschitz_control", "gaussian_control",
           "automatic_stop", "applications"]
    info = [_provenance(name) for name in shi]
    assert {tuple(i["image_size"]) for i in info} == {(int(size), int(size))}
    assert {i["channels"] for i in info} == {int(width)} == {QUICK.channels}
    its = [i["iterations"] for i in info]
    assert (_number(low), _number(high)) == (min(its), max(its))


@pytest.mark.parametrize("figure", ["fbc_noise", "lipschitz_control", "gaussian_control",
                                    "automatic_stop", "applications"])
def test_gallery_tables_name_each_figures_iterations(figure):
    (steps,) = _find(r"\| dipspec \([^|]*?([\d ]+) it\.\) \|[^\n]*\n\|---\|---\|\n"
                     rf"\| !\[\]\(figures/{figure}\.png\)")
    assert _number(steps) == _provenance(figure)["iterations"]


@pytest.mark.parametrize("text", [README, FIGURES_README], ids=["README", "figures/README"])
def test_nothing_outside_the_repository_is_shown(text):
    assert "](../shared" not in text and "../shared/paper-figures" not in text
