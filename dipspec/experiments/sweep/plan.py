"""Which fits of a sweep run together: compatible configurations batched with ``fit_many``.

Fits are compatible when they build one architecture (model, width, upsampling) on images of one
shape and share every setting of the loop (task, iterations, learning rate, preset, precision,
dtype, stop rule, logging, backtracking); λ, σ, seed, image and the task's noise may differ. The
decoder and the convnet batch; the other models run one at a time.

The groups are planned over the *whole* spec, in its order, and cut into batches of at most
``max_batch``; a batch then runs its fits that the journal does not hold yet. A batch is
journalled as a whole, so after an interruption the missing fits are whole batches and run with
the same partners as in an uninterrupted sweep — the same numbers, not just close ones (float32
sums in a grouped convolution depend on the batch). Fits added to a spec later run in batches of
their own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from .keys import is_groupable
from .spec import Fit

__all__ = ["Batch", "LOOP_KEYS", "group_key", "plan"]

#: Settings every member of a batch shares (beside the architecture and the image's shape).
LOOP_KEYS = ("task", "factor", "iterations", "lr", "preset", "precision", "dtype", "stop_rule",
             "log_every", "metrics_every", "backtracking")
_ARCHITECTURE_KEYS = ("model", "channels", "upsample")


@dataclass(frozen=True)
class Batch:
    """Fits that run as one ``fit_many`` call (or one ``fit``, for a model that cannot batch).

    ``batch_id`` names the members that ran together; the journal records it with each row.
    """

    fits: tuple[Fit, ...]

    @property
    def batch_id(self) -> str:
        ids = json.dumps(sorted(f.fit_id for f in self.fits))
        return hashlib.sha256(ids.encode()).hexdigest()[:16]

    def describe(self) -> str:
        first = self.fits[0].config
        return (f"{len(self.fits)} × {first['model']} on {first['task']} "
                f"({self.fits[0].shape[1]}×{self.fits[0].shape[2]}), {first['iterations']} "
                "iterations")


def group_key(fit: Fit) -> str | None:
    """What members of one batch share; ``None`` for a model that runs alone."""
    if not is_groupable(fit.config["model"]):
        return None
    shared = {k: fit.config[k] for k in (*_ARCHITECTURE_KEYS, *LOOP_KEYS)}
    return json.dumps({**shared, "shape": list(fit.shape)}, sort_keys=True)


def plan(fits: Sequence[Fit], max_batch: int, done: set[str] = frozenset()) -> list[Batch]:
    """The batches that still have to run, in the order of the spec's first fit of each.

    Parameters
    ----------
    fits : sequence of Fit
        The sweep's fits, in the spec's order.
    max_batch : int
        Most fits per batch.
    done : set of str
        ``fit_id`` of the fits already journalled; they are left out of their batch.
    """
    groups: dict[str, list[Fit]] = {}
    for n, fit in enumerate(fits):
        key = group_key(fit)
        groups.setdefault(f"single {n}" if key is None else key, []).append(fit)
    batches = []
    for members in groups.values():
        for start in range(0, len(members), max_batch):
            todo = tuple(f for f in members[start:start + max_batch] if f.fit_id not in done)
            if todo:
                batches.append(Batch(todo))
    return batches
