"""Rows 8 and 9 of ``run.py``: the speed options of a fit, timed and checked for accuracy.

Row 8 times the bare step (the paper's decoder, λ off, bilinear: forward + backward + Adam)
with each option against today's float32 step, interleaved in one process: channels-last
memory order, PyTorch's fused Adam kernel, bfloat16 autocast, their combination and, with
``--compile``, ``torch.compile`` of the decoder. Row 9 runs whole ``dipspec.fit`` calls (the
paper's configuration: λ, FBC, ratio, PSNR, backtracking) with ``precision="bf16"`` and with
``channels_last=True`` against float32 on the same seed: the final PSNR must stay within
0.05 dB and every FBC band within 0.01 (issue 13's accuracy check).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import dipspec
from dipspec.models import Decoder
from dipspec.presets import default_lambda, resolve
from dipspec.tasks import Denoise

#: Option sets of row 8, each against the first (today's float32 step).
BARE_VARIANTS = {
    "float32": frozenset(),
    "channels_last": frozenset({"channels_last"}),
    "fused_adam": frozenset({"fused_adam"}),
    "channels_last+fused_adam": frozenset({"channels_last", "fused_adam"}),
    "bf16": frozenset({"bf16"}),
    "channels_last+fused_adam+bf16": frozenset({"channels_last", "fused_adam", "bf16"}),
}
#: Option sets of row 9: keyword arguments of ``dipspec.fit``. The control changes nothing but
#: the CPU thread count (so the order of float32 sums): it shows how far rounding alone moves
#: a fit's trajectory, the floor under any accuracy check of the other options.
FIT_OPTIONS = {"float32": {}, "bf16": {"precision": "bf16"},
               "channels_last": {"channels_last": True},
               "control: float32, 1 thread": {"threads": 1}}
PSNR_TOLERANCE_DB = 0.05
FBC_TOLERANCE = 0.01


def bare_step(problem, channels: int, device: torch.device,
              options: frozenset) -> Callable[[], None]:
    """One bare step of the paper's decoder with ``options``, as a callable."""
    model = Decoder(out_channels=3, channels=channels, seed=0).to(device).train()
    code = problem.z
    if "channels_last" in options:
        model = model.to(memory_format=torch.channels_last)
        code = code.contiguous(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    fused = "fused_adam" in options
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=fused, foreach=not fused)
    forward = torch.compile(model) if "compile" in options else model

    def autocast():
        if "bf16" not in options:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def step() -> None:
        with autocast():
            output = forward(code)
        loss = F.mse_loss(output.float(), problem.observation)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def bench_bare_options(problem, channels: int, device: torch.device, args,
                       interleaved) -> dict:
    """Row 8: each option set's bare step, as a ratio to the float32 step of the same round."""
    variants = dict(BARE_VARIANTS)
    if args.compile:
        variants["channels_last+compile"] = frozenset({"channels_last", "compile"})
    steps = {}
    for name, options in variants.items():
        steps[name] = bare_step(problem, channels, device, options)
        started = time.perf_counter()
        steps[name]()  # compile (if asked) happens here, outside the timed rounds
        if "compile" in options:
            print(f"  torch.compile took {time.perf_counter() - started:.0f} s", flush=True)
    rounds = args.repeats if problem.size < 256 or device.type == "cuda" else min(args.repeats, 5)
    return interleaved(steps, device, rounds=rounds, warmup=args.warmup)


def fit_accuracy(size: int, channels: int, device: torch.device, iterations: int) -> dict:
    """Row 9: ``dipspec.fit`` with each option set against float32, same seed and model."""
    task = Denoise(clean=dipspec.data.load_image("astronaut", size=size), seed=0)
    lam = default_lambda("denoise", resolve("quick" if channels <= 32 else "paper"))
    rows = {}
    for name, options in FIT_OPTIONS.items():
        model = Decoder(out_channels=3, channels=channels, lipschitz_lambda=lam, seed=0)
        options = dict(options)
        threads = torch.get_num_threads()
        torch.set_num_threads(options.pop("threads", threads))
        started = time.perf_counter()
        try:
            result = dipspec.fit(task, model, iterations=iterations, seed=0, device=device,
                                 progress=False, **options)
        finally:
            torch.set_num_threads(threads)
        last = result.history.iloc[-1]
        rows[name] = {"seconds": time.perf_counter() - started,
                      "final_psnr": float(last["psnr"]),
                      "peak_psnr": float(result.history["psnr"].max()),
                      "fbc": [float(last[f"fbc_{k}"]) for k in range(1, 6)]}
    base = rows["float32"]
    for row in rows.values():
        row["psnr_gap_db"] = abs(row["final_psnr"] - base["final_psnr"])
        row["peak_gap_db"] = abs(row["peak_psnr"] - base["peak_psnr"])
        row["fbc_gap"] = max(abs(a - b) for a, b in zip(row["fbc"], base["fbc"]))
        row["speed"] = base["seconds"] / row["seconds"]
        row["accurate"] = (row["psnr_gap_db"] <= PSNR_TOLERANCE_DB
                           and row["fbc_gap"] <= FBC_TOLERANCE)
    return {"size": size, "channels": channels, "iterations": iterations, "lambda": lam,
            "options": rows}


def markdown_rows(size: int, channels: int, bare: dict | None) -> list[str]:
    """The table rows of row 8 (same columns as the step rows)."""
    if not bare:
        return []
    return [f"| {size} | {channels} | 8. bare step, {name} | {1e3 * row['median_s']:.2f} | "
            f"{row['ratio']:.3f} (to float32) | |" for name, row in bare.items()]


def accuracy_markdown(accuracy: list[dict]) -> list[str]:
    """Row 9 as its own table."""
    if not accuracy:
        return []
    lines = ["", "| size | channels | iterations | option | final PSNR (dB) | peak PSNR (dB) | "
             "ΔPSNR final (dB) | Δ peak (dB) | max ΔFBC | fit time (s) | speed vs float32 | within "
             f"{PSNR_TOLERANCE_DB} dB / {FBC_TOLERANCE} |",
             "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for entry in accuracy:
        for name, row in entry["options"].items():
            lines.append(f"| {entry['size']} | {entry['channels']} | {entry['iterations']} | "
                         f"{name} | {row['final_psnr']:.3f} | {row['peak_psnr']:.3f} | "
                         f"{row['psnr_gap_db']:.3f} | {row['peak_gap_db']:.3f} | "
                         f"{row['fbc_gap']:.4f} | "
                         f"{row['seconds']:.0f} | {row['speed']:.2f}x | "
                         f"{'ok' if row['accurate'] else 'NO'} |")
    return lines
