"""The two small readers of ``gpu_check.sh`` (issue 18), from the files the steps wrote.

``options``: the precision of the λ experiment, from the benchmark's GPU-option accuracy rows
(row 7 of ``run.py``): bf16 (autocast) or TF32 (``--tf32 on``) only where every size's row
passed its 0.05 dB check; otherwise float32 with PyTorch's default flags (cuDNN convolutions
in TF32, matmuls in float32 — the arithmetic the benchmark's own float32 baseline ran). Prints
the arguments for ``paper_figures.py`` on stdout, the reasons on stderr.

``summary``: one screen — the steps (exit code, seconds, budget), the CUDA tests' result line,
the benchmark's key ratios (its ``targets``) and GPU-option rows, and the λ experiment's peak and
final PSNR per λ beside SPEC §9's read-outs; also written to ``OUT/summary.txt``::

    python benchmarks/gpu_summary.py options OUT/results-cuda.json
    python benchmarks/gpu_summary.py summary OUT WORK
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FLAGS = ("bf16", "tf32")


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def accuracy(bench: dict | None, flag: str) -> tuple[bool, str]:
    """Whether ``flag``'s accuracy row passed at every size measured, and why (one line)."""
    rows = {size: entry.get("gpu_flags", {}).get(f"full_{flag}")
            for size, entry in (bench or {}).get("sizes", {}).items()}
    rows = {size: row for size, row in rows.items() if row}
    if not rows:
        return False, f"{flag}: no accuracy row (not a CUDA run, or the benchmark stopped early)"
    gaps = ", ".join(f"{row['psnr_gap_db']:.3f} dB at {size}²" for size, row in rows.items())
    passed = all(row.get("accurate") for row in rows.values())
    verdict = "passed" if passed else "failed"
    return passed, f"{flag}: final-PSNR gap {gaps} (target ≤ 0.05): {verdict}"


def options(bench_path: str) -> int:
    bench = _read(Path(bench_path))
    bf16, why_bf16 = accuracy(bench, "bf16")
    tf32, why_tf32 = accuracy(bench, "tf32")
    chosen = ["--precision", "bf16" if bf16 else "fp32", "--tf32", "on" if tf32 else "default"]
    print(f"λ experiment precision: {why_bf16}; {why_tf32} → {' '.join(chosen)}",
          file=sys.stderr)
    print(" ".join(chosen))
    return 0


def _steps(work: Path) -> list[str]:
    lines = []
    path = work / "steps.tsv"
    for line in (path.read_text().splitlines() if path.is_file() else []):
        name, code, seconds, budget, *note = line.split("\t")
        state = {"0": "ok", "124": "STOPPED at its budget", "137": "KILLED at its budget"}.get(
            code, f"FAILED (exit {code})") if code != "-" else "skipped"
        lines.append(f"  {name:<10} {state:<22} {seconds:>4} s of {budget} s  {' '.join(note)}")
    return lines


def _tests(work: Path) -> str:
    path = work / "cuda_tests.txt"
    text = path.read_text().strip().splitlines() if path.is_file() else []
    return text[-1] if text else "no output"


def _bench(bench: dict | None, compiled: dict | None) -> list[str]:
    if not bench:
        return ["benchmark: no results-cuda.json"]
    lines = [f"benchmark: {bench['device']}, torch {bench['torch']} "
             f"({bench.get('total_s', 0):.0f} s)"]
    lines += [f"  {key}: {value}" for key, value in bench.get("targets", {}).items()]
    for source in (bench, compiled or {}):
        for size, entry in source.get("sizes", {}).items():
            for name, row in entry.get("gpu_flags", {}).items():
                if name != "full_float32":
                    lines.append(f"  {size}²: {name} step ×{row['ratio']:.3f} of float32, "
                                 f"final PSNR gap {row['psnr_gap_db']:.3f} dB: "
                                 f"{'ok' if row['accurate'] else 'fails 0.05 dB'}")
    return lines


def _lambda(prov: dict | None) -> list[str]:
    if not prov:
        return ["λ experiment: no lipschitz_control.json"]
    stopped = prov.get("interrupted")
    lines = [f"λ experiment (figure 03): {prov['iterations']} of {prov['planned_iterations']} "
             f"iterations{' (stopped: ' + stopped['reason'] + ')' if stopped else ''}, "
             f"{prov['image_size'][0]}x{prov['image_size'][1]}, {prov['channels']} channels, "
             f"{prov['device_name']}, precision {prov['precision']}, TF32 "
             f"{prov['tf32']['mode']}, {prov['fit_wall_s']} s "
             f"({1e3 * prov['per_step_s']:.1f} ms/step for {len(prov['summary'])} runs)"]
    if prov.get("image_fallbacks"):
        lines.append(f"  STAND-INS, not the paper's images: {prov['image_fallbacks']}")
    readouts = prov.get("paper_readouts", {})
    for label, row in prov["summary"].items():
        bands = ", ".join(f"{row.get(f'fbc_{k} @end', float('nan')):.2f}" for k in range(1, 6))
        lines.append(f"  {label:>9}: peak {row['peak PSNR']:.2f} dB at {row['peak iteration']}, "
                     f"final {row['final PSNR']:.2f} dB, FBC at end ({bands})")
        if label in readouts:
            lines.append(f"  {'':>9}  paper: {readouts[label]}")
    lines += [f"  {name}: {value}" for name, value in prov.get("findings", {}).items()]
    return lines


def summary(out_dir: str, work_dir: str) -> int:
    out, work = Path(out_dir), Path(work_dir)
    files = sorted({p.name for p in out.iterdir()} | {"summary.txt"})
    lines = ["gpu_check summary", "steps:", *_steps(work), f"CUDA tests: {_tests(work)}",
             *_bench(_read(out / "results-cuda.json"), _read(out / "results-cuda-compile.json")),
             *_lambda(_read(out / "lipschitz_control.json")),
             f"files in {out}: {', '.join(files)}"]
    text = "\n".join(lines)
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    commands = {"options": options, "summary": summary}
    if len(sys.argv) < 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    sys.exit(commands[sys.argv[1]](*sys.argv[2:]))
