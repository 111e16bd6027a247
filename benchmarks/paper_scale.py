"""Issue 19 in one command: the paper-scale runs that fit a GPU budget, sized from measured steps.

In priority order: (a) Chakrabarty & Maji's architecture table at the poster's settings
(``dipspec table architectures``: DIP of width 256 for 4000 steps, DIP Linear-128 and
Linear-2048 for 2000, ReLUNet for 20 000; the nine denoising images downsampled ×4; as many seeds
as the budget allows, at least one), (b) figure 05 (automatic stopping, 3 images, 10 000
iterations), (c) figure 04 (the σ sweep, 10 000) and (d) figure 01 (the FBC of plain DIP, 5000),
each through the package (the CLI, ``benchmarks/paper_figures.py``), never a notebook.

First every part is timed on the device: two short fits of the same networks (one image of the
table per architecture; each figure's batched members), whose difference gives the cost of one
step. Then the parts are planned greedily in priority order against what is left of the budget
(table columns one architecture at a time, with 3, 2 or 1 seeds: the most that still leaves room
for every part); a part that does not fit is skipped, and the reason printed. Each part runs
under ``timeout`` (and a figure stops its own fits a little earlier and writes what exists).

    PYTHONPATH=. python benchmarks/paper_scale.py --out OUT              # on the GPU
    PYTHONPATH=. python benchmarks/paper_scale.py --out OUT --dry-run    # CPU, tiny sizes

Writes ``OUT/plan.json`` (calibration, estimates, decisions, exit codes and times),
``OUT/summary.txt`` (what the terminal shows at the end) and ``OUT/paper_scale.tar.gz`` holding
``table/architectures.{csv,md,json}`` (or the journal of the finished fits, if the table was
stopped) and ``figures/<figure>.{png,json}`` with ``<figure>_histories.csv``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import paper_figures
import torch

from dipspec.experiments import chakrabarty

#: The poster's iterations per architecture (issue 19).
POSTER_ITERATIONS = {"DIP": 4000, "DIP Linear-128": 2000, "DIP Linear-2048": 2000,
                     "ReLUNet": 20000}
CLI_NAMES = {"DIP": "DIP", "DIP Linear-128": "Linear-128", "DIP Linear-2048": "Linear-2048",
             "ReLUNet": "ReLUNet"}
#: Parts (b), (c), (d): figures 05, 04 and 01.
FIGURE_PARTS = ("automatic_stop", "gaussian_control", "fbc_noise")
TABLE = {"factor": 4, "dip_channels": 256, "images": None, "iterations": POSTER_ITERATIONS,
         "calibration_image": "Peppers", "calibration_steps": (10, 110)}
DRY_TABLE = {"factor": 32, "dip_channels": 8, "images": ["Peppers"],
             "iterations": {"DIP": 4, "DIP Linear-128": 3, "DIP Linear-2048": 3, "ReLUNet": 6},
             "calibration_image": "Peppers", "calibration_steps": (1, 3)}
#: (Estimated seconds + a process's start and writing) × this is a part's hard time limit.
MARGIN = 1.5
#: Seconds a process keeps for writing its files after its fits are stopped (GPU, dry run).
WRITE_RESERVE_S = {False: 20.0, True: 10.0}


class Clock:
    def __init__(self, budget_s: float) -> None:
        self.started, self.budget_s = time.perf_counter(), budget_s

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def left(self) -> float:
        return self.budget_s - self.elapsed


def say(*parts) -> None:
    print(*parts, flush=True)


def startup_seconds(python: str, device: str) -> float:
    """What a new process costs before its first fit: imports and the device's start."""
    code = ("import torch, dipspec.experiments, dipspec.plots, matplotlib.pyplot; "
            f"torch.zeros(1, device={device!r}).sum().item()")
    started = time.perf_counter()
    subprocess.run([python, "-c", code], check=True)
    return time.perf_counter() - started


def calibrate_table(spec: dict, device: torch.device) -> tuple[dict, dict | None, str | None]:
    """Per architecture ``{per_step_s, fixed_s}`` on one image, the images' pixel counts, or
    the reason the table cannot run (its images are unreadable: the CLI has no stand-ins)."""
    try:
        images = chakrabarty.table_images(spec["factor"], spec["images"])
    except (FileNotFoundError, ValueError) as err:
        return {}, None, f"the paper's denoising images are not readable ({err})"
    name = next(k for k in images if spec["calibration_image"].lower() in k.lower())
    one = {name: images[name]}
    reference = images[name].shape[-2] * images[name].shape[-1]
    n1, n2 = spec["calibration_steps"]
    costs = {}
    for arch in POSTER_ITERATIONS:
        walls = []
        for count in (n1, n1, n2):  # the first warms up (the device, kernel choice): not counted
            started = time.perf_counter()
            chakrabarty.architecture_table(one, seeds=[0], iterations={arch: count},
                                           architectures=[arch],
                                           dip_channels=spec["dip_channels"], device=device)
            walls.append(time.perf_counter() - started)
        walls = walls[1:]
        per_step = max((walls[1] - walls[0]) / (n2 - n1), 1e-6)
        costs[arch] = {"per_step_s": per_step, "fixed_s": max(walls[0] - n1 * per_step, 0.0),
                       "walls_s": walls, "steps": [n1, n2], "image": name}
    scale = {k: max(1.0, v.shape[-2] * v.shape[-1] / reference) for k, v in images.items()}
    return costs, scale, None


