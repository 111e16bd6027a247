"""Stop rules: the paper's rule on the blur/sharpness ratio (Eq. 8, SPEC §6) and the others.

- :class:`AutoStop` and :func:`first_stop_iteration`: the paper's rule, online and offline, on
  Python floats (deciding to stop is a host decision; the ratio itself is
  :func:`dipspec.measure.blur_sharpness_ratio`).
- :class:`PaperRule` and :class:`OracleRule` here, ``ESWMV`` and ``ESEMV`` in
  ``variance_rules``, ``RatioPlateau`` in ``ratio_rules``: the :class:`StopRule` interface
  (``stop_base``) that :func:`dipspec.fit` takes as ``stop_rule=``.
- :func:`make_stop_rule` builds one by name; :func:`stop_iteration` replays a finished history
  (and recorded outputs) through a fresh copy of a rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .noise_rules import Discrepancy
from .ratio_rules import RatioPlateau
from .stop_base import StopRule, _meter
from .variance_rules import ESEMV, ESWMV

__all__ = ["STOP_RULES", "AutoStop", "OracleRule", "PaperRule", "first_stop_iteration",
           "make_stop_rule", "stop_iteration"]


def _checked_window(window: int, eps: float) -> tuple[int, float]:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}; the paper uses 100")
    eps = float(eps)
    if not eps > 0.0:
        raise ValueError(f"eps must be > 0, got {eps!r}; the paper uses 0.01")
    return window, eps


def first_stop_iteration(
    ratios: Sequence[float] | Tensor,
    window: int = 100,
    eps: float = 0.01,
    iterations: Sequence[int] | Tensor | None = None,
) -> int | None:
    """First iteration at which the paper's stopping rule (Eq. 8, SPEC §6) fires.

    Parameters
    ----------
    ratios : 1-D sequence of float (list, NumPy array or tensor)
        Blur/sharpness ratios; without ``iterations``, ``ratios[t]`` belongs to iteration t
        (the first entry is iteration 0).
    window : int, default 100
        The window length n, in iterations.
    eps : float, default 0.01
        The threshold on the difference of the two window means.
    iterations : 1-D sequence of int, optional
        Strictly increasing iteration numbers of ``ratios`` when the ratio was evaluated only
        every k iterations; the windows stay defined in iterations.

    Returns
    -------
    int or None
        The first evaluated iteration t > 2n with
        ``|mean(r over t-2n ... t-n-1) - mean(r over t-n+1 ... t-1)| < eps`` (both ranges
        inclusive; each mean over the evaluated iterations in its range, which must be
        non-empty), or None if the rule never fires.

    Raises
    ------
    ValueError
        If ``ratios`` is not 1-D, ``iterations`` does not match it or is not strictly
        increasing, or ``window``/``eps`` are not positive.

    Notes
    -----
    The windows are the paper's: the older one has n iterations, the newer one n - 1 (it
    skips iteration t - n and ends before t, so r_t itself is not used). This is the
    convention that reproduces the authors' value 1015 on the golden ratio sequence; letting
    the newer window start at t - n instead gives 1016, and reading ``ratios[0]`` as iteration 1
    gives 1016. :class:`AutoStop` applies the same rule online and fires at the same iteration.
    A non-finite ratio (NaN, or inf from a flat image) counts as not evaluated.

    Examples
    --------
    A flat sequence fires at the first checked iteration, 2n + 1; a steady decay never does.

    >>> first_stop_iteration([4.0] * 300, window=100, eps=0.01)
    201
    >>> print(first_stop_iteration([10.0 - 0.01 * t for t in range(600)]))
    None
    """
    window, eps = _checked_window(window, eps)
    r, it = _evaluated_ratios(ratios, iterations)
    prefix = torch.cat([r.new_zeros(1), torch.cumsum(r, 0)])

    def window_mean(first: Tensor, last: Tensor) -> tuple[Tensor, Tensor]:
        lo = torch.searchsorted(it, first, right=False)
        hi = torch.searchsorted(it, last, right=True)
        count = hi - lo
        return (prefix[hi] - prefix[lo]) / count.clamp(min=1), count

    old, old_count = window_mean(it - 2 * window, it - window - 1)
    new, new_count = window_mean(it - window + 1, it - 1)
    fires = (it > 2 * window) & (old_count > 0) & (new_count > 0) & ((old - new).abs() < eps)
    hits = fires.nonzero()
    return int(it[hits[0, 0]]) if hits.numel() else None


def _evaluated_ratios(
    ratios: Sequence[float] | Tensor, iterations: Sequence[int] | Tensor | None
) -> tuple[Tensor, Tensor]:
    """Checked ratios (float64) and their iterations (int64) on the CPU, non-finite dropped."""
    if isinstance(ratios, torch.Tensor):
        r = ratios.detach().to(device="cpu", dtype=torch.float64).clone()
    else:
        r = torch.tensor(ratios, dtype=torch.float64)  # a copy: pandas arrays are read-only
    if r.ndim != 1:
        raise ValueError(
            f"ratios must be 1-D (one value per evaluation), got shape {tuple(r.shape)}"
        )
    if iterations is None:
        it = torch.arange(r.shape[0], dtype=torch.int64)
    else:
        it = torch.as_tensor(iterations).cpu().to(torch.int64)
        if it.shape != r.shape:
            raise ValueError(
                f"iterations must match ratios, got shapes {tuple(it.shape)} and {tuple(r.shape)}"
            )
        if it.numel() > 1 and not bool((it[1:] > it[:-1]).all()):
            raise ValueError("iterations must be strictly increasing")
    finite = torch.isfinite(r)  # a NaN/inf ratio counts as not evaluated (AutoStop does the same)
    r, it = r[finite], it[finite]
    return r, it


class AutoStop:
    """Online form of the paper's stopping rule; feed it one ratio per evaluated iteration.

    Parameters
    ----------
    window : int, default 100
        The window length n, in iterations.
    eps : float, default 0.01
        The threshold on the difference of the two window means.

    Attributes
    ----------
    stop_iteration : int or None
        The iteration at which the rule fired, None until then.

    Notes
    -----
    Same rule and windows as :func:`first_stop_iteration`, in iterations, so the ratio may be
    evaluated every k iterations. Each :meth:`update` costs O(1) amortised: the values live in a
    list with running prefix sums, and four indices move forward over it. ``update`` turns the
    ratio into a Python float, which syncs a GPU tensor with the host; call it only on the
    iterations where the ratio is evaluated. A non-finite ratio is skipped (not evaluated), as
    in :func:`first_stop_iteration`, instead of poisoning the sums. The rule is only safe with
    spectral control
    (Lipschitz λ or Gaussian σ): plain DIP keeps changing as it fits the noise.

    Examples
    --------
    >>> stop = AutoStop(window=100, eps=0.01)
    >>> fired = [stop.update(t, 4.0) for t in range(300)]
    >>> stop.stop_iteration, fired.index(True)
    (201, 201)
    """

    def __init__(self, window: int = 100, eps: float = 0.01):
        self.window, self.eps = _checked_window(window, eps)
        self.reset()

    def reset(self) -> None:
        """Forget every value, ready for a new run."""
        self.stop_iteration: int | None = None
        self._iterations: list[int] = []
        self._prefix: list[float] = [0.0]  # _prefix[i] = sum of the first i ratios
        self._old_lo = self._old_hi = self._new_lo = self._new_hi = 0

    def update(self, iteration: int, ratio: float | Tensor) -> bool:
        """Record the ratio of ``iteration`` and return True once the rule has fired.

        Parameters
        ----------
        iteration : int
            Larger than every iteration passed before (since the last :meth:`reset`).
        ratio : float or Tensor with one element
            The blur/sharpness ratio at ``iteration``.

        Returns
        -------
        bool
            True at the iteration where the rule fires and at every later call (until
            :meth:`reset`), False before.
        """
        iteration = int(iteration)
        if self._iterations and iteration <= self._iterations[-1]:
            raise ValueError(
                f"iterations must increase, got {iteration} after {self._iterations[-1]}; "
                "call reset() to start a new run"
            )
        if isinstance(ratio, Tensor) and ratio.numel() != 1:
            raise ValueError(
                f"ratio must be a float or a one-element tensor, got shape {tuple(ratio.shape)}; "
                "use one AutoStop per image"
            )
        value = float(ratio)
        if self.stop_iteration is not None or not math.isfinite(value):
            # A NaN/inf ratio (e.g. a flat output, whose sharpness is 0) is skipped rather
            # than poisoning the running sums.
            return self.stop_iteration is not None
        self._iterations.append(iteration)
        self._prefix.append(self._prefix[-1] + value)
        n, its = self.window, self._iterations
        # Window indices as half-open [lo, hi) into the list; every bound only moves forward.
        self._old_lo = _advance(its, self._old_lo, iteration - 2 * n)
        self._old_hi = _advance(its, self._old_hi, iteration - n)
        self._new_lo = _advance(its, self._new_lo, iteration - n + 1)
        self._new_hi = _advance(its, self._new_hi, iteration)
        old_count = self._old_hi - self._old_lo
        new_count = self._new_hi - self._new_lo
        if iteration <= 2 * n or old_count == 0 or new_count == 0:
            return False
        old = (self._prefix[self._old_hi] - self._prefix[self._old_lo]) / old_count
        new = (self._prefix[self._new_hi] - self._prefix[self._new_lo]) / new_count
        if abs(old - new) < self.eps:
            self.stop_iteration = iteration
            return True
        return False

    def __repr__(self) -> str:
        return (
            f"AutoStop(window={self.window}, eps={self.eps}, stop_iteration={self.stop_iteration})"
        )


def _advance(iterations: list[int], index: int, bound: int) -> int:
    """Move ``index`` forward to the first position whose iteration is >= ``bound``."""
    while index < len(iterations) and iterations[index] < bound:
        index += 1
    return index


class PaperRule(StopRule):
    """The paper's rule (Eq. 8, SPEC §6) as a :class:`StopRule`; it decides as :class:`AutoStop`.

    Parameters
    ----------
    window : int, default 100
        The window length n, in iterations.
    eps : float, default 0.01
        The threshold on the difference of the two window means of the ratio.

    Notes
    -----
    Reads ``meters["ratio"]``; a missing or non-finite ratio counts as not evaluated, so the
    rule may be fed every logged iteration while the ratio is measured every k. Fires at the
    iteration :func:`first_stop_iteration` returns on the same ratios (``stop_iteration`` and
    ``fired_at`` are that iteration).

    Examples
    --------
    >>> rule = PaperRule(window=100, eps=0.01)
    >>> ratios = [10.0 - 0.01 * t for t in range(150)] + [8.5] * 300
    >>> fired = [rule.update(t, None, {"ratio": r}) for t, r in enumerate(ratios)]
    >>> rule.stop_iteration == first_stop_iteration(ratios, window=100, eps=0.01)
    True
    """

    name = "paper"
    needs_meters = ("ratio",)
    _state_keys = ("_paper",)

    def __init__(self, window: int = 100, eps: float = 0.01) -> None:
        self.window, self.eps = _checked_window(window, eps)
        super().__init__()

    def config(self) -> dict:
        return {"window": self.window, "eps": self.eps}

    def _reset(self) -> None:
        self._auto = AutoStop(self.window, self.eps)

    @property
    def _paper(self) -> dict:
        """The state of the :class:`AutoStop` inside, as plain lists."""
        a = self._auto
        return {"iterations": a._iterations, "prefix": a._prefix,
                "bounds": [a._old_lo, a._old_hi, a._new_lo, a._new_hi]}

    @_paper.setter
    def _paper(self, state: dict) -> None:
        a = self._auto
        a._iterations, a._prefix = list(state["iterations"]), list(state["prefix"])
        a._old_lo, a._old_hi, a._new_lo, a._new_hi = state["bounds"]
        a.stop_iteration = self.stop_iteration

    def _decide(self, iteration: int, output: Tensor | None,
                meters: Mapping[str, float]) -> int | None:
        return iteration if self._auto.update(iteration, _meter(meters, "ratio")) else None


class OracleRule(StopRule):
    """The oracle: the iteration of the best PSNR against the clean image, for reference.

    Reads ``meters["psnr"]`` (NaN without a clean image). It never fires; ``stop_iteration``
    is the iteration of the highest PSNR seen so far (the first one on ties), None before any
    finite PSNR. A fit with this rule runs to its budget, and its ``stop_iteration`` is the peak.

    Examples
    --------
    >>> rule = OracleRule()
    >>> [rule.update(t, None, {"psnr": p}) for t, p in enumerate([20.0, 24.0, 23.5])]
    [False, False, False]
    >>> rule.stop_iteration
    1
    """

    name = "oracle"
    needs_meters = ("psnr",)
    _state_keys = ("best_psnr",)

    def _reset(self) -> None:
        self.best_psnr = -math.inf

    def _decide(self, iteration: int, output: Tensor | None,
                meters: Mapping[str, float]) -> int | None:
        value = _meter(meters, "psnr")
        if math.isfinite(value) and value > self.best_psnr:
            self.best_psnr, self.stop_iteration = value, iteration
        return None


#: The rules :func:`make_stop_rule` knows, by name.
STOP_RULES: dict[str, type[StopRule]] = {
    rule.name: rule for rule in (PaperRule, ESWMV, ESEMV, OracleRule, RatioPlateau,
                                 Discrepancy)}


def make_stop_rule(name_or_rule: str | StopRule, **kwargs) -> StopRule:
    """A stop rule from its name and parameters, or the rule itself when given one.

    Parameters
    ----------
    name_or_rule : str or StopRule
        One of ``"paper"``, ``"es-wmv"``, ``"es-emv"``, ``"oracle"``, ``"ratio-plateau"``
        (case and ``_``/``-`` do not matter), or a :class:`StopRule`, returned as it is.
    **kwargs
        The rule's parameters (only with a name), e.g. ``window=50``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the choices), or parameters with an instance.
    TypeError
        For anything but a str or a StopRule.

    Examples
    --------
    >>> make_stop_rule("es-wmv", patience=500)
    ESWMV(window=100, patience=500)
    """
    if isinstance(name_or_rule, StopRule):
        if kwargs:
            raise ValueError(f"make_stop_rule got a rule and parameters {sorted(kwargs)}; set "
                             f"them when building it, e.g. {type(name_or_rule).__name__}(...)")
        return name_or_rule
    if not isinstance(name_or_rule, str):
        raise TypeError(f"a stop rule is a name or a StopRule, got "
                        f"{type(name_or_rule).__name__}; e.g. stop_rule='paper'")
    key = name_or_rule.strip().lower().replace("_", "-")
    if key not in STOP_RULES:
        raise ValueError(f"unknown stop rule {name_or_rule!r}; choose one of "
                         f"{sorted(STOP_RULES)} or pass a StopRule")
    return STOP_RULES[key](**kwargs)


def stop_iteration(rule: str | StopRule, history: Any,
                   outputs: Mapping[int, Tensor] | None = None,
                   noise_sigma: float | None = None) -> int | None:
    """Where ``rule`` stops on a finished run: its history replayed through a fresh copy.

    Parameters
    ----------
    rule : str or StopRule
        A rule or its name (:func:`make_stop_rule`); an instance is copied, not changed.
    history : pandas.DataFrame
        One row per logged iteration with an ``iteration`` column, e.g. ``FitResult.history``.
    outputs : mapping of int to Tensor, optional
        Output images by iteration, for the rules that need them (``ESWMV``, ``ESEMV``), e.g.
        the outputs a callback recorded; rows without an output are skipped for those rules.
    noise_sigma : float, optional
        The observation's noise σ, for rules that need it (:class:`Discrepancy` without its
        own ``noise_sigma``): e.g. :func:`dipspec.data.estimate_noise_sigma` of it.

    Returns
    -------
    int or None
        The rule's ``stop_iteration`` once it fired (the oracle's: the best-PSNR iteration),
        or None; online use in :func:`dipspec.fit` gives the same on the same rows.

    Examples
    --------
    >>> import pandas as pd
    >>> history = pd.DataFrame({"iteration": range(300), "ratio": [4.0] * 300})
    >>> stop_iteration("paper", history)
    201
    """
    fresh = make_stop_rule(rule).fresh()
    if noise_sigma is not None:
        fresh.prepare(None, noise_sigma)
    if "iteration" not in getattr(history, "columns", ()):
        raise ValueError("history must be a DataFrame with an 'iteration' column, such as "
                         "FitResult.history")
    if fresh.needs_output and outputs is None:
        raise ValueError(f"{type(fresh).__name__} needs the output images: pass "
                         "outputs={iteration: image}, e.g. collected by a fit callback")
    for row in history.sort_values("iteration").to_dict("records"):
        iteration = int(row.pop("iteration"))
        output = outputs.get(iteration) if fresh.needs_output else None
        if fresh.needs_output and output is None:
            continue
        if fresh.update(iteration, output, row):
            break
    return fresh.stop_iteration
