"""A VM's instance view (reference/arm-api.md §8.5): pure, from the stored VM and a clock."""

from __future__ import annotations

from dataclasses import dataclass

from azimg.platform.resources.virtual_machines.model import VirtualMachine


@dataclass(frozen=True)
class Status:
    code: str
    level: str
    display_status: str
    message: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class AgentView:
    version: str
    statuses: tuple[Status, ...]
    extension_handlers: bool  # an empty list is shown once an agent reported


@dataclass(frozen=True)
class InstanceView:
    hyper_v_generation: str
    statuses: tuple[Status, ...]
    disk_name: str
    disk_statuses: tuple[Status, ...]
    computer_name: str | None
    os_name: str | None
    os_version: str | None
    vm_agent: AgentView | None


_FAILED = {
    "TimedOut": "ProvisioningState/failed/OSProvisioningTimedOut",
    "ClientError": "ProvisioningState/failed/OSProvisioningClientError",
}


def statuses(vm: VirtualMachine) -> list[Status]:
    """The instance view's ``statuses``: provisioning, power, then OS state."""
    out: list[Status] = []
    state = vm.provisioning_state
    if state == "Creating" and vm.os_provisioning == "InProgress":
        out.append(Status("ProvisioningState/creating/OSProvisioningInprogress", "Info",
                          "OS Provisioning In progress"))  # fmt: skip
    elif state == "Creating" and vm.os_provisioning == "Complete":
        out.append(Status("ProvisioningState/creating/OSProvisioningComplete", "Info",
                          "OS Provisioning Complete"))  # fmt: skip
    elif state == "Failed":
        code = _FAILED.get(vm.os_provisioning or "", "ProvisioningState/failed/InternalError")
        out.append(Status(code, "Error", "Provisioning failed", vm.os_provisioning_message))
    else:
        out.append(
            Status(f"ProvisioningState/{state.lower()}", "Info", f"Provisioning {state.lower()}")
        )
    out.append(Status(f"PowerState/{vm.power_state}", "Info", f"VM {vm.power_state}"))
    if vm.generalized:
        out.append(Status("OSState/generalized", "Info", "VM generalized"))
    return out


def instance_view(vm: VirtualMachine, *, now: str) -> InstanceView:
    agent = vm.agent
    computer = vm.os_profile.computer_name if vm.os_profile else None
    view_agent: AgentView | None = None
    if agent is not None:
        computer = agent.computer_name or computer
        ready = agent.status == "Ready"
        view_agent = AgentView(
            version=agent.version,
            statuses=(
                Status(
                    "ProvisioningState/succeeded",
                    "Info",
                    "Ready" if ready else "Not Ready",
                    agent.message,
                    agent.timestamp,
                ),
            ),
            extension_handlers=True,
        )
    elif vm.power_state == "running":
        view_agent = AgentView(
            version="Unknown",
            statuses=(
                Status(
                    "ProvisioningState/Unavailable",
                    "Warning",
                    "Not Ready",
                    "VM status blob is found but not yet populated.",
                    now,
                ),
            ),
            extension_handlers=False,
        )
    return InstanceView(
        hyper_v_generation=f"V{vm.generation}",
        statuses=tuple(statuses(vm)),
        disk_name=vm.os_disk.name,
        disk_statuses=(
            Status(
                "ProvisioningState/succeeded",
                "Info",
                "Provisioning succeeded",
                time=vm.time_created,
            ),
        ),
        computer_name=computer,
        os_name=agent.os_name if agent else None,
        os_version=agent.os_version if agent else None,
        vm_agent=view_agent,
    )