def table_estimate(cost: dict, scale: dict, iterations: int) -> float:
    """One seed of one architecture over every image (larger images cost more, smaller not
    less: small fits on a GPU are bound by kernel launches, not pixels)."""
    return sum(cost["fixed_s"] + cost["per_step_s"] * factor * iterations
               for factor in scale.values())


def plan(left: float, columns: dict, figures: dict, overhead: float,
         max_seeds: int) -> tuple[int, dict]:
    """Greedy in priority order: ``(seeds, {part: "run" or the reason it is skipped})``.

    ``columns`` are the table's per-seed estimates by architecture, ``figures`` the figures'
    estimates; every process adds ``overhead`` (its start and the writing of its files). The
    most seeds (≤ ``max_seeds``) for which every part fits are taken; if none does, one seed
    and the parts that fit, in order.
    """
    def greedy(seeds: int) -> dict:
        decisions, remaining, table_started = {}, left, False
        for part, cost in [*[(f"table: {a}", c * seeds) for a, c in columns.items()],
                           *figures.items()]:
            needed = cost * 1.15 + (0 if part.startswith("table") and table_started
                                    else overhead)
            if needed <= remaining:
                decisions[part], remaining = "run", remaining - needed
                table_started |= part.startswith("table")
            else:
                decisions[part] = f"skipped: needs ~{needed:.0f} s, {remaining:.0f} s left"
        return decisions

    for seeds in range(max_seeds, 0, -1):
        decisions = greedy(seeds)
        if all(d == "run" for d in decisions.values()):
            return seeds, decisions
    return 1, greedy(1)


def run_part(command: list[str], limit: float, log: dict) -> int:
    """``command`` under ``timeout`` (SIGTERM at ``limit``, SIGKILL 15 s later)."""
    limit = max(int(limit), 5)
    say(f"$ timeout -k 15 {limit} {' '.join(command)}")
    started = time.perf_counter()
    code = subprocess.run(["timeout", "-k", "15", str(limit), *command]).returncode
    log.update(command=command, limit_s=limit, exit=code,
               wall_s=round(time.perf_counter() - started, 1),
               timed_out=code in (124, 137))
    say(f"exit {code} after {log['wall_s']} s" + (" (time limit)" if log["timed_out"] else ""))
    return code


def table_command(args, spec: dict, seeds: int, architectures: list[str], out: Path) -> list:
    counts = ",".join(f"{CLI_NAMES[a]}={spec['iterations'][a]}" for a in architectures)
    command = [args.python, "-m", "dipspec.cli", "table", "architectures", "--seeds", str(seeds),
               "--factor", str(spec["factor"]), "--iterations", counts,
               "--architectures", *[CLI_NAMES[a] for a in architectures],
               "--dip-channels", str(spec["dip_channels"]), "--device", args.device,
               "--out", str(out)]
    return command + (["--images", *spec["images"]] if spec["images"] else [])


def figure_args(figure: str, args, out: Path) -> list[str]:
    return [figure, "--out", str(out), "--device", args.device,
            *(["--dry-run"] if args.dry_run else [])]


def calibrate(args, clock: Clock, report: dict) -> tuple[dict, dict, dict, float]:
    spec = DRY_TABLE if args.dry_run else TABLE
    device = torch.device(args.device)
    startup = startup_seconds(args.python, args.device)
    say(f"[{clock.elapsed:5.0f} s] a new process costs {startup:.1f} s before its first fit")
    costs, scale, why = calibrate_table(spec, device)
    columns = {} if why else {a: table_estimate(costs[a], scale, n)
                              for a, n in spec["iterations"].items()}
    for arch, cost in costs.items():
        say(f"[{clock.elapsed:5.0f} s] table {arch}: {1e3 * cost['per_step_s']:.2f} ms/step on "
            f"{cost['image']} → ~{columns[arch]:.0f} s per seed for {len(scale)} images × "
            f"{spec['iterations'][arch]} steps")
    if why:
        say(f"[{clock.elapsed:5.0f} s] table: {why}")
    figures = {}
    for figure in FIGURE_PARTS:
        fig_args = paper_figures.parser().parse_args(figure_args(figure, args, Path(".")))
        cost = paper_figures.calibrate(figure, fig_args, (2, 6) if args.dry_run else (10, 60))
        figures[figure] = cost["fixed_s"] + cost["per_step_s"] * cost["iterations"]
        report["calibration"][figure] = cost
        say(f"[{clock.elapsed:5.0f} s] figure {figure}: {1e3 * cost['per_step_s']:.2f} ms/step "
            f"for {cost['members']} members → ~{figures[figure]:.0f} s for "
            f"{cost['iterations']} iterations")
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the parts run in their own processes
    report["calibration"].update(startup_s=startup, table=costs, table_unavailable=why)
    report["estimates_s"] = {"table per seed": columns, **figures}
    return spec, columns, figures, startup


