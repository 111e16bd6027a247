"""What one step of DIP Linear-2048 costs, and what dipspec's two remedies buy.

Usage::

    python benchmarks/linear_dip.py                      # 128×128 colour, width 2048, 2 threads
    python benchmarks/linear_dip.py --size 64 --width 512 --steps 8

DIP Linear-2048 (Chakrabarty & Maji; :class:`dipspec.baselines.LinearDIP`) has two weight
matrices of ``3·H·W × 2048``: 2.8·10⁸ parameters at 128×128. One process measures, in order,

1. ``foreach``  - forward + backward + the multi-tensor Adam (PyTorch's default on a CPU for
   lists of tensors, and what dipspec used before);
2. ``fused``    - the same with fused Adam (``dipspec._fit._adam`` picks it for such networks);
3. ``retained`` - fused Adam after :func:`dipspec.baselines.retain_freed_memory`, which stops
   glibc from unmapping and faulting in the fresh gradients every step.

The third phase changes the process's allocator for good, so the phases run in this order,
not interleaved; each reports the median of ``--steps`` timed steps after ``--warmup``, and
its ratio to the first. Absolute times only mean something next to the device line.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from run import device_name, peak_rss_bytes  # benchmarks/run.py, beside this script

from dipspec.baselines import LinearDIP, retain_freed_memory


def _step_times(net: LinearDIP, optimizer: torch.optim.Optimizer, code: torch.Tensor,
                target: torch.Tensor, steps: int, warmup: int) -> list[float]:
    times = []
    for i in range(warmup + steps):
        started = time.perf_counter()
        loss = F.mse_loss(net(code), target)
        optimizer.zero_grad(set_to_none=True)  # as dipspec.fit does
        loss.backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="image side (128)")
    parser.add_argument("--width", type=int, default=2048, help="hidden units (2048)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per phase (10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per phase (2)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    args = parser.parse_args(argv)
    if min(args.size, args.width, args.steps, args.threads) < 1 or args.warmup < 0:
        parser.error("--size, --width, --steps and --threads must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)
    net = LinearDIP(args.width, args.size, out_channels=3, seed=0)
    generator = torch.Generator().manual_seed(0)
    code = torch.randn(1, 3, args.size, args.size, generator=generator)
    target = torch.rand(1, 3, args.size, args.size, generator=generator)
    params = list(net.parameters())
    print(f"{device_name(torch.device('cpu'), args.threads)}, torch {torch.__version__}; "
          f"LinearDIP({args.width}) at {args.size}x{args.size}: "
          f"{sum(p.numel() for p in params):.3g} parameters")

    phases = {}
    for name, kwargs in (("foreach", dict(foreach=True)), ("fused", dict(fused=True)),
                         ("retained", dict(fused=True))):
        if name == "retained" and not retain_freed_memory():
            print("retained: skipped (the C library is not glibc)")
            continue
        optimizer = torch.optim.Adam(params, lr=1e-4, **kwargs)
        phases[name] = statistics.median(
            _step_times(net, optimizer, code, target, args.steps, args.warmup))
        del optimizer
    base = phases["foreach"]
    print("| phase | median step (s) | ratio to foreach |\n|---|---:|---:|")
    for name, seconds in phases.items():
        print(f"| {name} | {seconds:.3f} | {seconds / base:.2f} |")
    print(f"peak RSS {peak_rss_bytes() / 2**30:.1f} GiB")
    return phases


if __name__ == "__main__":
    main()
