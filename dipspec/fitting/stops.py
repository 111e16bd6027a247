"""The stop rule of a fit: which rule a fit's settings ask for, and one copy of it per member.

:func:`resolve_stop_rules` turns ``stop_rule`` / ``auto_stop`` into one rule per member (or
None); ``auto_stop`` asks for each task's :func:`recommended_rule`. :class:`MemberRules` holds
them, feeds them each logged row and pickles as
plain state (each rule's :meth:`~dipspec.measure.StopRule.state_dict`), so a checkpoint holds it
and :func:`~dipspec.fitting.resume` decides exactly as an uninterrupted fit.
"""

from __future__ import annotations

from torch import Tensor

from ..data import estimate_noise_sigma
from ..measure import PaperRule, StopRule, make_stop_rule

__all__ = ["RECOMMENDED", "MemberRules", "recommended_rule", "resolve_stop_rules", "rule_name"]


#: The rule ``auto_stop=True`` uses, by task name; a task not named gets the paper's rule.
#: Chosen from the stopping study (issue 15, ``results/stopping.md``; no rule's parameters were
#: tuned): denoising overfits white noise, and the loss reaching the noise variance
#: (``discrepancy``) lands nearest the peak; JPEG deblocking overfits the block artefacts, which
#: carry no white noise to measure, and the paper's ratio rule lands nearest there; inpainting
#: and super-resolution without noise keep improving to the end of the budget, where the paper's
#: rule stops too early and ES-WMV fires only if the outputs start to move apart again. Held-out
#: images (``stopping_study.HELD_OUT_TASKS``) confirm denoising and super-resolution; on
#: deblocking the paper's rule lands 0.38 dB below the peak at the median (target 0.3), and on
#: inpainting a held-out image that peaks and falls (fingerprint) is not stopped by ES-WMV.
RECOMMENDED = {"denoise": "discrepancy", "deblock": "paper", "inpaint": "es-wmv",
               "super_resolve": "es-wmv"}


def recommended_rule(task, window: int = 100, eps: float = 0.01) -> StopRule:
    """The rule ``auto_stop=True`` stops ``task`` (a task or its name) by: see
    :data:`RECOMMENDED`; the paper's rule takes ``window`` and ``eps``."""
    name = RECOMMENDED.get(getattr(task, "name", task), "paper")
    return PaperRule(window=window, eps=eps) if name == "paper" else make_stop_rule(name)


def resolve_stop_rules(stop_rule: str | StopRule | None, auto_stop: bool, window: int,
                       eps: float, tasks) -> list[StopRule] | None:
    """One fresh rule per task: ``stop_rule`` if given (``"paper"`` with ``window`` and
    ``eps``), else with ``auto_stop`` the task's recommended rule; None without either."""
    if isinstance(stop_rule, str) and make_stop_rule(stop_rule).name == "paper":
        stop_rule = PaperRule(window=window, eps=eps)  # by name: with stop_window / stop_eps
    if stop_rule is not None:
        rule = make_stop_rule(stop_rule)
        return [rule.fresh() for _ in tasks]
    if auto_stop:
        return [recommended_rule(task, window, eps) for task in tasks]
    return None


def rule_name(rule: StopRule) -> str:
    """The name a result reports: the rule's ``name``, or its class's for a user's own rule."""
    return rule.name or type(rule).__name__


class MemberRules:
    """One stop rule per member (fresh copies), fed each logged row of the live members."""

    def __init__(self, rules: list[StopRule], observations: Tensor) -> None:
        self.rules = [rule.fresh() for rule in rules]
        for m, member in enumerate(self.rules):
            observation = observations[m:m + 1]
            member.prepare(observation, estimate_noise_sigma(observation)
                           if member.needs_noise_estimate else None)

    def update(self, it: int, columns: list[str], table: list[list[float]], live: list[int],
               out: Tensor) -> set[int]:
        """The live members whose rule fires at ``it``; ``table`` holds each member's row."""
        stops = set()
        for m in live:
            rule = self.rules[m]
            output = out[m:m + 1] if rule.needs_output else None
            if rule.update(it, output, dict(zip(columns, table[m]))):
                stops.add(m)
        return stops

    def detected_output(self, m: int) -> Tensor | None:
        """The output member ``m``'s rule detected, once it has fired at a later iteration."""
        rule = self.rules[m]
        if rule.fired_at is None or rule.stop_iteration == rule.fired_at:
            return None
        return rule.detected_output

    def report(self, m: int) -> dict:
        """What member ``m``'s result says about its rule."""
        rule = self.rules[m]
        return dict(stop_rule=rule_name(rule), stop_iteration=rule.stop_iteration,
                    stopped_at=rule.fired_at)

    def __getstate__(self) -> dict:
        # plain state for the checkpoint: each member's rule kind, parameters and state
        return {"members": [(type(rule), rule.config(), rule.state_dict())
                            for rule in self.rules]}

    def __setstate__(self, state: dict) -> None:
        self.rules = []
        for kind, config, rule_state in state["members"]:
            rule = kind(**config)
            rule.load_state_dict(rule_state)
            self.rules.append(rule)
