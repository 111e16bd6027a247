"""The result tables of ``dipspec table architectures``: write, update and read them, with their
provenance and markdown summary.

A table is three files: ``<stem>.csv`` (one row per fit), ``<stem>.md`` (the summary of
:func:`~dipspec.experiments.chakrabarty.summarise_table`) and ``<stem>.json`` (provenance).
Committed tables live in ``results/`` beside the package (:func:`results_path`).
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch

from .architecture_table import summarise_table

__all__ = [
    "FitJournal",
    "check_updatable",
    "machine",
    "read_table",
    "results_path",
    "table_provenance",
    "update_table",
    "write_table",
]

#: The checkout: this file is ``<checkout>/dipspec/experiments/chakrabarty/tables.py``.
_CHECKOUT = Path(__file__).resolve().parents[3]


def results_path(stem: str = "architectures", suffix: str = ".csv") -> Path:
    """``<checkout>/results/<stem><suffix>``: the committed tables beside the package."""
    return _CHECKOUT / "results" / f"{stem}{suffix}"


def read_table(path: str | Path) -> pd.DataFrame:
    """Rows written by :func:`write_table` (``<stem>.csv``): a path, or the stem of a committed
    table in ``results/`` (``"architectures"``)."""
    path = Path(path)
    if not path.suffix:
        path = results_path(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist; run `dipspec table "
                                f"architectures --out {path.parent}` first")
    return pd.read_csv(path)


def table_provenance(path: str | Path) -> dict:
    """The provenance JSON beside a table's CSV (``<stem>.json``; a bare stem as in
    :func:`read_table`)."""
    path = Path(path)
    if not path.suffix:
        path = results_path(str(path))
    return json.loads(path.with_suffix(".json").read_text())


def _markdown(table: pd.DataFrame, header: str) -> str:
    columns = [table.index.name or "", *table.columns]
    lines = [header, "", "| " + " | ".join(columns) + " |",
             "|" + "|".join(["---"] + [":---:"] * len(table.columns)) + "|"]
    for index, row in table.iterrows():
        label = f"**{index}**" if index == "Average" else str(index)
        lines.append("| " + " | ".join([label, *map(str, row.tolist())]) + " |")
    return "\n".join(lines) + "\n"


def write_table(rows: pd.DataFrame, folder: str | Path, provenance: Mapping,
                stem: str = "architectures") -> dict[str, Path]:
    """Write ``<stem>.csv`` (one row per fit), ``<stem>.md`` (the summary) and ``<stem>.json``.

    Each file is written to a temporary name first and moved into place.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = summarise_table(rows)
    its = provenance.get("iterations", {})
    header = (f"Denoising PSNR (dB), best over the trajectory (oracle), mean ± std over "
              f"{rows['seed'].nunique()} seeds; σ = 25/255; paper images downsampled "
              f"×{provenance.get('factor', 4)}; iterations per model: "
              + ", ".join(f"{k} {v}" for k, v in its.items())
              + "; Adam learning rates: "
              + ", ".join(f"{k} {v:g}" for k, v in provenance.get("learning_rates", {}).items())
              + f"; DIP = encoder–decoder of width {provenance.get('dip_channels')}, 5 scales, "
              f"zero padding. " + _run_description(provenance)
              + (f" {provenance['note']}" if provenance.get("note") else ""))
    paths = {"csv": folder / f"{stem}.csv", "md": folder / f"{stem}.md",
             "json": folder / f"{stem}.json"}
    contents = {"csv": rows.to_csv(index=False), "md": _markdown(table, header),
                "json": json.dumps(dict(provenance), indent=1, default=str) + "\n"}
    for key, path in paths.items():
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(contents[key])
        tmp.replace(path)
    return paths


#: Provenance fields that describe one run; a table updated column by column keeps them per
#: architecture under ``"columns"``.
_RUN_FIELDS = ("commit", "device", "torch", "wall_time_s", "psnr")


#: Settings every column of one table must share.
_SHARED_FIELDS = ("factor", "sigma", "seeds", "images")


def check_updatable(folder: str | Path, provenance: Mapping,
                    stem: str = "architectures") -> tuple[pd.DataFrame, dict]:
    """The table in ``folder`` (rows, provenance), if fits with ``provenance`` may update it.

    Raises
    ------
    FileNotFoundError
        If ``folder`` holds no ``<stem>.csv`` and ``<stem>.json``.
    ValueError
        If the table was run on other images, seeds, σ or downsampling factor.
    """
    folder = Path(folder)
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    if not (csv_path.is_file() and json_path.is_file()):
        raise FileNotFoundError(f"no table to update in {folder} (needs {stem}.csv and "
                                f"{stem}.json); run without --update first")
    old = json.loads(json_path.read_text())
    for key in _SHARED_FIELDS:
        if json.loads(json.dumps(provenance.get(key), default=str)) != old.get(key):
            raise ValueError(f"the table in {folder} was run with {key} = {old.get(key)!r}, "
                             f"these fits with {provenance.get(key)!r}; update it with the "
                             f"same {key} or write a new table elsewhere")
    return pd.read_csv(csv_path), old


