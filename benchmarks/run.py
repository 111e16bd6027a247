"""Speed benchmarks of dipspec (issue 6): what one DIP iteration costs, and where.

Usage::

    python benchmarks/run.py                        # CPU, sizes 64 128 256, markdown table
    python benchmarks/run.py --device cuda --sizes 128 256 512 --tf32 --bf16 --compile
    python benchmarks/run.py --quick                # a fast smoke run (64², few repeats)
    python benchmarks/run.py --out benchmarks/results-cpu.json

Everything compared is measured in one process, interleaved round by round (bare, full, naive,
bare, full, naive, ...), after warm-up; the table gives the median time of one iteration and
the median over rounds of its ratio to the bare step of the same round, so that a machine
shared with other work still gives stable ratios. Absolute times only mean something together
with the device line printed above the table.

Configurations (per image size; the decoder has 128 channels, 32 at the quick preset's 64²):

1. bare   - the paper's decoder, λ off, bilinear: forward + backward + Adam, nothing else.
2. full   - λ-controlled convolutions (λ = 1.4), FBC + blur/sharpness ratio + PSNR every
            iteration written to a device-side history, and the device-side backtracking check
            every 10 iterations: the paper's configuration as ``dipspec.fit`` runs it.
3. naive  - the same network step written as the published code does it: a full ``torch.svd``
            of every kernel at every forward pass, the output copied to the host, then FBC,
            blurriness, MLV sharpness (full sort) and PSNR in NumPy/SciPy, and a host copy of
            all weights for backtracking.
4. upsampling alone (forward + backward, 128 channels): bilinear, ``GaussianUpsample``
   (a depthwise ``conv_transpose2d`` with the fixed kernel) and the reference's
   ``ConvTranspose2d`` module with a frozen weight.
5. σ_max alone: dipspec's batched solve (``exact`` and ``warm``), the naive SVDs, as a share
   of the full step.
6. batched fits: ``fit_many`` of K members against K sequential ``fit`` calls, full
   configuration, end to end.
7. (CUDA only) --tf32, --bf16 (autocast), --channels-last, --compile: step time and the final
   PSNR of a short fit against float32 on the same seed (must stay within 0.05 dB).

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` above what was allocated before the
configuration ran; on a CPU the peak RSS (``VmHWM``) of a separate process that runs only
that configuration for a few steps (the first row, ``baseline``, is a process that only loads
the image and the libraries).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import speed_options as options
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import dipspec
from dipspec import metrics
from dipspec.fitting.instruments import Instruments, backtrack
from dipspec.layers import LipschitzConv2d, precompute_sigma_max, set_sigma_method
from dipspec.models import Decoder, controlled_layers, make_input
from dipspec.presets import PAPER, QUICK
from dipspec.tasks import Denoise

LAMBDA = 1.4
BACKTRACK_EVERY = 10  # fit's default: SPEC §7 asks for a check every few iterations
GPU_FLAGS = ("tf32", "bf16", "channels_last", "compile")


# --------------------------------------------------------------------------------------------
# set-up
# --------------------------------------------------------------------------------------------
def channels_for(size: int, override: int | None) -> int:
    """The quick preset's width at its image size, the paper's otherwise."""
    if override:
        return override
    return QUICK.channels if size <= QUICK.image_size else PAPER.channels


def device_name(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    model = platform.processor() or "CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} logical cores, torch threads {threads}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Problem:
    """A denoising problem of one size on one device: code z, observation y and clean x."""

    def __init__(self, size: int, device: torch.device, seed: int = 0) -> None:
        clean = dipspec.data.load_image("astronaut", size=size)
        task = Denoise(clean=clean, seed=seed)
        self.size = size
        self.clean = task.clean.to(device)
        self.observation = task.observation.to(device)
        self.z = make_input("fourier", 32, (size // 32, size // 32), seed=seed).to(device)
        # the reference holds its images on the host as H x W x C arrays
        self.observation_np = task.observation[0].permute(1, 2, 0).numpy()
        self.clean_np = task.clean[0].permute(1, 2, 0).numpy()


def _flag_context(flags: frozenset, device: torch.device):
    stack = contextlib.ExitStack()
    if "tf32" in flags:
        old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

        def restore() -> None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old

        stack.callback(restore)
    return stack


class Step:
    """One configuration's iteration as a callable, with its own model and optimiser."""

    def __init__(self, kind: str, problem: Problem, channels: int, device: torch.device,
                 flags: frozenset = frozenset(), sigma_method: str = "exact") -> None:
        self.kind, self.problem, self.device, self.flags = kind, problem, device, flags
        lam = None if kind == "bare" else LAMBDA
        model = Decoder(out_channels=3, channels=channels, seed=0,
                        lipschitz_lambda=None if kind == "naive" else lam)
        if kind == "naive":
            _use_naive_lipschitz(model, LAMBDA)
        if kind == "full":
            set_sigma_method(model, sigma_method)
        model = model.to(device).train()
        self.z = problem.z
        if "channels_last" in flags:
            model = model.to(memory_format=torch.channels_last)
            self.z = self.z.contiguous(memory_format=torch.channels_last)
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=1e-3, foreach=True)
        self.forward = torch.compile(model) if "compile" in flags else model
        self.history = torch.zeros(64, 8 + 2, device=device)
        self.meters = Instruments(problem.observation, with_ratio=True)
        self.snapshot = None
        self.backtracks = torch.zeros(1, dtype=torch.int64, device=device)
        self.enabled = torch.ones(1, dtype=torch.bool, device=device)
        self.iteration = 0
        self.host_snapshot: dict | None = None
        self.last = problem.observation

    def __call__(self) -> None:
        p = self.problem
        with _flag_context(self.flags, self.device):
            autocast = torch.autocast("cuda", dtype=torch.bfloat16) if "bf16" in self.flags \
                else contextlib.nullcontext()
            with autocast:
                output = self.forward(self.z)
                loss = F.mse_loss(output.float(), p.observation)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        out = self.last = output.detach().float()
        if self.kind == "full":
            self._instruments(out, loss)
        elif self.kind == "naive":
            self._naive_instruments(out)
        self.iteration += 1

    def _instruments(self, out: Tensor, loss: Tensor) -> None:
        p = self.problem
        # the engine's own meters: FBC, blurriness, sharpness and their ratio in one (1, 8) row
        row = torch.cat([torch.stack([loss.detach(), metrics.psnr(out, p.clean)[0]]),
                         self.meters(out, out)[0]])
        self.history[self.iteration % len(self.history), : len(row)] = row
        if self.iteration % BACKTRACK_EVERY == 0:
            self.snapshot = backtrack(out, p.observation, self.params, self.optimizer,
                                      self.snapshot, self.backtracks, self.enabled)

    def _naive_instruments(self, out: Tensor) -> None:
        p = self.problem
        image = out.cpu().numpy()[0].transpose(1, 2, 0)
        naive_fbc(image, p.observation_np)
        grey = np_grey(image)
        naive_blurriness(grey) / naive_mlv(grey)
        naive_psnr(image, p.clean_np)
        # the reference keeps its backtracking snapshot on the host, copied every step
        self.host_snapshot = {k: v.detach().cpu().clone()
                              for k, v in self.model.state_dict().items()}



