"""How the command line fails: one line on stderr, an exit code, no traceback (unless --debug).

Exit codes: 0 done; 1 a failure at run time (out of memory, a diverged fit, a disk error);
2 bad usage or input (a flag, an image file, an output folder), always found before the first
iteration; 130 interrupted by Ctrl-C (SIGINT); 143 stopped by SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import warnings
from collections.abc import Iterator

__all__ = [
    "EXIT_FAILURE",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_USAGE",
    "RunError",
    "Terminated",
    "UsageError",
    "deferred_signals",
    "flag",
    "interrupt_exit_code",
    "one_line",
    "one_line_warnings",
    "sigterm_raises",
]

EXIT_FAILURE, EXIT_USAGE, EXIT_SIGINT, EXIT_SIGTERM = 1, 2, 130, 143


class UsageError(ValueError):
    """A bad flag, input file or output folder: one line, exit code 2."""


class RunError(RuntimeError):
    """A failure while running (after the inputs were accepted): one line, exit code 1."""


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler, so SIGTERM unwinds like Ctrl-C (exit code 143)."""


def one_line(err: BaseException | str) -> str:
    """The message of ``err`` on one line (PIL and torch messages sometimes span several)."""
    text = str(err) if isinstance(err, str) else (str(err) or type(err).__name__)
    if isinstance(err, OSError) and err.strerror and err.filename and str(err.filename) not in text:
        text = f"{err.filename}: {err.strerror}"
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


@contextlib.contextmanager
def flag(name: str, value: object) -> Iterator[None]:
    """Turn an input error raised inside into a :class:`UsageError` that names the flag typed.

    ``with flag("--image", "photo.png"): load(...)`` turns ``ValueError("... is truncated")``
    into ``--image photo.png: ... is truncated``.
    """
    try:
        yield
    except UsageError:
        raise
    except Exception as err:  # noqa: BLE001 - a corrupt file raises anything (PIL, zlib)
        message = one_line(err)
        if isinstance(err, MemoryError):
            message = "not enough memory to read it"
        prefix = f"{name} {value}"
        text = message if message.startswith(name) else f"{prefix}: {message}"
        raise UsageError(text) from err


def interrupt_exit_code(err: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (``Terminated``, or a fit stopped by it)."""
    if isinstance(err, Terminated) or getattr(err, "reason", None) == "SIGTERM":
        return EXIT_SIGTERM
    cause = err.__cause__ or err.__context__
    return EXIT_SIGTERM if isinstance(cause, Terminated) else EXIT_SIGINT


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While active, SIGTERM asks a running fit to stop (as Ctrl-C does) or raises
    :class:`Terminated`; outside a fit it unwinds at once."""
    from ..fitting.interrupts import request_interrupt

    def on_sigterm(signum, frame) -> None:
        if not request_interrupt("SIGTERM"):
            raise Terminated("SIGTERM")

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs (a folder swap, the last writes), then
    deliver the first one that arrived, so no signal lands between two renames."""
    pending: list[int] = []

    def hold(signum, frame) -> None:
        pending.append(signum)

    try:
        previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pending:
            raise Terminated("SIGTERM") if pending[0] == signal.SIGTERM else KeyboardInterrupt


@contextlib.contextmanager
def one_line_warnings(prog: str = "dipspec") -> Iterator[None]:
    """Show each warning as one line, ``dipspec: warning: ...``, on stderr."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"{prog}: warning: {one_line(str(message))}", file=file or sys.stderr, flush=True)

    with warnings.catch_warnings():  # the filters stay as they are; only the format changes
        warnings.showwarning = show
        yield
