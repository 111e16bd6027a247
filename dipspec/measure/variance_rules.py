"""Wang et al.'s stop rules on the running variance of the outputs: ES-WMV and ES-EMV.

Both watch how much the output image still moves: the variance of the recent outputs falls
while the network learns the image, reaches a minimum near the PSNR peak, and rises again as
the network starts fitting the noise. Both stop once the variance has not reached a new
minimum for ``patience`` iterations, and report the iteration of that minimum.

The definitions follow the authors' reference code (the notebooks ``ES_WMV.ipynb`` and
``ES_EMV.ipynb`` of https://github.com/sun-umn/Early_Stopping_for_DIP, commit 83d03a4):
every quirk noted in the classes' Notes is theirs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from .stop_base import StopRule, _accumulator_dtype, _checked_output, _positive_int

__all__ = ["ESEMV", "ESWMV", "replay_variance"]


class ESWMV(StopRule):
    """ES-WMV: stop when the windowed moving variance of the outputs stops falling.

    Parameters
    ----------
    window : int, default 100
        Number of recorded outputs in the window (the reference's ``buffer_size``).
    patience : int, default 1000
        Iterations without a new minimum of the variance before the rule fires.

    Attributes
    ----------
    variance : float
        The variance of the current window (NaN until the window is full).
    best_variance, best_iteration
        The smallest variance so far and the iteration whose window gave it.
    stop_iteration : int or None
        Once fired: ``best_iteration``, the detected stopping point.

    Notes
    -----
    As the reference code computes it: the outputs of the last ``window`` updates (every
    iteration there) are kept; once the window is full, at each update the variance is
    ``mean over the window of mean over pixels (x_w − x̄)²``, x̄ the window's mean image — the
    per-pixel population variance (divide by ``window``) averaged over all pixels and
    channels. A variance below the best so far (strictly) is a new minimum, credited to the
    iteration that closes the window; the rule fires when ``patience`` iterations have passed
    since that minimum. The reference counts updates without a new minimum; with an update
    every iteration, as there, the two counts are the same, and counting iterations keeps
    ``patience`` meaning the same when a fit logs only every k iterations.

    The window lives on the output's device as a ring buffer ``(window, *output.shape)``;
    the variance comes from running sums of x and x² in float64, updated in O(pixels) per
    update and recomputed exactly from the buffer each time the ring wraps (no drift). Each
    update reads one number back to the host.

    References
    ----------
    H. Wang, T. Li, Z. Zhuang, T. Chen, H. Liang, J. Sun, "Early Stopping for Deep Image
    Prior", arXiv:2112.06074 (TMLR 2023). Code: https://github.com/sun-umn/Early_Stopping_for_DIP.

    Examples
    --------
    Outputs that settle (shrinking jitter), then drift apart again: the minimum of the window
    variance is where the window is stillest.

    >>> g = torch.Generator().manual_seed(0)
    >>> scale = [abs(t - 30) + 1.0 for t in range(80)]  # stillest around t = 30
    >>> rule = ESWMV(window=5, patience=10)
    >>> fired = [rule.update(t, 1e-3 * s * torch.rand(1, 1, 4, 4, generator=g))
    ...          for t, s in enumerate(scale)]
    >>> rule.fired_at - rule.stop_iteration, 28 <= rule.stop_iteration <= 34
    (10, True)
    """

    name = "es-wmv"
    needs_output = True
    _state_keys = ("buffer", "total", "total_sq", "count", "variance", "best_variance",
                   "best_iteration", "detected_output")

    def __init__(self, window: int = 100, patience: int = 1000) -> None:
        self.window = _positive_int(window, "window", "Wang et al. use 100")
        self.patience = _positive_int(patience, "patience", "Wang et al. use 1000")
        super().__init__()

    def config(self) -> dict:
        return {"window": self.window, "patience": self.patience}

    def _reset(self) -> None:
        self.buffer: Tensor | None = None  # (window, *shape), a ring: slot = count % window
        self.total: Tensor | None = None  # sum of the window's outputs (float64)
        self.total_sq: Tensor | None = None  # sum of their squares
        self.count = 0  # outputs pushed so far
        self.variance = math.nan
        self.best_variance = math.inf
        self.best_iteration: int | None = None

    def _decide(self, iteration: int, output: Tensor | None,
                meters: Mapping[str, float]) -> int | None:
        x = _checked_output(self, output)
        self._push(x)
        if self.count < self.window:
            return None
        mean = self.total / self.window
        variance = (self.total_sq / self.window - mean * mean).clamp_(min=0.0).mean()
        self.variance = float(variance)  # the one host read of the update
        if not math.isfinite(self.variance):
            return None
        if self.variance < self.best_variance:
            self.best_variance, self.best_iteration = self.variance, iteration
            self.detected_output = x.clone()
            return None
        if iteration - self.best_iteration >= self.patience:
            return self.best_iteration
        return None

    def _push(self, x: Tensor) -> None:
        """Put ``x`` into the ring, replacing the oldest output, and update the sums."""
        if self.buffer is None:
            acc = _accumulator_dtype(x)
            self.buffer = x.new_empty((self.window, *x.shape))
            self.total = torch.zeros(x.shape, device=x.device, dtype=acc)
            self.total_sq = torch.zeros(x.shape, device=x.device, dtype=acc)
        elif x.shape != self.buffer.shape[1:]:
            raise ValueError(f"ESWMV got an output of shape {tuple(x.shape)} after "
                             f"{tuple(self.buffer.shape[1:])}; use one rule per image and "
                             "call reset() between runs")
        slot = self.count % self.window
        new = x.to(self.total.dtype)
        if self.count >= self.window:
            old = self.buffer[slot].to(self.total.dtype)
            self.total.add_(new - old)
            self.total_sq.add_(new * new - old * old)
        else:
            self.total.add_(new)
            self.total_sq.addcmul_(new, new)
        self.buffer[slot].copy_(x)
        self.count += 1
        if self.count > self.window and self.count % self.window == 0:
            self._recompute()  # once per turn of the ring: the sums start again exact

    def _recompute(self) -> None:
        self.total.zero_()
        self.total_sq.zero_()
        for stored in self.buffer:
            value = stored.to(self.total.dtype)
            self.total.add_(value)
            self.total_sq.addcmul_(value, value)


class ESEMV(StopRule):
    """ES-EMV: stop when the exponential moving variance of the outputs stops falling.

    Parameters
    ----------
    alpha : float, default 0.1
        Smoothing factor of the moving average and variance, in (0, 1).
    patience : int, default 1000
        Iterations without a new minimum of the variance before the rule fires.
    burn_in : int, default 100
        The variance is compared only at iterations after this one (the reference's
        ``iterator > 100``).

    Attributes
    ----------
    ema : Tensor or None
        The moving average of the outputs, clipped to [0, 1].
    emv : Tensor or None
        The moving variance (a 0-d float64 tensor on the output's device).
    best_emv, best_iteration
        The smallest variance so far, and its iteration.

    Notes
    -----
    The reference's update, fed every iteration: the first output starts the average
    (``ema = x``, ``emv = 0``); then ``δ = x − ema``, ``ema ← clip(ema + α δ, 0, 1)`` and
    ``emv ← (1 − α)(emv + α ‖δ‖²)``, with ‖δ‖² the sum of squares over all pixels and
    channels (not a mean: the rule only compares the variance with itself, so the scale does
    not matter). After ``burn_in``, a variance strictly below the best is a new minimum; the
    rule fires ``patience`` iterations after the last minimum and reports its iteration. As in
    :class:`ESWMV`, patience counts iterations (the reference counts updates, the same when
    every iteration is fed). Everything stays on the device but one host read per update
    after the burn-in.

    References
    ----------
    H. Wang et al., "Early Stopping for Deep Image Prior", arXiv:2112.06074;
    ``ES_EMV.ipynb`` in https://github.com/sun-umn/Early_Stopping_for_DIP.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> scale = [abs(t - 60) + 1.0 for t in range(140)]  # stillest around t = 60
    >>> rule = ESEMV(alpha=0.1, patience=20, burn_in=10)
    >>> fired = [rule.update(t, 0.5 + 1e-3 * s * torch.rand(1, 1, 4, 4, generator=g))
    ...          for t, s in enumerate(scale)]
    >>> rule.fired_at - rule.stop_iteration, 55 <= rule.stop_iteration <= 75
    (20, True)
    """

    name = "es-emv"
    needs_output = True
    _state_keys = ("ema", "emv", "best_emv", "best_iteration", "detected_output")

    def __init__(self, alpha: float = 0.1, patience: int = 1000, burn_in: int = 100) -> None:
        alpha = float(alpha)
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}; Wang et al. use 0.1")
        self.alpha = alpha
        self.patience = _positive_int(patience, "patience", "Wang et al. use 1000")
        if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
            raise ValueError(f"burn_in must be an int >= 0, got {burn_in!r}; Wang et al. use 100")
        self.burn_in = burn_in
        super().__init__()

    def config(self) -> dict:
        return {"alpha": self.alpha, "patience": self.patience, "burn_in": self.burn_in}

    def _reset(self) -> None:
        self.ema: Tensor | None = None
        self.emv: Tensor | None = None
        self.best_emv = math.inf
        self.best_iteration: int | None = None

    def _decide(self, iteration: int, output: Tensor | None,
                meters: Mapping[str, float]) -> int | None:
        x = _checked_output(self, output)
        if self.ema is None:
            self.ema = x.clone()
            self.emv = torch.zeros((), device=x.device, dtype=_accumulator_dtype(x))
            return None
        if x.shape != self.ema.shape:
            raise ValueError(f"ESEMV got an output of shape {tuple(x.shape)} after "
                             f"{tuple(self.ema.shape)}; use one rule per image and call "
                             "reset() between runs")
        delta = x - self.ema
        self.ema = (self.ema + self.alpha * delta).clamp_(0.0, 1.0)
        squared = delta.to(self.emv.dtype).square().sum()
        self.emv = (1.0 - self.alpha) * (self.emv + self.alpha * squared)
        if iteration <= self.burn_in:
            return None
        value = float(self.emv)
        if not math.isfinite(value):
            return None
        if value < self.best_emv:
            self.best_emv, self.best_iteration = value, iteration
            self.detected_output = x.clone()
            return None
        if iteration - self.best_iteration >= self.patience:
            return self.best_iteration
        return None


def replay_variance(iterations, variances, patience: int = 1000,
                    burn_in: int = 0) -> tuple[int | None, int | None]:
    """Where a variance rule stops on a recorded variance curve: ``(stop_iteration, fired_at)``.

    The decision of :class:`ESWMV` (``burn_in=0``) and :class:`ESEMV` replayed on the variances
    they computed (e.g. ``rule.variance`` / ``rule.emv`` kept at every update): the iteration of
    the last new minimum once ``patience`` iterations passed without one, and the iteration it
    fired at; ``(None, None)`` if it never fires. NaN variances are skipped, as the rules do.

    Examples
    --------
    >>> replay_variance(range(6), [3.0, 2.0, 1.0, 1.5, 1.2, 1.1], patience=3)
    (2, 5)
    """
    patience = _positive_int(patience, "patience", "Wang et al. use 1000")
    best, best_iteration = math.inf, None
    for iteration, value in zip(iterations, variances):
        iteration, value = int(iteration), float(value)
        if iteration <= burn_in or not math.isfinite(value):
            continue
        if value < best:
            best, best_iteration = value, iteration
        elif iteration - best_iteration >= patience:
            return best_iteration, iteration
    return None, None
