"""Where a sweep's batches run: here, one after the other (``local``), or as Ray tasks on a
cluster (``ray``).

Both engines run the same function on the same batches (:func:`~.runner.run_batch`), so they
give the same table; they differ only in where and in which order. The driver — this process
— writes every result: a Ray task returns its rows and histories, and the driver journals them
as they arrive, so the workers need no shared file system.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence

import torch

from ...presets import resolve_device
from .plan import Batch
from .runner import run_batch, run_batch_task

__all__ = ["ENGINES", "BatchFailed", "LocalEngine", "RayEngine", "make_engine"]

#: ``on_done(batch, results)``: what an engine calls as each batch finishes.
OnDone = Callable[[Batch, list], None]
#: ``images(batch)``: the clean image of each member.
Images = Callable[[Batch], list[torch.Tensor]]


class BatchFailed(RuntimeError):
    """Some batches raised; the others were journalled. ``failures``: (batch, error) pairs."""

    def __init__(self, failures: list[tuple[Batch, BaseException]]) -> None:
        batch, error = failures[0]
        first = " ".join(str(error).split()) or type(error).__name__
        super().__init__(f"{len(failures)} batch(es) failed; first: {batch.fits[0].entry}: "
                         f"{type(error).__name__}: {first[:300]}")
        self.failures = failures


class LocalEngine:
    """The batches one after the other, in this process, on ``device``."""

    name = "local"

    def __init__(self, device: str | torch.device = "auto") -> None:
        self.device = resolve_device(device)

    @property
    def device_type(self) -> str:
        return self.device.type

    def describe(self) -> str:
        return f"local on {self.device}"

    def run(self, batches: Sequence[Batch], images: Images, on_done: OnDone) -> None:
        failures = []
        for batch in batches:
            try:
                results = run_batch([f.config for f in batch.fits], images(batch), self.device)
            except (RuntimeError, ValueError, MemoryError) as err:
                failures.append((batch, err))
                continue
            on_done(batch, results)
        if failures:
            raise BatchFailed(failures)

    def close(self) -> None:
        pass


class RayEngine:
    """One Ray task per batch, on a new local Ray or the cluster at ``address``.

    A task asks for one GPU when the cluster has any (and then fits on it), else one CPU. An
    existing connection (``ray.init`` called before) is used as it is and left open.
    """

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("--engine ray needs Ray, which is not installed: "
                             "pip install -e '.[ray]' (or pip install 'ray[default]')") from None
        self.ray, self.started = ray, False
        if not ray.is_initialized():
            options = {} if address else {"include_dashboard": False}
            handlers = _signal_handlers()
            ray.init(address=address, **options)
            _restore(handlers)  # Ray's driver setup may leave Ctrl-C ignored; fits need it
            self.started = True
        self.gpus = float(ray.cluster_resources().get("GPU", 0))

    @property
    def device_type(self) -> str:
        return "cuda" if self.gpus else "cpu"

    def describe(self) -> str:
        cpus = self.ray.cluster_resources().get("CPU", 0)
        return f"ray ({cpus:g} CPUs, {self.gpus:g} GPUs; one {self.device_type} per batch)"

    def run(self, batches: Sequence[Batch], images: Images, on_done: OnDone) -> None:
        ray = self.ray
        resources = {"num_gpus": 1} if self.gpus else {"num_cpus": 1}
        task = ray.remote(run_batch_task).options(**resources)
        stored: dict[int, object] = {}  # one copy of each image in the object store

        def put(image: torch.Tensor):
            if id(image) not in stored:
                stored[id(image)] = ray.put(image)
            return stored[id(image)]

        pending = {}
        for batch in batches:
            refs = [put(image) for image in images(batch)]
            # images as separate arguments: Ray hands top-level references over as tensors
            pending[task.remote([f.config for f in batch.fits], "auto", *refs)] = batch
        failures = []
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                batch = pending.pop(ready[0])
                try:
                    results = ray.get(ready[0])
                except ray.exceptions.RayError as err:
                    failures.append((batch, err))
                    continue
                on_done(batch, results)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        if failures:
            raise BatchFailed(failures)

    def close(self) -> None:
        if self.started:
            handlers = _signal_handlers()
            self.ray.shutdown()
            _restore(handlers)
            self.started = False


def _signal_handlers() -> dict:
    """This process's SIGINT / SIGTERM handlers (only the main thread may set them)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore(handlers: dict) -> None:
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)


ENGINES = ("local", "ray")


def make_engine(name: str, address: str | None = None,
                device: str | torch.device = "auto"):
    """The engine called ``name`` (``"local"`` or ``"ray"``)."""
    if name == "local":
        if address:
            raise ValueError("--address joins a Ray cluster; add --engine ray")
        return LocalEngine(device)
    if name == "ray":
        if str(device) != "auto":
            raise ValueError("--device is for --engine local; on Ray every batch gets a GPU "
                             "when the cluster has them, else a CPU")
        return RayEngine(address)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
