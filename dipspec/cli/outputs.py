"""The output folder of ``dipspec run``: never delete a user's file, never leave half a result.

Rules (every refusal is a :class:`~dipspec.cli.errors.UsageError` raised before any work):

- dipspec replaces only a folder it wrote itself, recognised by its marker file
  (:data:`MARKER`, a small JSON listing the files it wrote). A folder with anything else in it,
  a file, a symbolic link, the current folder or one that holds it, the folder of an input file
  or one that holds it, and a place where nothing can be written are refused.
- A run writes into a staging folder beside the target (``.NAME.dipspec-staging``: its
  checkpoints, then its results), then swaps: target → ``.NAME.dipspec-old``, staging → target,
  old removed. At every instant one complete result is on disk: a run killed mid-swap is
  finished (or rolled back) by the next run or resume into the same place, and a stale staging
  folder from a killed run is removed by the next run (``dipspec resume`` continues it instead).
- Folders get the usual permissions (``mkdir`` with the umask), never ``mkdtemp``'s 0700. A
  running staging folder is locked (``flock``), so two runs into one place refuse each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RunError, UsageError, deferred_signals

__all__ = ["CHECKPOINT", "MARKER", "OutputFolder", "check_target", "open_output", "read_marker",
           "recover", "remove_ours"]

MARKER = ".dipspec-output"
#: The fit's state in a staging (or partial) folder, for ``dipspec resume``.
CHECKPOINT = "checkpoint.pt"
_STAGING, _OLD = ".dipspec-staging", ".dipspec-old"


def _siblings(out: Path) -> tuple[Path, Path]:
    return out.parent / f".{out.name}{_STAGING}", out.parent / f".{out.name}{_OLD}"


def read_marker(folder: Path) -> dict | None:
    """The marker of a folder dipspec wrote, or ``None`` (no marker, or not dipspec's)."""
    try:
        info = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("written_by") == "dipspec" else None


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_target(typed: str, inputs: dict[str, str] | None = None, label: str = "--out") -> Path:
    """The absolute output path for ``--out typed``, after refusing anything dipspec must not
    replace. ``inputs`` maps the flags of input files to their paths (``{"--image": ...}``)."""
    out = Path(os.path.abspath(os.path.expanduser(typed)))
    where = f"{label} {typed}"
    if os.path.islink(out):
        raise UsageError(f"{where} is a symbolic link; pass the folder itself or a new path")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{where} is a file, not a folder; pass a new folder name")
    real, cwd = out.resolve(), Path.cwd().resolve()
    if _is_within(cwd, real):
        raise UsageError(f"{where} is the current folder or holds it; dipspec replaces its output "
                         "folder as a whole, so pass a new folder such as --out result")
    for name, path in (inputs or {}).items():
        source = Path(path).expanduser().resolve()
        if source.exists() and _is_within(source.parent, real):
            raise UsageError(f"{where} holds the input file {path} ({name}); pass a new folder "
                             "for the results, e.g. --out result")
    if out.is_dir():
        _check_ours(out, where)
    return out


def _check_ours(out: Path, where: str) -> None:
    entries = sorted(os.listdir(out))
    if not entries:
        return
    marker = read_marker(out)
    if marker is None:
        shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
        raise UsageError(f"{where} holds files dipspec did not write ({shown}); pass an empty "
                         "or new folder (dipspec replaces only folders it wrote)")
    foreign = sorted(set(entries) - set(marker.get("files", [])) - {MARKER})
    if foreign:
        shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise UsageError(f"{where} was written by dipspec but now also holds {shown}; move "
                         "those files away or pass another folder")


def remove_ours(folder: Path) -> None:
    """Remove a folder dipspec wrote: every entry but the marker, then the marker, then the
    folder, so a removal cut short still carries the marker and is finished later."""
    if not folder.is_dir():
        return
    for entry in os.scandir(folder):
        if entry.name == MARKER:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(folder / MARKER)
    os.rmdir(folder)


def _ours_or_empty(folder: Path, where: str) -> bool:
    """Whether ``folder`` (a staging or old folder) may be removed; refuse a stranger's."""
    if not folder.exists() and not os.path.islink(folder):
        return False
    if os.path.islink(folder) or not folder.is_dir():
        raise UsageError(f"{where}: {folder} is in the way and was not written by dipspec; "
                         "remove or rename it")
    if os.listdir(folder) and read_marker(folder) is None:
        raise UsageError(f"{where}: {folder} is in the way and was not written by dipspec; "
                         "remove or rename it")
    return True


def recover(out: Path, where: str) -> None:
    """Finish or roll back a swap that a killed run left half done (see the module notes)."""
    staging, old = _siblings(out)
    if not _ours_or_empty(old, where):
        return
    if not out.exists() and not os.path.islink(out):
        marker = read_marker(staging) if staging.is_dir() else None
        if marker and marker.get("state") in ("complete", "partial", "diverged"):
            os.rename(staging, out)  # the new result was complete: finish the swap
        elif read_marker(old) is not None:
            os.rename(old, out)  # roll back to the old result
    if old.exists():
        remove_ours(old)


def _lock(folder: Path) -> tuple[bool, int | None]:
    """Take an exclusive ``flock`` on ``folder``: (whether it was free, the descriptor)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; run on without them
        return True, None
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False, None
    return True, fd


def _write_json(path: Path, info: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(json.dumps(info, indent=1, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class OutputFolder:
    """A target folder and its locked staging folder, where a run writes until :meth:`publish`.
    """

    out: Path
    typed: str
    staging: Path
    label: str = "--out"
    resumed: bool = False
    cleaned: bool = False  # a killed run's staging folder was removed to make room
    _fd: int | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"{self.label} {self.typed}"

    def publish(self, state: str, keep: tuple[str, ...] = ()) -> None:
        """Swap the staging folder in place of the target, crash-safe; ``state`` is
        ``"complete"``, ``"partial"`` or ``"diverged"``. Stray temporary files are dropped;
        hidden files survive only if named in ``keep``."""
        for entry in os.scandir(self.staging):
            if entry.name.startswith(".") and entry.name not in (MARKER, *keep):
                os.unlink(entry.path)
        files = sorted(e for e in os.listdir(self.staging) if e != MARKER)
        for name in files:
            with open(self.staging / name, "rb") as handle:
                os.fsync(handle.fileno())
        _write_json(self.staging / MARKER, {"written_by": "dipspec", "state": state,
                                            "files": files})
        _fsync_folder(self.staging)
        _, old = _siblings(self.out)
        with deferred_signals():
            if self.out.exists() or os.path.islink(self.out):
                try:  # the target may have changed during the run
                    if os.path.islink(self.out) or not self.out.is_dir():
                        raise UsageError(f"{self.where} is no longer a folder")
                    _check_ours(self.out, self.where)
                except UsageError as err:
                    aside = self._set_aside()
                    raise RunError(f"{err}; the results were written to {aside}") from None
                os.rename(self.out, old)
            os.rename(self.staging, self.out)
            _fsync_folder(self.out.parent)
            if old.exists():
                remove_ours(old)
            self.release()

    def _set_aside(self) -> Path:
        """Move the finished staging folder to a new visible name beside the target."""
        for n in range(1, 1000):
            aside = self.out.with_name(f"{self.out.name}-dipspec-{n}")
            if not aside.exists() and not os.path.islink(aside):
                os.rename(self.staging, aside)
                self.release()
                return aside
        return self.staging

    def reset(self) -> None:
        """Empty a reopened staging folder (all but its marker) to start it afresh."""
        for entry in os.scandir(self.staging):
            if entry.name != MARKER:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        self.resumed = False

    def fail(self) -> None:
        """After a failure: keep a staging folder that holds a checkpoint (``dipspec resume``
        continues it; the next run into the same place removes it), remove any other."""
        if (self.staging / CHECKPOINT).is_file():
            self.release()
        else:
            self.abandon()

    def abandon(self) -> None:
        """Remove the staging folder (a run that failed before writing any result)."""
        self.release()
        if self.staging.exists():
            remove_ours(self.staging)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def open_output(typed: str, inputs: dict[str, str] | None = None, *, label: str = "--out",
                resume: bool = False) -> OutputFolder:
    """Check ``--out``, recover a half-done swap, then create (or, to resume, reopen) the locked
    staging folder; a stale staging folder from a killed run is removed unless resuming."""
    where = f"{label} {typed}"
    out = check_target(typed, inputs, label)
    staging, _ = _siblings(out)
    cleaned = False
    try:
        recover(out, where)
        out = check_target(typed, inputs, label)  # recovery may have brought a folder back
        if _ours_or_empty(staging, where):
            free, fd = _lock(staging)
            if not free:
                raise UsageError(f"{where}: another dipspec run is writing there now; wait for "
                                 "it or pass another folder")
            if resume and read_marker(staging) is not None:
                return OutputFolder(out, typed, staging, label, resumed=True, _fd=fd)
            if fd is not None:
                os.close(fd)
            remove_ours(staging)
            cleaned = True
        out.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(staging)
        _, fd = _lock(staging)
        _write_json(staging / MARKER, {"written_by": "dipspec", "state": "staging",
                                       "files": []})
    except PermissionError as err:
        raise UsageError(f"{where}: cannot write there ({err.strerror or err}); pass a folder "
                         "you can write to") from err
    except OSError as err:
        raise UsageError(f"{where}: cannot create the output folder there "
                         f"({err.strerror or err}); pass a folder you can write to") from err
    return OutputFolder(out, typed, staging, label, cleaned=cleaned, _fd=fd)
