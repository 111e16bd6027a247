"""The ``dipspec`` command: parse, dispatch, and turn every failure into one line.

``main`` returns the exit code (see :mod:`~dipspec.cli.errors`): 0 done, 1 failed while
running, 2 bad usage or input, 130 Ctrl-C, 143 SIGTERM. No traceback unless ``--debug``.
"""

from __future__ import annotations

import sys

from .errors import (
    EXIT_FAILURE,
    EXIT_USAGE,
    RunError,
    UsageError,
    interrupt_exit_code,
    one_line,
    one_line_warnings,
    sigterm_raises,
)
from .parser import build_parser

__all__ = ["main"]


def _command(name: str):
    if name == "run":
        from .run import run_command
        return run_command
    if name == "resume":
        from .run import resume_command
        return resume_command
    if name == "sweep":
        from .sweep import sweep_command
        return sweep_command
    if name == "teach":
        from .teach import teach_command
        return teach_command
    from .table import table_command
    return table_command


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dipspec`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a usage error argparse printed on one line
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    args.argv = argv
    prog = f"dipspec {args.command}"
    with one_line_warnings(), sigterm_raises():
        try:
            return _command(args.command)(args)
        except KeyboardInterrupt as stop:  # outside a fit: nothing was being written
            print(f"{prog}: interrupted; nothing written", file=sys.stderr)
            return interrupt_exit_code(stop)
        except Exception as err:  # noqa: BLE001 - every failure ends as one line
            if args.debug:
                raise
            code = _exit_code(err)
            print(f"{prog}: error: {_message(err)}", file=sys.stderr)
            return code


def _exit_code(err: Exception) -> int:
    if isinstance(err, RunError):
        return EXIT_FAILURE
    if isinstance(err, (UsageError, ValueError, TypeError, FileNotFoundError, PermissionError,
                        IsADirectoryError, NotADirectoryError)):
        return EXIT_USAGE
    return EXIT_FAILURE


def _message(err: Exception) -> str:
    if isinstance(err, MemoryError):
        return "out of memory; pass a smaller --size, fewer --channels or fewer --iterations"
    if _exit_code(err) == EXIT_FAILURE and not isinstance(err, (RunError, OSError)):
        return f"{type(err).__name__}: {one_line(err)} (rerun with --debug for the traceback)"
    return one_line(err)
