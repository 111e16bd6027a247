"""The stop rule of a fit: which rule a fit's settings ask for, and one copy of it per member.

:func:`resolve_stop_rule` turns ``stop_rule`` / ``auto_stop`` into a rule (or None);
:class:`MemberRules` holds one fresh copy per member, feeds them each logged row and pickles as
plain state (each rule's :meth:`~dipspec.measure.StopRule.state_dict`), so a checkpoint holds it
and :func:`~dipspec.fitting.resume` decides exactly as an uninterrupted fit.
"""

from __future__ import annotations

from torch import Tensor

from ..measure import PaperRule, StopRule, make_stop_rule

__all__ = ["MemberRules", "resolve_stop_rule", "rule_name"]


def resolve_stop_rule(stop_rule: str | StopRule | None, auto_stop: bool, window: int,
                      eps: float) -> StopRule | None:
    """The rule a fit stops by: ``stop_rule`` if given, else the paper's with ``auto_stop``."""
    if stop_rule is not None:
        return make_stop_rule(stop_rule).fresh()
    return PaperRule(window=window, eps=eps) if auto_stop else None


def rule_name(rule: StopRule) -> str:
    """The name a result reports: the rule's ``name``, or its class's for a user's own rule."""
    return rule.name or type(rule).__name__


class MemberRules:
    """One copy of a stop rule per member, fed each logged row of the live members."""

    def __init__(self, rule: StopRule, k: int, observations: Tensor) -> None:
        self.kind, self.config = type(rule), rule.config()
        self.rules = [rule.fresh() for _ in range(k)]
        for m, member in enumerate(self.rules):
            member.prepare(observations[m:m + 1])

    @property
    def needs_output(self) -> bool:
        return self.rules[0].needs_output

    def update(self, it: int, columns: list[str], table: list[list[float]], live: list[int],
               out: Tensor) -> set[int]:
        """The live members whose rule fires at ``it``; ``table`` holds each member's row."""
        needs_output = self.needs_output
        stops = set()
        for m in live:
            output = out[m:m + 1] if needs_output else None
            if self.rules[m].update(it, output, dict(zip(columns, table[m]))):
                stops.add(m)
        return stops

    def report(self, m: int) -> dict:
        """What member ``m``'s result says about its rule."""
        rule = self.rules[m]
        return dict(stop_rule=rule_name(rule), stop_iteration=rule.stop_iteration,
                    stopped_at=rule.fired_at)

    def __getstate__(self) -> dict:
        # plain state for the checkpoint: the rule's kind and parameters, each copy's state
        return {"kind": self.kind, "config": self.config,
                "states": [rule.state_dict() for rule in self.rules]}

    def __setstate__(self, state: dict) -> None:
        self.kind, self.config = state["kind"], state["config"]
        self.rules = []
        for rule_state in state["states"]:
            rule = self.kind(**self.config)
            rule.load_state_dict(rule_state)
            self.rules.append(rule)