def update_table(rows: pd.DataFrame, folder: str | Path, provenance: Mapping,
                 stem: str = "architectures") -> dict[str, Path]:
    """Replace the columns of ``rows``' architectures in the table written to ``folder``.

    The other architectures' rows stay as they are. Provenance is kept per column
    (``"columns"``: commit, device, torch, wall time and PSNR reading of the run that produced
    it), so a table assembled from several runs says where each column comes from. The old
    table's ``"note"`` is dropped (it described the replaced columns); ``provenance`` may bring
    a new one. Raises as :func:`check_updatable`.
    """
    old_rows, old = check_updatable(folder, provenance, stem)
    replaced = list(dict.fromkeys(rows["architecture"]))
    columns = old.get("columns") or {arch: {k: old.get(k) for k in _RUN_FIELDS}
                                     for arch in dict.fromkeys(old_rows["architecture"])}
    info = dict(old)
    info["iterations"] = {**old.get("iterations", {}),
                          **{a: provenance["iterations"][a] for a in replaced}}
    info["learning_rates"] = {**old.get("learning_rates", {}),
                              **provenance.get("learning_rates", {})}
    info["columns"] = {**columns, **{a: {k: provenance.get(k) for k in _RUN_FIELDS}
                                     for a in replaced}}
    for key in ("commit", "wall_time_s") + (("dip_channels",) if "DIP" in replaced else ()):
        info[key] = provenance.get(key)
    info.pop("note", None)  # it spoke of the columns as they were
    if provenance.get("note"):
        info["note"] = provenance["note"]
    merged = pd.concat([old_rows[~old_rows["architecture"].isin(replaced)], rows],
                       ignore_index=True)
    return write_table(merged, folder, info, stem)


def _run_description(provenance: Mapping) -> str:
    columns = provenance.get("columns")
    if not columns:
        return (f"Device {provenance.get('device')}, wall time {provenance.get('wall_time_s')} "
                f"s, commit {provenance.get('commit')}.")
    runs: dict[tuple, list[str]] = {}  # one run's fields -> the columns it produced
    for arch, run in columns.items():
        runs.setdefault(tuple(run.get(k) for k in _RUN_FIELDS), []).append(arch)
    parts = []
    for values, archs in runs.items():
        run = dict(zip(_RUN_FIELDS, values))
        parts.append(f"{', '.join(archs)}: device {run['device']}, wall time "
                     f"{run['wall_time_s']} s, commit {run['commit']}"
                     + (f", PSNR {run['psnr']}" if run["psnr"] else "") + ".")
    return " ".join(parts)


class FitJournal:
    """The finished fits of a study, one JSON line each (``{"fit": settings, "row": row}``),
    appended and synced to disk as each fit ends, so no finished fit is lost to Ctrl-C, SIGTERM
    or a crash. Its readers (the sweeps, the ladder, the recorded studies) skip a fit the
    journal holds with exactly the same settings; a fit whose settings changed runs again.

    A line cut short by a crash is dropped when the journal is opened.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "table.journal.jsonl"
    >>> FitJournal(path).add({"seed": 0}, {"psnr": 25.0})
    >>> journal = FitJournal(path)
    >>> journal.get({"seed": 0}), journal.get({"seed": 1}), len(journal)
    ({'psnr': 25.0}, None, 1)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._rows: dict[str, dict] = {}
        if not self.path.is_file():
            return
        text = self.path.read_bytes()
        if text and not text.endswith(b"\n"):  # a crash mid-line: drop the torn tail
            with open(self.path, "r+b") as handle:
                handle.truncate(text.rfind(b"\n") + 1)
            text = text[: text.rfind(b"\n") + 1]
        for line in text.decode().splitlines():
            try:
                entry = json.loads(line)
                self._rows[self._key(entry["fit"])] = entry["row"]
            except (ValueError, KeyError, TypeError):
                continue

    @staticmethod
    def _key(fit: Mapping) -> str:
        return json.dumps(fit, sort_keys=True, default=str)

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, fit: Mapping) -> dict | None:
        """The row of a finished fit with exactly these settings, or ``None``."""
        row = self._rows.get(self._key(fit))
        return None if row is None else dict(row)

    def add(self, fit: Mapping, row: Mapping) -> None:
        """Append one finished fit and sync it to disk before returning."""
        self.add_many([(fit, row)])

    def add_many(self, entries: Sequence[tuple[Mapping, Mapping]]) -> None:
        """Append several finished fits (``(fit, row)`` pairs) in one write, synced to disk.

        One ``write`` call: a process killed meanwhile leaves all of them or, rarely, a torn
        tail that the next reader drops — never a line cut short in the middle of the file.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps({"fit": dict(fit), "row": dict(row)}, default=str) + "\n"
                       for fit, row in entries)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            data = text.encode()
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        for fit, row in entries:
            self._rows[self._key(fit)] = dict(row)

    def rows(self) -> list[dict]:
        """Every finished fit's row, in the order they were journalled (last of a key)."""
        return [dict(row) for row in self._rows.values()]


def machine() -> str:
    """A one-line description of the CPU or GPU the runs use."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
