"""OS provisioning outcome of one VM, driven by health reports and a deadline (pure).

Platform semantics (provisioning.md §2.5, §7.1): the first ``Ready`` of the current goal-state
incarnation completes OS provisioning; ``NotReady/ProvisioningFailed`` before that is a client
error whose description reaches the user; no Ready before the deadline is a timeout. A
``NotReady/Provisioning`` after cloud-init's Ready (waagent starting) is normal and changes
nothing, and nothing moves once an outcome is reached. Reports for another container or
incarnation are ignored: they belong to a different VM or an older goal state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Protocol

from azimg.fabric.wireserver import AgentStatus, GoalStateIds, HealthReport


class Outcome(enum.StrEnum):
    IN_PROGRESS = "OSProvisioningInProgress"
    COMPLETE = "OSProvisioningComplete"
    TIMED_OUT = "OSProvisioningTimedOut"
    CLIENT_ERROR = "OSProvisioningClientError"


@dataclass(frozen=True)
class Provisioning:
    outcome: Outcome = Outcome.IN_PROGRESS
    description: str | None = None
    reports: int = 0  # health reports accepted for this VM


def on_health(state: Provisioning, report: HealthReport, ids: GoalStateIds) -> Provisioning:
    """Fold one health report into the state."""
    if report.container_id != ids.container_id or report.incarnation != ids.incarnation:
        return state
    state = replace(state, reports=state.reports + 1)
    if state.outcome is not Outcome.IN_PROGRESS:
        return state
    if report.state == "Ready":
        return replace(state, outcome=Outcome.COMPLETE)
    if report.state == "NotReady" and report.substatus == "ProvisioningFailed":
        return replace(
            state, outcome=Outcome.CLIENT_ERROR, description=report.description or "failed"
        )
    return state


def on_deadline(state: Provisioning, timeout_s: float) -> Provisioning:
    """The provisioning timeout passed: only a VM still in progress times out."""
    if state.outcome is not Outcome.IN_PROGRESS:
        return state
    return replace(
        state,
        outcome=Outcome.TIMED_OUT,
        description=(
            f"OS Provisioning for VM did not finish in the allotted time ({timeout_s:g} s). "
            "The VM may still finish provisioning successfully."
        ),
    )


class FabricEvents(Protocol):
    """What the fabric tells its owner (the platform, or a test) about one VM.

    Called from fabric threads; implementations must be quick and thread-safe.
    """

    def provisioning(self, vm: str, state: Provisioning) -> None: ...

    def agent_status(self, vm: str, status: AgentStatus) -> None: ...

    def stopped(self, vm: str, exit_code: int) -> None: ...
