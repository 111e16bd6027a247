"""TEMPORARY skeleton during the house refactor: re-exports the old loop modules."""

from .._batched import fit_many
from .._fit import FBC_COLUMNS, METRIC_COLUMNS, FitResult, fit, padded_size

__all__ = ["FBC_COLUMNS", "METRIC_COLUMNS", "FitResult", "fit", "fit_many", "padded_size"]
