"""Named run scales: ``quick`` for a CPU (seconds to minutes), ``wide`` (the paper's decoder on
128 × 128 images: hours on a CPU) and ``paper`` (SPEC defaults).

A preset fixes the costly knobs — image size, network width, iterations — and the λ/σ triples
that separate the three regimes (over-smooth / right / decaying), which shift with image size
and width. ``resolve("auto")`` gives ``paper`` on a GPU and ``quick`` on a CPU.

:func:`default_lambda` is the one rule for the λ a task gets when nobody chooses one — used by
``fit()``'s default model, ``dipspec run`` and the notebooks alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

__all__ = ["PAPER", "PAPER_LAMBDAS", "PRESETS", "QUICK", "SCALED_TASKS", "WIDE", "Preset",
           "default_lambda", "resolve", "resolve_device"]

#: The paper's λ per task (SPEC §3): also each task class's ``default_lipschitz_lambda``.
PAPER_LAMBDAS = {"denoise": 1.4, "deblock": 1.4, "inpaint": 1.6, "super_resolve": 1.4,
                 "enhance": 1.0}
#: The tasks whose λ follows the scale (the preset's ``lipschitz_lambda``); the others keep the
#: paper's value at every scale.
SCALED_TASKS = ("denoise", "deblock")


@dataclass(frozen=True)
class Preset:
    """The scale of a run.

    Attributes
    ----------
    name : str
    image_size : int or None
        Side the notebooks resize images to (``None``: full size).
    channels : int
        Decoder width.
    iterations : int
        Default iteration count of a fit.
    lipschitz_lambdas : tuple of float
        (over-smooth, right, decaying) λ for this scale; the paper uses (1, 2, 3).
    gaussian_sigmas : tuple of float
        The σ sweep of the Gaussian-upsampling figure.
    gaussian_lambda : float
        λ of the convolutions in that sweep. The paper's σ figure uses its λ-controlled decoder
        (without λ, σ = 0 fits the noise and oscillates instead of settling near the others),
        and a Gaussian stage with ``Σ K = 1`` passes a quarter of its input's mean, so its
        convolutions need a larger λ than bilinear's (SPEC §3: 1.8 with Gaussian upsampling):
        2 at every scale (measured: at the quick scale, λ = 1.2 stalls below 18 dB).
    lipschitz_lambda : float
        The λ used by default for denoising and JPEG deblocking at this scale (the "right" λ of
        the triple; SPEC §3's 1.4 at the paper's scale). See :func:`default_lambda`.
    precision : {"fp32", "bf16"}
        Arithmetic of the network's forward pass in :func:`dipspec.fit` when the call does not
        choose one (``benchmarks/README.md`` measures both).
    channels_last : bool
        Memory order of the network in :func:`dipspec.fit` when the call does not choose one.
    """

    name: str
    image_size: int | None
    channels: int
    iterations: int
    lipschitz_lambdas: tuple[float, float, float]
    gaussian_sigmas: tuple[float, float, float] = (0.0, 0.5, 1.0)
    gaussian_lambda: float = 2.0
    lipschitz_lambda: float = 1.4
    precision: str = "fp32"
    channels_last: bool = False
    extra: dict = field(default_factory=dict)

    def with_(self, **changes) -> Preset:
        """A copy with some fields changed (``QUICK.with_(iterations=500)``)."""
        return replace(self, **changes)


#: Denoising λ 1.2, from the λ-robustness table (results/lambda_robustness.md: nine images,
#: seeds 0-2, 27 fits per λ): λ = 1.2 cuts plain DIP's mean decay from 4.26 to 1.50 dB at the
#: same peak (27.68 vs 27.24 dB) and converges within the 3000 steps (median peak iteration
#: 870). λ = 1.0 ends higher (27.54 vs 26.18 dB, decay 0.17 dB) but is still rising at the end
#: of the budget on 14 of 27 fits and the paper's stop rule never fires on it, so the
#: notebooks' stopping and application figures would no longer show their subject; for the
#: best final PSNR at this scale pass ``lipschitz_lambda=1.0`` (or stop with ``auto_stop``:
#: λ = 1.2 then returns within 0.26 dB of its peak on average).
QUICK = Preset(name="quick", image_size=64, channels=32, iterations=3000,
               lipschitz_lambdas=(1.0, 1.2, 2.0), lipschitz_lambda=1.2)
PAPER = Preset(name="paper", image_size=None, channels=128, iterations=10000,
               lipschitz_lambdas=(1.0, 2.0, 3.0), lipschitz_lambda=1.4)
#: The paper's decoder and λ values at 128 × 128 (issue 14). Channels-last because there the
#: Gaussian upsampling layer runs at 0.64–0.78 × bilinear instead of 1.6 × on an EPYC
#: (benchmarks/README.md, rows 4 and 8; 0.47–0.59 × on a Xeon, whose bare step it also makes
#: 1.08 × faster at 128²). float32: bf16 moved a 2000-step fit's final PSNR by 0.69 dB at 64²
#: (row 9), and on a CPU without bfloat16 units it is 2–4 × slower.
#: Denoising λ 1.0, from the resolution ladder (results/ladder.md, width 128, seed 0): on
#: Peppers at 128² λ = 1 ends at 27.51 dB (peak 27.63 at step 4914, still rising), where λ = 2
#: peaks at 27.22 dB by step 200 and decays 6.9 dB, λ = 3 decays like plain DIP (final 20.89,
#: plain 21.43 dB); λ = 1 also ends best at 128² on F16 (26.88 dB) and Baboon (25.78 dB, λ = 2
#: decaying 6.3 and 6.1 dB there), and at 64² on all three ladder images.
#: SPEC §3's 1.4 was never measured at this width; λ = 1 is the only measured value that
#: holds its PSNR here. The auto stop does not fire on a fit still rising, which returns its
#: final iterate — the right answer for such a fit. The paper's triple (1, 2, 3) stays the
#: figures' λ.
WIDE = Preset(name="wide", image_size=128, channels=128, iterations=5000,
              lipschitz_lambdas=(1.0, 2.0, 3.0), lipschitz_lambda=1.0, channels_last=True)
PRESETS = {"quick": QUICK, "wide": WIDE, "paper": PAPER}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is checked and returned."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu'")
    return resolved


def resolve(preset: str | Preset = "auto", device: str | torch.device = "auto") -> Preset:
    """Return the :class:`Preset` for a name; ``"auto"`` is ``paper`` on a GPU, else ``quick``.

    Examples
    --------
    >>> resolve("quick").channels
    32
    >>> resolve("auto", device="cpu").name
    'quick'
    """
    if isinstance(preset, Preset):
        return preset
    if preset == "auto":
        return PAPER if resolve_device(device).type == "cuda" else QUICK
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose 'auto', 'quick', 'wide' or 'paper'")
    return PRESETS[preset]


def default_lambda(task, preset: str | Preset = "auto", device: str | torch.device = "auto"
                   ) -> float:
    """The λ a task gets by default at a preset's scale — the one rule of ``fit()``, the CLI
    and the notebooks.

    Parameters
    ----------
    task : str or Task
        A task name (``"denoise"``, ``"deblock"``, ``"inpaint"``, ``"super_resolve"``,
        ``"enhance"``) or a task object (its ``name``; a task of another name gets its own
        ``default_lipschitz_lambda``).
    preset : {"auto", "quick", "wide", "paper"} or Preset
    device : str or torch.device
        Resolves ``"auto"`` (paper on a GPU, quick on a CPU).

    Returns
    -------
    float
        Denoising and deblocking: the preset's ``lipschitz_lambda`` (quick 1.2 — the λ that
        separates the regimes at 64 px and width 32 —, paper 1.4 as SPEC §3). The other tasks:
        the paper's value at every scale (:data:`PAPER_LAMBDAS`: inpainting 1.6,
        super-resolution 1.4, enhancement 1.0).

    Raises
    ------
    ValueError
        For an unknown task name.

    Examples
    --------
    >>> default_lambda("denoise", "quick"), default_lambda("denoise", "paper")
    (1.2, 1.4)
    >>> default_lambda("inpaint", "quick")
    1.6
    """
    name = task if isinstance(task, str) else getattr(task, "name", "")
    if name in SCALED_TASKS:
        return resolve(preset, device).lipschitz_lambda
    if name in PAPER_LAMBDAS:
        return PAPER_LAMBDAS[name]
    if not isinstance(task, str) and hasattr(task, "default_lipschitz_lambda"):
        return float(task.default_lipschitz_lambda)
    raise ValueError(f"unknown task {task!r} for default_lambda; choose one of "
                     f"{', '.join(PAPER_LAMBDAS)} or pass a task object")
