"""The interface every stop rule follows (:class:`StopRule`) and the checks the rules share.

A stop rule is a small object that a fit feeds once per logged iteration: the iteration, the
output image (only when the rule says it needs it) and the row of meters the fit has already
computed (``loss``, ``psnr``, ``fbc_1`` … ``fbc_5``, ``blurriness``, ``sharpness``, ``ratio``).
It answers stop or go. Its state is plain Python values and tensors (:meth:`StopRule.state_dict`)
so that a checkpoint can hold it and a resumed fit decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = ["StopRule"]


class StopRule:
    """Base class of the stop rules: one object per fit, fed every logged iteration in order.

    A subclass sets the class attributes below, keeps its parameters in :meth:`config`, its
    changing state in the attributes named by ``_state_keys`` (set in ``_reset``), and decides
    in ``_decide(iteration, output, meters)``, which returns the detected iteration when the
    rule fires and None otherwise. The base class checks the iteration order, remembers where
    the rule fired and stays fired until :meth:`reset`.

    Attributes
    ----------
    name : str
        The name :func:`~dipspec.measure.make_stop_rule` knows the rule by.
    needs_output : bool
        Whether :meth:`update` needs the output image; a fit copies it only for such rules.
    needs_meters : tuple of str
        History columns the rule reads (a fit refuses a rule whose columns it cannot measure).
    stop_iteration : int or None
        The iteration the rule detected, once it has fired (for the variance rules the minimum
        of the variance, earlier than the iteration where they fire); None before.
    fired_at : int or None
        The iteration at which :meth:`update` first returned True (where a fit ends).
    detected_output : Tensor or None
        For a rule that detects an earlier iteration than the one it fires at (the variance
        rules): the output of that iteration, which a fit returns as ``result.output``.

    Examples
    --------
    >>> from dipspec.measure import PaperRule
    >>> rule = PaperRule(window=100, eps=0.01)
    >>> fired = [rule.update(t, None, {"ratio": 4.0}) for t in range(300)]
    >>> rule.stop_iteration, rule.fired_at, fired.index(True)
    (201, 201, 201)
    """

    name = ""
    needs_output = False
    needs_meters: tuple[str, ...] = ()
    _state_keys: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.reset()

    def config(self) -> dict:
        """The constructor's keyword arguments: ``type(rule)(**rule.config())`` is a fresh copy."""
        return {}

    def fresh(self) -> StopRule:
        """A new rule with the same parameters and no state."""
        return type(self)(**self.config())

    def reset(self) -> None:
        """Forget everything seen, ready for a new run."""
        self.stop_iteration: int | None = None
        self.fired_at: int | None = None
        self.last_iteration: int | None = None
        self.detected_output: Tensor | None = None
        self._reset()

    def _reset(self) -> None:
        """Set the subclass's own state (the attributes in ``_state_keys``) to its start."""

    #: Whether :meth:`prepare` needs the observation's estimated noise level (a fit then
    #: computes :func:`dipspec.data.estimate_noise_sigma` once and hands it over).
    needs_noise_estimate = False

    def prepare(self, observation: Tensor, noise_sigma: float | None = None) -> None:
        """Look at the fit's observation ``(1, C, H, W)`` (and, for rules that ask, its
        estimated noise σ) before the first update; a fit calls it once per member. Most rules
        ignore it."""

    def update(self, iteration: int, output: Tensor | None = None,
               meters: Mapping[str, float] | None = None) -> bool:
        """Feed one logged iteration; True once the rule has fired (and at every later call).

        Parameters
        ----------
        iteration : int
            Larger than every iteration passed before (since the last :meth:`reset`).
        output : Tensor or None
            The output image of this iteration, ``(1, C, H, W)``; needed when ``needs_output``.
        meters : mapping of str to float, optional
            The history row of this iteration (a missing or NaN meter counts as not measured).

        Returns
        -------
        bool
        """
        iteration = int(iteration)
        if self.last_iteration is not None and iteration <= self.last_iteration:
            raise ValueError(f"iterations must increase, got {iteration} after "
                             f"{self.last_iteration}; call reset() to start a new run")
        self.last_iteration = iteration
        if self.fired_at is not None:
            return True
        detected = self._decide(iteration, output, {} if meters is None else meters)
        if detected is None:
            return False
        self.stop_iteration, self.fired_at = int(detected), iteration
        return True

    def _decide(self, iteration: int, output: Tensor | None,
                meters: Mapping[str, float]) -> int | None:
        raise NotImplementedError(f"{type(self).__name__} must implement _decide")

    def state_dict(self) -> dict:
        """The rule's state as plain values and tensors (copies), for a checkpoint."""
        return {key: _copied(getattr(self, key)) for key in self._keys()}

    def load_state_dict(self, state: Mapping) -> None:
        """Put back a state from :meth:`state_dict` of a rule of the same kind."""
        keys = set(self._keys())
        if set(state) != keys:
            raise ValueError(f"not a state_dict of {type(self).__name__}: missing "
                             f"{sorted(keys - set(state))}, unexpected "
                             f"{sorted(set(state) - keys)}; pass the state_dict() of a "
                             f"{type(self).__name__}")
        for key in self._keys():
            setattr(self, key, _copied(state[key]))

    def _keys(self) -> tuple[str, ...]:
        return ("stop_iteration", "fired_at", "last_iteration", *self._state_keys)

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"{type(self).__name__}({params})"


def _copied(value):
    """A copy of one state value: tensors cloned, lists and dicts copied, scalars as they are."""
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    return value


def _meter(meters: Mapping[str, float], name: str) -> float:
    """The meter ``name`` as a float; NaN when it is missing (not measured)."""
    value = meters.get(name, math.nan)
    return float(value) if value is not None else math.nan


def _positive_int(value: int, name: str, usual: str) -> int:
    """``value`` checked to be an int >= 1, or a ValueError naming the usual value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}; {usual}")
    return value


def _checked_output(rule: StopRule, output: Tensor | None) -> Tensor:
    """The output image a variance rule needs, or a ValueError saying how to provide it."""
    if not isinstance(output, Tensor):
        raise ValueError(f"{type(rule).__name__} needs the output image at every update, got "
                         f"{type(output).__name__}; pass update(iteration, output, meters) (a "
                         "fit does it), or outputs= to stop_iteration()")
    if not output.is_floating_point():
        raise ValueError(f"{type(rule).__name__} needs a floating output image, got "
                         f"{output.dtype}; convert it with output.float()")
    return output.detach()


def _accumulator_dtype(x: Tensor) -> torch.dtype:
    """float64 for running sums, except on devices without it (MPS), where float32."""
    return torch.float32 if x.device.type == "mps" else torch.float64


def _advance_past(iterations: list[int], index: int, bound: float) -> int:
    """Move ``index`` forward to the first position whose iteration is > ``bound``."""
    while index < len(iterations) and iterations[index] <= bound:
        index += 1
    return index
