"""Stopping a fit from outside: Ctrl-C, SIGTERM (through the CLI) and a diverged loss.

While the engine runs in the main thread, the first Ctrl-C does not tear the loop apart: it asks
the loop to stop at the end of the current iteration, where the state is consistent, so the
engine can write a checkpoint and return what exists (:class:`FitInterrupted`). A second Ctrl-C
interrupts at once (the partial results then end at the last completed iteration).
"""

from __future__ import annotations

import signal
import threading

__all__ = ["FitDiverged", "FitInterrupted", "interrupt_trap", "request_interrupt"]


class FitInterrupted(KeyboardInterrupt):
    """A fit stopped by Ctrl-C or SIGTERM; ``results`` hold what exists.

    Attributes
    ----------
    results : list of FitResult
        Every member frozen at ``iteration`` (``interrupted`` is True); empty when not a single
        iteration completed.
    result : FitResult or None
        The first member (what :func:`dipspec.fit` would have returned).
    iteration : int
        The last completed iteration (-1 if none).
    reason : str
        ``"SIGINT"``, ``"SIGTERM"`` or ``"KeyboardInterrupt"`` (an interrupt mid-iteration).
    checkpoint : str or None
        Where the fit's state was saved (resume with :func:`dipspec.fitting.resume`).
    """

    def __init__(self, results: list, iteration: int, reason: str,
                 checkpoint: str | None = None) -> None:
        where = f"; state saved to {checkpoint}" if checkpoint else ""
        super().__init__(f"fit interrupted ({reason}) after iteration {iteration}{where}")
        self.results, self.iteration, self.reason = results, iteration, reason
        self.result = results[0] if results else None
        self.checkpoint = checkpoint


class FitDiverged(RuntimeError):
    """The loss became NaN or infinite; ``result`` keeps the history and best output so far."""

    def __init__(self, result, iteration: int) -> None:
        super().__init__(f"the loss became non-finite by iteration {iteration} (a learning rate "
                         "too high, or NaN in the input?); the fit stopped there and "
                         "result.best keeps the best output so far")
        self.result, self.iteration = result, iteration


class _Trap:
    reason: str | None = None


_ACTIVE: list[_Trap] = []


class interrupt_trap:  # noqa: N801  (used as a context manager, named like one)
    """While active: the first SIGINT sets ``reason``; a second raises ``KeyboardInterrupt``.

    Only in the main thread, and only over Python's default SIGINT handler: a handler someone
    else installed (a CLI, a notebook kernel with its own) is left alone.
    """

    def __enter__(self) -> _Trap:
        self.trap, self.previous = _Trap(), None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        _ACTIVE.append(self.trap)
        return self.trap

    def _on_sigint(self, signum, frame) -> None:
        if self.trap.reason is not None:
            raise KeyboardInterrupt
        self.trap.reason = "SIGINT"

    def __exit__(self, *exc) -> None:
        _ACTIVE.remove(self.trap)
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def request_interrupt(reason: str = "SIGTERM") -> bool:
    """Ask the running fit(s) to stop at the end of the current iteration, as Ctrl-C does.

    Safe to call from a signal handler (the CLI's SIGTERM handler calls it). Returns whether a
    fit was running to hear it.
    """
    for trap in _ACTIVE:
        trap.reason = trap.reason or reason
    return bool(_ACTIVE)