class _NaiveLipschitzConv2d(nn.Conv2d):
    """The published layer: σ from a full ``torch.svd`` of the reshaped kernel, every call."""

    lipschitz_lambda: float

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight
        _, s, _ = torch.svd(w.detach().view(w.shape[0], -1))
        return self._conv_forward(x, w / torch.clamp(s[0] / self.lipschitz_lambda, min=1.0),
                                  self.bias)


def _use_naive_lipschitz(model: nn.Module, lam: float) -> None:
    for module in model.modules():
        for child in module.children():
            if isinstance(child, LipschitzConv2d):
                child.__class__ = _NaiveLipschitzConv2d
                child.lipschitz_lambda = lam


# --------------------------------------------------------------------------------------------
# the reference's host-side instruments (NumPy/SciPy), as the published code computes them
# --------------------------------------------------------------------------------------------
def np_grey(image: np.ndarray) -> np.ndarray:
    if image.shape[2] == 1:
        return image[:, :, 0]
    return np.clip(0.2989 * image[:, :, 0] + 0.5870 * image[:, :, 1]
                   + 0.1140 * image[:, :, 2], 0, 1)


def naive_fbc(output: np.ndarray, observation: np.ndarray) -> np.ndarray:
    g_out, g_obs = np_grey(output), np_grey(observation)
    m_out = np.abs(np.fft.fftshift(np.fft.fft2(g_out)))
    m_obs = np.abs(np.fft.fftshift(np.fft.fft2(g_obs)))
    ratio = np.clip(m_out / (m_obs + 1e-8), 0, 1)
    h, w = g_out.shape
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    radius = np.sqrt((cols - w // 2) ** 2 + (rows - h // 2) ** 2)
    edges = [-1.0] + [(w // 2) * s for s in (0.2, 0.4, 0.6, 0.8, 1.0)]
    return np.array([ratio[(radius > lo) & (radius <= hi)].mean()
                     for lo, hi in zip(edges[:-1], edges[1:])])


def naive_blurriness(grey: np.ndarray, size: int = 9) -> float:
    from scipy.signal import convolve2d

    b1 = convolve2d(grey, np.ones((1, size)) / size, mode="same")
    b2 = convolve2d(grey, np.ones((size, 1)) / size, mode="same")
    h, w = grey.shape
    crop = (slice(math.ceil(size / 2), h - size // 2), slice(math.ceil(size / 2), w - size // 2))
    g, b1, b2 = grey[crop], b1[crop], b2[crop]
    inner = (slice(1, -1), slice(1, -1))
    scores = []
    for blurred, kernel in ((b1, np.array([[1, -1]])), (b2, np.array([[1], [-1]]))):
        d_g = np.abs(convolve2d(g, kernel, mode="same"))[inner]
        d_b = np.abs(convolve2d(blurred, kernel, mode="same"))[inner]
        v = np.maximum(0, d_g - d_b)
        scores.append((d_g.sum() - v.sum()) / d_g.sum())
    return max(scores)


def naive_mlv(grey: np.ndarray) -> float:
    h, w = grey.shape
    masked = np.zeros_like(grey)
    masked[2:h - 1, 2:w - 1] = grey[2:h - 1, 2:w - 1]
    centre = grey[2:h - 1, 2:w - 1]
    variation = np.full(centre.shape, -np.inf)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                neighbour = masked[2 + dy:h - 1 + dy, 2 + dx:w - 1 + dx]
                variation = np.maximum(variation, neighbour - centre)
    values = np.sort(variation.ravel())[::-1]  # the reference sorts everything
    k = np.arange(2, 1001)
    return float(np.sqrt(np.mean((values[k] * np.exp(-0.01 * k)) ** 2)))


def naive_psnr(image: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((image - clean) ** 2)))


def check_naive_instruments(problem: Problem) -> float:
    """Largest relative gap between the NumPy instruments and dipspec's (same numbers)."""
    out = problem.observation.clamp(0, 1) * 0.9 + 0.05
    image = out.cpu().double().numpy()[0].transpose(1, 2, 0)
    obs = problem.observation.cpu().double().numpy()[0].transpose(1, 2, 0)
    clean = problem.clean.cpu().double().numpy()[0].transpose(1, 2, 0)
    grey = np_grey(image)
    meters = Instruments(problem.observation.double(), with_ratio=True)
    ours = torch.cat([meters(out.double(), out.double())[0, :7],  # bands, blur, sharpness
                      metrics.psnr(out.double(), problem.clean.double())]).cpu().numpy()
    theirs = np.concatenate([naive_fbc(image, obs), [naive_blurriness(grey), naive_mlv(grey),
                                                     naive_psnr(image, clean)]])
    return float(np.max(np.abs(ours - theirs) / np.abs(ours)))


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------
def interleaved(fns: dict[str, Callable[[], object]], device: torch.device, rounds: int,
                warmup: int, inner: int = 1) -> dict[str, dict]:
    """Median seconds per call of each function, and the median per-round ratio to the first."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            sync(device)
            times[name].append((time.perf_counter() - start) / inner)
    base = next(iter(fns))
    return {name: {"median_s": statistics.median(ts),
                   "ratio": statistics.median(t / b for t, b in zip(ts, times[base])),
                   "samples_s": ts}
            for name, ts in times.items()}


def cuda_peak(step: Callable[[], None], device: torch.device, calls: int = 2) -> int:
    sync(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(calls):
        step()
    sync(device)
    return torch.cuda.max_memory_allocated(device) - before


def cpu_peak_rss(config: str, size: int, channels: int, threads: int) -> int:
    """Peak RSS (bytes) of a fresh process that runs only ``config`` for a few steps."""
    command = [sys.executable, __file__, "--probe", config, "--sizes", str(size),
               "--channels", str(channels), "--threads", str(threads), "--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)
               + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return int(json.loads(done.stdout.strip().splitlines()[-1])["maxrss_bytes"])


def probe(config: str, size: int, channels: int) -> None:
    """Run one configuration for a few steps and print this process's peak RSS."""
    device = torch.device("cpu")
    problem = Problem(size, device)
    if config in ("bare", "full", "naive"):
        step = Step(config, problem, channels, device)
        for _ in range(3):
            step()
    elif config.startswith("upsample-"):
        up = upsampler(config.split("-", 1)[1], UPSAMPLE_CHANNELS)
        x = torch.rand(1, UPSAMPLE_CHANNELS, size // 2, size // 2, requires_grad=True)
        for _ in range(3):
            up(x).sum().backward()
    print(json.dumps({"maxrss_bytes": peak_rss_bytes()}))


def peak_rss_bytes() -> int:
    """This process's peak RSS. Linux: ``VmHWM``, which (unlike ``ru_maxrss``) does not carry
    over the parent's resident size through fork + exec."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


# --------------------------------------------------------------------------------------------
# the measurements
# --------------------------------------------------------------------------------------------
UPSAMPLE_CHANNELS = 128


def upsampler(kind: str, channels: int) -> Callable[[Tensor], Tensor]:
    if kind == "bilinear":
        return nn.Upsample(scale_factor=2, mode="bilinear")
    if kind == "gaussian":
        return dipspec.layers.GaussianUpsample(channels, 0.5)
    if kind == "transposed":  # the reference: a depthwise ConvTranspose2d with the 5x5 kernel
        conv = nn.ConvTranspose2d(channels, channels, 5, stride=2, padding=2, output_padding=1,
                                  groups=channels, bias=False)
        with torch.no_grad():
            conv.weight.copy_(dipspec.layers.gaussian_kernel(0.5, dtype=torch.float32)
                              .expand(channels, 1, 5, 5))
        conv.weight.requires_grad_(False)
        return conv
    raise ValueError(kind)


def bench_steps(size: int, channels: int, device: torch.device, args) -> dict:
    problem = Problem(size, device)
    steps = {kind: Step(kind, problem, channels, device) for kind in ("bare", "full", "naive")}
    rounds = args.repeats if size < 256 or device.type == "cuda" else min(args.repeats, 5)
    result = interleaved(steps, device, rounds=rounds, warmup=args.warmup)
    # σ_max alone, as a share of the steps
    full = steps["full"]
    layers = controlled_layers(full.model)
    warm_layers = controlled_layers(set_sigma_method(
        Decoder(out_channels=3, channels=channels, lipschitz_lambda=LAMBDA, seed=0), "warm")
        .to(device))
    precompute_sigma_max(warm_layers)  # the first warm call is exact: start tracking
    naive_kernels = [m.weight for m in steps["naive"].model.modules()
                     if isinstance(m, _NaiveLipschitzConv2d)]

    def sigma_exact() -> None:
        precompute_sigma_max(layers)

    def sigma_warm() -> None:
        precompute_sigma_max(warm_layers)

    def sigma_naive() -> None:
        for w in naive_kernels:
            torch.svd(w.detach().view(w.shape[0], -1))

    sigma = interleaved({"sigma_exact": sigma_exact, "sigma_warm": sigma_warm,
                         "sigma_naive": sigma_naive}, device, rounds=args.repeats,
                        warmup=args.warmup, inner=3 if channels < 128 else 1)
    for layer in layers + warm_layers:
        layer._divisor_cache = None
    for name, entry in sigma.items():
        entry["ratio"] = entry["median_s"] / result["bare"]["median_s"]
        entry["share_of_full"] = entry["median_s"] / result["full"]["median_s"]
        result[name] = entry
    # peak memory
    for kind, step in steps.items():
        result[kind]["peak_bytes"] = (cuda_peak(step, device) if device.type == "cuda" else
                                      None if args.no_memory else
                                      cpu_peak_rss(kind, size, channels, args.threads))
    return result


def bench_upsampling(size: int, device: torch.device, args) -> dict:
    x = torch.rand(1, UPSAMPLE_CHANNELS, size // 2, size // 2, device=device, requires_grad=True)
    grad = torch.rand(1, UPSAMPLE_CHANNELS, size, size, device=device)
    # the same in channels-last order, as a channels-last network feeds them
    x_cl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    grad_cl = grad.contiguous(memory_format=torch.channels_last)
    fns = {}
    for layout, (inp, out_grad) in (("", (x, grad)), ("_cl", (x_cl, grad_cl))):
        for kind in ("bilinear", "gaussian", "transposed"):
            module = upsampler(kind, UPSAMPLE_CHANNELS).to(device)

            def run(module=module, inp=inp, out_grad=out_grad) -> None:
                inp.grad = None
                module(inp).backward(out_grad)

            fns[f"upsample_{kind}{layout}"] = run
    result = interleaved(fns, device, rounds=args.repeats, warmup=args.warmup, inner=5)
    for kind, fn in fns.items():
        if kind.endswith("_cl"):
            continue
        result[kind]["peak_bytes"] = (cuda_peak(fn, device) if device.type == "cuda" else
                                      None if args.no_memory else
                                      cpu_peak_rss(kind.replace("_", "-"), size, 0,
                                                   args.threads))
    return result


def bench_batched(size: int, device: torch.device, args) -> dict:
    """K members of the full configuration: fit_many against K sequential fit calls."""
    channels = channels_for(size, args.channels)
    k = args.batch
    task = Denoise(clean=dipspec.data.load_image("astronaut", size=size), seed=0)
    lambdas = [1.0 + 0.15 * i for i in range(k)]
    iterations = args.batched_iterations or max(2, round(20 * (64 / size) ** 2))
    if device.type == "cuda":
        iterations = args.batched_iterations or 50

    def models() -> list[nn.Module]:
        return [Decoder(out_channels=3, channels=channels, lipschitz_lambda=lam, seed=i)
                for i, lam in enumerate(lambdas)]

    options = dict(iterations=iterations, device=device, progress=False, backtracking=True)

    def sequential() -> None:
        for i, model in enumerate(models()):
            dipspec.fit(task, model, seed=i, **options)

    def batched() -> None:
        dipspec.fit_many(task, models(), seeds=list(range(k)), **options)

    rounds = max(1, args.batched_repeats)
    result = interleaved({"sequential": sequential, "fit_many": batched}, device, rounds=rounds,
                         warmup=1)
    for entry in result.values():
        entry["iterations"] = iterations
        entry["members"] = k
    result["fit_many"]["speedup"] = 1.0 / result["fit_many"]["ratio"]
    return result


def accuracy_fit(problem: Problem, channels: int, device: torch.device, flags: frozenset,
                 iterations: int) -> float:
    """Final PSNR of a short fit of the full configuration with ``flags`` (same seed)."""
    torch.manual_seed(0)
    step = Step("full", problem, channels, device, flags)
    for _ in range(iterations):
        step()
    return float(metrics.psnr(step.last, problem.clean)[0])


def bench_gpu_flags(size: int, device: torch.device, args) -> dict:
    flags = [f for f in GPU_FLAGS if getattr(args, f)]
    if not flags:
        return {}
    problem = Problem(size, device)
    channels = channels_for(size, args.channels)
    base_psnr = accuracy_fit(problem, channels, device, frozenset(), args.accuracy_iterations)
    fns = {"full_float32": Step("full", problem, channels, device)}
    for flag in flags:
        fns[f"full_{flag}"] = Step("full", problem, channels, device, frozenset({flag}))
    result = interleaved(fns, device, rounds=args.repeats, warmup=max(args.warmup, 3))
    result["full_float32"]["final_psnr"] = base_psnr
    for flag in flags:
        psnr = accuracy_fit(problem, channels, device, frozenset({flag}),
                            args.accuracy_iterations)
        entry = result[f"full_{flag}"]
        entry["final_psnr"] = psnr
        entry["psnr_gap_db"] = abs(psnr - base_psnr)
        entry["accurate"] = abs(psnr - base_psnr) <= 0.05
        entry["peak_bytes"] = cuda_peak(fns[f"full_{flag}"], device)
    return result


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def _mib(value) -> str:
    return "" if value is None else f"{value / 2**20:.0f}"


def markdown(results: dict) -> str:
    lines = [f"device: {results['device']}", f"torch {results['torch']}, dipspec "
             f"{results['dipspec']}, python {results['python']}", ""]
    unit = "GPU max allocated" if results["device_type"] == "cuda" else "peak RSS"
    lines += [f"| size | channels | configuration | median ms / call | ratio to bare | "
              f"{unit} (MiB) |", "|---:|---:|---|---:|---:|---:|"]
    if "baseline_rss" in results:
        lines.append(f"| | | baseline process (libraries + image) | | | "
                     f"{_mib(results['baseline_rss'])} |")
    for size, entry in results["sizes"].items():
        ch = entry["channels"]
        steps = entry["steps"]
        labels = {"bare": "1. bare step (λ off, bilinear)",
                  "full": "2. full step (λ, FBC + ratio + PSNR, backtracking)",
                  "naive": "3. naive step (SVDs, host metrics, host snapshot)",
                  "sigma_exact": "5. σ_max alone, exact (batched eigvalsh)",
                  "sigma_warm": "5. σ_max alone, warm (tracked)",
                  "sigma_naive": "5. σ_max alone, 12 full SVDs (naive)"}
        for key, label in labels.items():
            row = steps[key]
            ratio = f"{row['ratio']:.3f}"
            if key.startswith("sigma"):
                ratio += f" ({100 * row['share_of_full']:.1f} % of full)"
            lines.append(f"| {size} | {ch} | {label} | {1e3 * row['median_s']:.2f} | {ratio} | "
                         f"{_mib(row.get('peak_bytes'))} |")
        up = entry["upsampling"]
        for key, label in (("upsample_bilinear", "4. upsample fwd+bwd, bilinear"),
                           ("upsample_gaussian", "4. upsample fwd+bwd, GaussianUpsample"),
                           ("upsample_transposed", "4. upsample fwd+bwd, ConvTranspose2d"),
                           ("upsample_bilinear_cl", "4. same, channels-last: bilinear"),
                           ("upsample_gaussian_cl", "4. same, channels-last: GaussianUpsample"),
                           ("upsample_transposed_cl", "4. same, channels-last: ConvTranspose2d")):
            if key not in up:
                continue
            row = up[key]
            lines.append(f"| {size} | {UPSAMPLE_CHANNELS} | {label} | "
                         f"{1e3 * row['median_s']:.3f} | {row['ratio']:.3f} (to bilinear) | "
                         f"{_mib(row.get('peak_bytes'))} |")
        lines += options.markdown_rows(size, ch, entry.get("bare_options"))
        for key, row in entry.get("gpu_flags", {}).items():
            extra = "" if "psnr_gap_db" not in row else (
                f", ΔPSNR {row['psnr_gap_db']:.3f} dB "
                f"({'ok' if row['accurate'] else 'TOO FAR'})")
            lines.append(f"| {size} | {ch} | 7. {key}{extra} | {1e3 * row['median_s']:.2f} | "
                         f"{row['ratio']:.3f} (to float32) | {_mib(row.get('peak_bytes'))} |")
    if results.get("batched"):
        lines += ["", "| size | channels | K | iterations | K sequential fits (s) | fit_many (s) "
                  "| throughput gain |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for size, entry in results["batched"].items():
            seq, bat = entry["sequential"], entry["fit_many"]
            lines.append(f"| {size} | {entry['channels']} | {bat['members']} | "
                         f"{bat['iterations']} | {seq['median_s']:.2f} | {bat['median_s']:.2f} | "
                         f"{bat['speedup']:.2f}x |")
    lines += options.accuracy_markdown(results.get("fit_accuracy", []))
    summary = results.get("targets")
    if summary:
        lines += ["", "targets (ratios from this run):"]
        lines += [f"- {name}: {value}" for name, value in summary.items()]
    return "\n".join(lines)


def targets(results: dict) -> dict:
    out = {}
    for size, entry in results["sizes"].items():
        steps = entry["steps"]
        out[f"{size}: full / bare"] = f"{steps['full']['ratio']:.3f} (target <= 1.10)"
        naive = steps["naive"]["median_s"] / steps["full"]["median_s"]
        out[f"{size}: naive / full"] = (f"{naive:.2f} (target >= 1.8 on CPU at 128, >= 10 on "
                                        "GPU at 512)")
        out[f"{size}: σ_max exact share of full step"] = (
            f"{100 * steps['sigma_exact']['share_of_full']:.1f} % (target <= 5 %)")
        out[f"{size}: σ_max warm share of full step"] = (
            f"{100 * steps['sigma_warm']['share_of_full']:.1f} %")
        up = entry["upsampling"]
        out[f"{size}: GaussianUpsample / bilinear"] = (
            f"{up['upsample_gaussian']['ratio']:.3f} (target <= 1.2)")
        if "upsample_gaussian_cl" in up:
            cl = up["upsample_gaussian_cl"]["median_s"]
            out[f"{size}: GaussianUpsample / bilinear, both channels-last"] = (
                f"{cl / up['upsample_bilinear_cl']['median_s']:.3f} (target <= 1.2); "
                f"{cl / up['upsample_bilinear']['median_s']:.3f} of the default layout's "
                "bilinear")
        bare = entry.get("bare_options")
        if bare:
            best = min(bare, key=lambda name: bare[name]["ratio"])
            out[f"{size}: fastest bare step"] = (
                f"{best}: {1 / bare[best]['ratio']:.2f}x faster than float32 (target >= 1.5 "
                "at 64, the quick preset)")
    for size, entry in results.get("batched", {}).items():
        out[f"{size}: fit_many throughput gain"] = (
            f"{entry['fit_many']['speedup']:.2f}x (target >= 1.5 on CPU at 64, >= 4 on GPU at 256)")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sizes", type=int, nargs="*", default=None,
                        help="image sizes (default: 64 128 256; 64 with --quick; none: only "
                             "the batched fits)")
    parser.add_argument("--channels", type=int, default=None,
                        help="decoder width (default: 32 at 64², the quick preset; else 128)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds (default 9; 3 with --quick; at most 5 at 256²+ on "
                             "a CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds first (2)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--batch", type=int, default=8, help="members of the batched fit (8)")
    parser.add_argument("--batched-sizes", type=int, nargs="*", default=None,
                        help="sizes for fit_many (default: 64 on a CPU, 256 on CUDA)")
    parser.add_argument("--batched-iterations", type=int, default=None)
    parser.add_argument("--batched-repeats", type=int, default=None)
    parser.add_argument("--accuracy-iterations", type=int, default=None,
                        help="iterations of the GPU-option accuracy fits (default 500)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    parser.add_argument("--no-options", action="store_true",
                        help="skip row 8 (the bare step with each speed option)")
    parser.add_argument("--compile-bare", action="store_true",
                        help="row 8 also times torch.compile of the decoder (slow to compile)")
    parser.add_argument("--fit-accuracy-sizes", type=int, nargs="*", default=None,
                        help="row 9: whole fits with bf16 / channels-last against float32 "
                             "(default: 64; none with --quick)")
    parser.add_argument("--fit-accuracy-iterations", type=int, default=2000,
                        help="iterations of the row-9 fits (2000)")
    for flag in GPU_FLAGS:
        parser.add_argument(f"--{flag.replace('_', '-')}", action="store_true",
                            help=f"CUDA only: also time the full step with {flag} and check "
                                 "its final PSNR against float32")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.probe:
        probe(args.probe, args.sizes[0], args.channels or 0)
        return
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    sizes = args.sizes if args.sizes is not None else ([64] if args.quick else [64, 128, 256])
    args.repeats = args.repeats or (3 if args.quick else 9)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.batched_repeats = args.batched_repeats or (1 if args.quick else 3)
    args.accuracy_iterations = args.accuracy_iterations or (50 if args.quick else 500)
    if args.quick:
        args.batched_iterations = args.batched_iterations or 4
    batched_sizes = args.batched_sizes if args.batched_sizes is not None else (
        [256] if device.type == "cuda" else [QUICK.image_size])
    wanted_flags = [f for f in GPU_FLAGS if getattr(args, f)]
    if wanted_flags and device.type != "cuda":
        print(f"skipping {', '.join('--' + f.replace('_', '-') for f in wanted_flags)}: "
              "GPU options are only measured with --device cuda", file=sys.stderr)
        for flag in wanted_flags:
            setattr(args, flag, False)

    results: dict = {
        "device": device_name(device, args.threads), "device_type": device.type,
        "torch": torch.__version__, "dipspec": dipspec.__version__,
        "python": platform.python_version(), "command": " ".join(sys.argv),
        "sizes": {}, "batched": {},
    }
    if device.type == "cpu" and not args.no_memory and sizes:
        results["baseline_rss"] = cpu_peak_rss("none", sizes[0], 0, args.threads)
    started = time.perf_counter()
    for size in sizes:
        channels = channels_for(size, args.channels)
        print(f"[{time.perf_counter() - started:6.0f}s] {size}x{size}, {channels} channels",
              file=sys.stderr, flush=True)
        entry = {"channels": channels,
                 "naive_instruments_max_rel_gap": check_naive_instruments(Problem(size, device)),
                 "steps": bench_steps(size, channels, device, args),
                 "upsampling": bench_upsampling(size, device, args)}
        if not args.no_options:
            args.compile = args.compile_bare
            entry["bare_options"] = options.bench_bare_options(
                Problem(size, device), channels, device, args, interleaved)
        if wanted_flags and device.type == "cuda":
            entry["gpu_flags"] = bench_gpu_flags(size, device, args)
        results["sizes"][size] = entry
        if args.out:  # keep what is done if a long run is stopped
            args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
    for size in batched_sizes:
        print(f"[{time.perf_counter() - started:6.0f}s] fit_many at {size}x{size}",
              file=sys.stderr, flush=True)
        results["batched"][size] = dict(bench_batched(size, device, args),
                                        channels=channels_for(size, args.channels))
    accuracy_sizes = args.fit_accuracy_sizes if args.fit_accuracy_sizes is not None else (
        [] if args.quick else [QUICK.image_size])
    results["fit_accuracy"] = []
    for size in accuracy_sizes:
        print(f"[{time.perf_counter() - started:6.0f}s] {args.fit_accuracy_iterations}-step fits "
              f"at {size}x{size}: float32, bf16, channels-last", file=sys.stderr, flush=True)
        results["fit_accuracy"].append(options.fit_accuracy(
            size, channels_for(size, args.channels), device, args.fit_accuracy_iterations))
        if args.out:
            args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
    results["targets"] = targets(results)
    results["total_s"] = time.perf_counter() - started
    print(markdown(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
