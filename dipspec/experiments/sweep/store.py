"""What a sweep leaves on disk, and reading it back.

``OUT/journal.jsonl``
    One line per finished fit (:class:`~dipspec.experiments.chakrabarty.FitJournal`): its full
    configuration (the key) and its row. A batch's lines are appended in one synced write.
``OUT/histories/<fit_id>.parquet`` (or ``.csv`` without pyarrow)
    Each fit's history, one row per logged iteration; written before its journal line.
``OUT/table.csv``
    The tidy table: one row per fit of the spec, in the spec's order — configuration, results
    (:data:`~dipspec.experiments.sweep.runner.RESULT_COLUMNS`) and the history's path.
``OUT/sweep.json``
    Provenance: the spec's text and digest, engine, commit, versions, counts and wall time.

Every file but the journal is written to a temporary name and moved into place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..chakrabarty.tables import FitJournal
from .plan import Batch
from .runner import RESULT_COLUMNS
from .spec import Fit

__all__ = ["OUTPUT_FILES", "SweepStore", "architecture_rows", "history_format", "read_history",
           "read_table", "table_columns", "table_row"]

#: pandas 2 reads floats exactly only when asked; pandas 3 always does (and deprecates asking).
_EXACT = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}

#: The entries a sweep writes in its output folder.
OUTPUT_FILES = ("journal.jsonl", "histories", "table.csv", "sweep.json")


def history_format() -> str:
    """``"parquet"`` when pyarrow is installed, else ``"csv"``."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "csv"
    return "parquet"


def _atomic(path: Path, write) -> None:
    """Call ``write(temporary_path)``, then move the file into place."""
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)


class SweepStore:
    """The output folder of one sweep: journal, histories, table and provenance."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.journal = FitJournal(self.out / "journal.jsonl")
        self.format = history_format()

    def done(self, fits: Sequence[Fit]) -> set[str]:
        """``fit_id`` of the fits the journal holds, with every partner of their batch.

        A batch whose lines were torn by a crash counts as not run: it runs again, whole.
        """
        counts: dict[str, int] = {}
        for row in self.journal.rows():
            counts[row.get("batch_id")] = counts.get(row.get("batch_id"), 0) + 1
        done = set()
        for fit in fits:
            row = self.journal.get(fit.key)
            if row is not None and counts.get(row.get("batch_id"), 0) >= row.get("batch", 1):
                done.add(fit.fit_id)
        return done

    def record(self, batch: Batch, results: Sequence[Mapping]) -> None:
        """Write the histories of a finished batch, then journal its fits in one write."""
        folder = self.out / "histories"
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        for fit, result in zip(batch.fits, results, strict=True):
            name = f"{fit.fit_id}.{self.format}"
            history = result["history"]
            if self.format == "parquet":
                _atomic(folder / name, lambda p, h=history: h.to_parquet(p, index=False))
            else:
                _atomic(folder / name, lambda p, h=history: h.to_csv(p, index=False))
            entries.append((fit.key, {**result["row"], "fit_id": fit.fit_id,
                                      "batch_id": batch.batch_id,
                                      "history": f"histories/{name}"}))
        self.journal.add_many(entries)

    def table(self, fits: Sequence[Fit]) -> pd.DataFrame:
        """The journalled fits among ``fits``, one row each, in the spec's order."""
        rows = []
        for fit in fits:
            row = self.journal.get(fit.key)
            if row is not None:
                rows.append(table_row(fit, row))
        return pd.DataFrame(rows, columns=table_columns(fits[0]) if fits else None)

    def write_table(self, table: pd.DataFrame) -> Path:
        path = self.out / "table.csv"
        _atomic(path, lambda p: table.to_csv(p, index=False))
        return path

    def previous_runs(self) -> list[dict]:
        """The runs recorded in ``sweep.json`` by earlier runs into this folder."""
        try:
            runs = json.loads((self.out / "sweep.json").read_text()).get("runs", [])
        except (OSError, ValueError, AttributeError):
            return []
        return runs if isinstance(runs, list) else []

    def write_provenance(self, info: Mapping) -> Path:
        path = self.out / "sweep.json"
        text = json.dumps(dict(info), indent=1, default=str) + "\n"
        _atomic(path, lambda p: p.write_text(text))
        return path


def _cell(value):
    """A configuration value as a table cell: lists joined (``128x192``, ``0.1,0.5``)."""
    if isinstance(value, list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return value


def table_columns(fit: Fit) -> list[str]:
    return ["fit_id", "entry", *fit.config, "channels_in", "height", "width", "image_digest",
            *RESULT_COLUMNS, "batch_id", "history"]


def table_row(fit: Fit, row: Mapping) -> dict:
    """One fit's row of the table: configuration, image shape, results, history path."""
    config = {k: _cell(v) for k, v in fit.config.items()}
    if isinstance(fit.config["image_size"], list):
        config["image_size"] = "x".join(map(str, fit.config["image_size"]))
    channels, height, width = fit.shape
    return {"fit_id": fit.fit_id, "entry": fit.entry, **config, "channels_in": channels,
            "height": height, "width": width, "image_digest": fit.image_digest,
            **{k: row.get(k) for k in RESULT_COLUMNS}, "batch_id": row.get("batch_id"),
            "history": row.get("history")}


def architecture_rows(table: pd.DataFrame) -> pd.DataFrame:
    """A sweep's table of the shipped ``architectures`` spec as
    :func:`~dipspec.experiments.chakrabarty.architecture_table` returns its rows, for
    :func:`~dipspec.experiments.chakrabarty.summarise_table` and ``write_table``."""
    return pd.DataFrame({
        "image": table["image"], "architecture": table["model"], "seed": table["seed"],
        "iterations": table["iterations"], "lr": table["lr"], "psnr": table["peak_psnr"],
        "best_iteration": table["peak_iteration"], "noisy_psnr": table["observation_psnr"],
        "wall_time_s": table["wall_time_s"]})


def read_table(out: str | Path) -> pd.DataFrame:
    """A sweep's ``table.csv`` (floats read back exactly)."""
    return pd.read_csv(Path(out) / "table.csv", **_EXACT)


def read_history(out: str | Path, row: Mapping | str) -> pd.DataFrame:
    """The history of one fit: a row of :func:`read_table`, or its ``fit_id``."""
    out = Path(out)
    if isinstance(row, str):
        table = read_table(out)
        row = table.loc[table["fit_id"] == row].iloc[0]
    path = out / row["history"]
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, **_EXACT)