def execute(args, clock: Clock, work: Path, report: dict) -> None:
    spec, columns, figures, startup = calibrate(args, clock, report)
    reserve = WRITE_RESERVE_S[args.dry_run]
    overhead = startup + reserve
    seeds, decisions = plan(clock.left, columns, figures, overhead, args.max_seeds)
    if not columns:
        decisions = {"table": f"skipped: {report['calibration']['table_unavailable']}",
                     **decisions}
    report.update(seeds=seeds, decisions=decisions, parts={})
    say(f"[{clock.elapsed:5.0f} s] plan ({clock.left:.0f} s left), table with {seeds} seed(s):")
    for part, decision in decisions.items():
        say(f"    {part}: {decision}")
    chosen = [a for a in columns if decisions.get(f"table: {a}") == "run"]
    if chosen:
        estimate = sum(columns[a] for a in chosen) * seeds
        log = report["parts"]["table"] = {"architectures": chosen, "estimate_s": estimate}
        run_part(table_command(args, spec, seeds, chosen, work / "table"),
                 min(clock.left, (estimate + overhead) * MARGIN), log)
    for figure in FIGURE_PARTS:
        if decisions[figure] != "run":
            continue
        needed = figures[figure] * 1.15 + overhead
        if needed > clock.left:
            decisions[figure] = (f"skipped when its turn came: needs ~{needed:.0f} s, "
                                 f"{clock.left:.0f} s left (earlier parts ran longer)")
            say(f"[{clock.elapsed:5.0f} s] {figure}: {decisions[figure]}")
            continue
        limit = min(clock.left, (figures[figure] + overhead) * MARGIN)
        log = report["parts"][figure] = {"estimate_s": figures[figure]}
        command = [args.python, str(Path(__file__).with_name("paper_figures.py")),
                   *figure_args(figure, args, work / "figures"),
                   "--budget-s", f"{max(limit - reserve, 1.0):.0f}"]
        run_part(command, limit, log)


def summarise(work: Path, report: dict) -> str:
    lines = [f"paper_scale summary ({'dry run, ' if report['dry_run'] else ''}device "
             f"{report['device']}, budget {report['budget_s']:.0f} s, used "
             f"{report['wall_s']:.0f} s)", f"table seeds: {report.get('seeds')}"]
    for part, decision in report.get("decisions", {}).items():
        ran = report.get("parts", {}).get(part.split(":")[0] if part.startswith("table")
                                          else part, {})
        state = (f"exit {ran['exit']} in {ran['wall_s']} s (estimate {ran['estimate_s']:.1f} s)"
                 if "exit" in ran else decision)
        lines.append(f"  {part}: {state}")
    md = work / "table" / "architectures.md"
    if md.is_file():
        lines += ["", *md.read_text().splitlines()[2:]]
    for figure in FIGURE_PARTS:
        meta = work / "figures" / f"{figure}.json"
        if not meta.is_file():
            continue
        prov = json.loads(meta.read_text())
        lines.append(f"\n{figure}: {prov['iterations']} of {prov['planned_iterations']} "
                     f"iterations, {prov['image_size'][0]}x{prov['image_size'][1]}, "
                     f"{prov['channels']} ch, fallbacks {prov.get('image_fallbacks')}")
        for label, row in prov["summary"].items():
            lines.append(f"  {label:>10}: peak {row['peak PSNR']:.2f} dB at "
                         f"{row['peak iteration']}, final {row['final PSNR']:.2f} dB")
        lines += [f"  {name}: {value}" for name, value in prov["findings"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--budget-s", type=float, default=540.0,
                        help="everything, calibration included (default 540)")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--device", default=None, help="default: cuda (dry run: cpu)")
    parser.add_argument("--max-seeds", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.dry_run else "cuda")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("CUDA is not available here: run on the GPU machine, or use --dry-run")
    clock = Clock(args.budget_s)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="paper_scale."))
    report = {"dry_run": args.dry_run, "device": args.device, "budget_s": args.budget_s,
              "calibration": {}, "work": str(work)}
    try:
        execute(args, clock, work, report)
    finally:
        report["wall_s"] = clock.elapsed
        (args.out / "plan.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
        with tarfile.open(args.out / "paper_scale.tar.gz", "w:gz") as tar:
            for folder in ("table", "figures"):
                if (work / folder).is_dir():
                    tar.add(work / folder, arcname=folder)
        text = summarise(work, report)
        (args.out / "summary.txt").write_text(text + "\n")
        say("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
