"""General Linux rules (prerequisites.md §6), one module per kind of fact they judge.

``rules/{kernel,boot,agents,storage,network,accounts,packages,services}.py`` each declare their
rules next to the checks that evaluate them; this module only fixes the order in which the
Linux checks run (the order findings are reported in).
"""

from __future__ import annotations

from azimg.image.findings import Finding
from azimg.image.inspect import ImageFacts
from azimg.image.rules import (
    Check,
    CheckContext,
    accounts,
    agents,
    boot,
    kernel,
    network,
    packages,
    services,
    storage,
)

CHECKS: tuple[Check, ...] = (
    kernel.check_kernel,  # KRN-*
    boot.check_cmdline,  # CMD-01..05, 08, 10
    agents.check_agents,  # AGT-01..08, 11, 13, 15
    storage.check_swap,  # SWP-01, 05, 02
    network.check_network,  # NET-01..06, 08, 09
    storage.check_fstab,  # FS-*
    accounts.check_accounts,  # SEC-01..06, 09, 11
    accounts.check_ssh,  # SSH-*
    services.check_time_and_udev,  # TIM-02, UDV-*
    agents.check_cloud_init_config,  # AGT-10, 12, 09, SWP-04
    agents.check_agent_python,  # AGT-14
    boot.check_grub_defaults,  # CMD-06, 07
    network.check_vf_unmanaged,  # NET-07
    packages.check_versions,  # SEC-07, 08
    accounts.check_credentials,  # SEC-10
    packages.check_python,  # SW-01
    kernel.check_time_sync_driver,  # TIM-01
    services.check_clock_sources,  # TIM-03, 04
    storage.check_nvme,  # GEN-08 (only with --nvme)
)


def evaluate(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    if facts.guest.os.kind != "linux":
        return []
    out: list[Finding] = []
    for check in CHECKS:
        out += check(facts, ctx)
    return out
