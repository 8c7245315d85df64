"""Provisioning agents (prerequisites.md §6): waagent and cloud-init, who provisions, their state.

Image type matters (``CheckContext.generalized``): provisioning and "traces of the build VM"
rules apply to generalized images only; a specialized disk is attached as is and keeps them.
"""

from __future__ import annotations

import re

from azimg.image.findings import Finding
from azimg.image.inspect import GuestFacts, ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev, ev_loc
from azimg.image.rules.packages import version

CLOUD_INIT_UNITS = (
    "cloud-init-local.service",
    "cloud-init.service",
    "cloud-init-main.service",
    "cloud-init-network.service",
    "cloud-init.target",
    "cloud-config.service",
    "cloud-final.service",
)

WAAGENT_UNITS = ("walinuxagent.service", "waagent.service")

WAAGENT_TRACES = re.compile(
    r"(ovf-env\.xml|GoalState\.\d+\.xml|\.prv$|\.crt$|SharedConfig\.xml|Incarnation|"
    r"HostingEnvironmentConfig\.xml|Certificates\.|ExtensionsConfig\.)"
)


def cloud_init_enabled(g: GuestFacts) -> bool:
    return g.agents.cloud_init.installed and (
        g.services.units(*CLOUD_INIT_UNITS)
        or not any(u in g.services.units_masked for u in CLOUD_INIT_UNITS)
    )


def waagent_enabled(g: GuestFacts) -> bool:
    return g.agents.waagent.installed and g.services.units(*WAAGENT_UNITS)


def provisioner(g: GuestFacts) -> str:
    """Who provisions a new VM: "waagent", "cloud-init", "none" (per waagent's own logic)."""
    ci = cloud_init_enabled(g)
    if g.agents.waagent.installed:
        agent = (g.agents.waagent.get("Provisioning.Agent") or "auto").lower()
        if agent == "auto":
            use_ci = g.agents.waagent.get("Provisioning.UseCloudInit", "n") == "y"
            return "cloud-init" if (ci or use_ci) else "waagent"
        if agent in ("waagent", "cloud-init"):
            return agent
        return "none"  # disabled
    return "cloud-init" if ci else "none"


AGT_01 = Rule(
    "AGT-01",
    B,
    "a provisioning agent is installed and enabled (waagent, or cloud-init with the Azure "
    "datasource)",
    "install and enable waagent (walinuxagent) or cloud-init",
)

AGT_02 = Rule(
    "AGT-02",
    W,
    "waagent 2.2.53.1 or later, or AutoUpdate enabled",
    "update the agent package or set AutoUpdate.Enabled=y",
)

AGT_03 = Rule(
    "AGT-03",
    B,
    "waagent's Provisioning.Agent agrees with whether cloud-init is enabled",
    "set Provisioning.Agent=auto in /etc/waagent.conf",
)

AGT_04 = Rule(
    "AGT-04",
    W,
    "waagent.conf uses the provisioning keys of the installed agent version",
    "use Provisioning.Agent on agents >= 2.2.45",
)

AGT_05 = Rule(
    "AGT-05",
    B,
    "no /var/lib/waagent/provisioned (the agent would skip provisioning: no user, no key)",
    "waagent -force -deprovision+user, or delete /var/lib/waagent",
)

AGT_06 = Rule(
    "AGT-06",
    W,
    "no agent state from the build VM under /var/lib/waagent",
    "waagent -force -deprovision+user",
)

AGT_07 = Rule(
    "AGT-07",
    B,
    "cloud-init config parses and its datasource_list includes Azure",
    "write 'datasource_list: [ Azure ]' to /etc/cloud/cloud.cfg.d/91-azure_datasource.cfg "
    "and fix YAML errors",
)

AGT_08 = Rule(
    "AGT-08",
    B,
    "cloud-init is not disabled (cloud-init.disabled, cloud-init=disabled, ds-identify policy)",
    "rm /etc/cloud/cloud-init.disabled /etc/cloud/ds-identify.cfg; drop cloud-init=disabled",
)

AGT_11 = Rule(
    "AGT-11",
    W,
    "no cloud-init instance state from the build VM",
    "cloud-init clean --logs --seed",
)

AGT_13 = Rule(
    "AGT-13",
    A,
    "all cloud-init stages are enabled",
    "systemctl enable cloud-init-local cloud-init cloud-config cloud-final",
)

AGT_15 = Rule(
    "AGT-15",
    W,
    "66-azure-ephemeral.rules present when cloud-init manages the resource disk",
    "install the distribution's cloud-init package (it ships the rule)",
)


def check_agents(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    out: list[Finding] = []
    why = blocked(g, "waagent", "cloud-init", "units")
    if why:
        return [r.unreadable(why) for r in (AGT_01, AGT_03, AGT_05, AGT_07, AGT_08)]
    wa, ci = g.agents.waagent, g.agents.cloud_init
    prov = provisioner(g)
    ci_on = cloud_init_enabled(g)
    wa_on = waagent_enabled(g)
    azure_ds = ci.datasource_list is None or "Azure" in ci.datasource_list
    desc = (
        f"waagent {'installed' if wa.installed else 'absent'}"
        f"{' (enabled)' if wa_on else ''}; cloud-init {'installed' if ci.installed else 'absent'}"
        f"{' (enabled)' if ci_on else ''}; provisioning by {prov}"
    )
    if ctx.generalized:
        ok = (prov == "waagent" and wa_on) or (
            prov == "cloud-init" and ci_on and azure_ds and not ci.disabled_marker
        )
        if g.os.family == "flat":
            ok = True  # Flatcar: Ignition + waagent, checked by FLAT-*
        out.append(
            AGT_01.check(ok, ev(wa.where or ci.where or "/usr/sbin", desc), provisioner=prov)
        )
    else:
        out.append(AGT_01.not_applicable("specialized disk: no provisioning"))
    if wa.installed:
        if wa.version:
            auto = (
                wa.get("AutoUpdate.Enabled") or wa.get("AutoUpdate.UpdateToLatestVersion") or "y"
            ).lower()
            ok = version(wa.version) >= (2, 2, 53, 1) or auto != "n"
            out.append(AGT_02.check(ok, ev(wa.where, f"version {wa.version}, AutoUpdate {auto}")))
        agent = wa.get("Provisioning.Agent")
        conf_ev = (
            ev(wa.conf["Provisioning.Agent"].where, f"Provisioning.Agent={agent}")
            if agent
            else ev("/etc/waagent.conf", "Provisioning.Agent not set (auto)")
        )
        a = (agent or "auto").lower()
        if a == "waagent" and ci_on:
            out.append(
                AGT_03.failed(
                    conf_ev,
                    fix="set Provisioning.Agent=auto or disable "
                    "cloud-init (waagent aborts when cloud-init is enabled)",
                )
            )
        elif a == "cloud-init" and not ci_on:
            out.append(AGT_03.failed(conf_ev))
        elif a == "disabled" and ctx.generalized:
            out.append(
                AGT_03.failed(
                    conf_ev,
                    fix="Provisioning.Agent=disabled suits specialized disks only; set auto",
                )
            )
        elif a not in ("auto", "waagent", "cloud-init", "disabled"):
            out.append(AGT_03.failed(conf_ev))
        else:
            out.append(AGT_03.passed(conf_ev))
        legacy = [k for k in ("Provisioning.Enabled", "Provisioning.UseCloudInit") if k in wa.conf]
        if legacy and wa.version and version(wa.version) >= (2, 2, 45) and not agent:
            out.append(AGT_04.failed(*(ev_loc(wa.conf[k]) for k in legacy)))
    if ctx.generalized:
        marker = "/var/lib/waagent/provisioned"
        present = marker in g.agents.waagent_state
        out.append(AGT_05.check(not present, ev(marker, "present" if present else "absent")))
        traces = [p for p in g.agents.waagent_state if WAAGENT_TRACES.search(p)]
        out.append(AGT_06.check(not traces, *(ev(p) for p in traces[:5])))
        out.append(
            AGT_11.check(not g.agents.cloud_state, *(ev(p) for p in g.agents.cloud_state[:5]))
        )
    else:
        for r in (AGT_05, AGT_06, AGT_11):
            out.append(r.not_applicable("specialized disk keeps its agent state"))
    if ci.installed and prov != "waagent":
        if ci.yaml_errors:
            out.append(AGT_07.failed(*(ev(e.where, e.value) for e in ci.yaml_errors)))
        elif ci.datasource_list is None:
            out.append(
                AGT_07.passed(
                    ev(
                        "/etc/cloud/cloud.cfg",
                        "no datasource_list: default list includes Azure; [ Azure ] is recommended",
                    )
                )
            )
        else:
            out.append(
                AGT_07.check(
                    "Azure" in ci.datasource_list,
                    ev(ci.datasource_where, f"datasource_list: {list(ci.datasource_list)}"),
                )
            )
        off = []
        if ci.disabled_marker:
            off.append(ev("/etc/cloud/cloud-init.disabled", "present"))
        if g.boot.cmdline.has("cloud-init=disabled"):
            off.append(ev(g.boot.cmdline.where, "cloud-init=disabled"))
        if (
            ci.ds_identify is not None
            and "azure" not in ci.ds_identify.value.lower()
            and ("disabled" in ci.ds_identify.value.lower() or "datasource" in ci.ds_identify.value)
        ):
            off.append(ev_loc(ci.ds_identify))
        masked = [u for u in CLOUD_INIT_UNITS if u in g.services.units_masked]
        off += [ev(f"/etc/systemd/system/{u}", "masked") for u in masked]
        if ctx.generalized:
            out.append(AGT_08.check(not off, *off or (ev("/etc/cloud", "not disabled"),)))
        else:  # azimg build --specialized disables it on purpose: there is nothing to provision
            out.append(AGT_08.not_applicable("specialized disk: no provisioning"))
        if ctx.generalized and prov == "cloud-init":
            stages = {
                "local": ("cloud-init-local.service",),
                "network": ("cloud-init.service", "cloud-init-network.service"),
                "config": ("cloud-config.service",),
                "final": ("cloud-final.service",),
            }
            missing = [s for s, units in stages.items() if not g.services.units(*units)]
            if g.services.units("cloud-init.target") and missing:
                missing = []  # stages pulled in by cloud-init.target's own Wants=
            out.append(
                AGT_13.check(
                    not missing, ev("/etc/systemd/system", ", ".join(missing) or "all enabled")
                )
            )
            rule = "66-azure-ephemeral.rules"
            out.append(AGT_15.check(rule in g.services.udev_rules, ev("udev rules.d", rule)))
    return out


AGT_09 = Rule(
    "AGT-09",
    A,
    "Azure datasource apply_network_config: False where the distribution's network stack owns "
    "the NIC",
    "add apply_network_config: False under datasource: Azure: in 91-azure_datasource.cfg",
)

AGT_10 = Rule(
    "AGT-10",
    A,
    "cloud_init_modules lists disk_setup and mounts (resource disk before cloud-init 23.x)",
    "add disk_setup and mounts to cloud_init_modules in /etc/cloud/cloud.cfg",
)

AGT_12 = Rule(
    "AGT-12",
    A,
    "cloud-init KVP telemetry: reporting: {telemetry: {type: hyperv}}",
    "write /etc/cloud/cloud.cfg.d/10-azure-kvp.cfg",
)

SWP_04 = Rule(
    "SWP-04",
    W,
    "cloud-init swap mounts carry nofail and x-systemd.requires=cloud-init.service",
    "fix the mount options in the cloud-init swap config",
)


def check_cloud_init_config(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    """AGT-10, AGT-12, AGT-09 and SWP-04: what the merged cloud-init configuration asks for."""
    g = facts.guest
    ci = g.agents.cloud_init
    if not (ci.installed and ci.config_files):
        return []
    out = []
    # cloud-init YAML is untrusted: anything may sit where a list is expected.
    mods = [
        str(m[0] if isinstance(m, list) else m)
        for m in _as_list(ci.merged.get("cloud_init_modules"))
        if isinstance(m, str) or (isinstance(m, list) and m)
    ]
    if mods:
        lack = [m for m in ("disk_setup", "mounts") if m not in mods]
        out.append(
            AGT_10.check(
                not lack,
                ev("/etc/cloud/cloud.cfg", "missing: " + " ".join(lack) if lack else "present"),
            )
        )
    rep = ci.merged.get("reporting")
    ok = isinstance(rep, dict) and any(
        isinstance(v, dict) and v.get("type") == "hyperv" for v in rep.values()
    )
    out.append(AGT_12.check(ok, ev("/etc/cloud/cloud.cfg.d", "reporting telemetry hyperv")))
    if g.os.family in ("rhel", "suse", "ora"):
        out.append(
            AGT_09.check(
                ci.apply_network_config is False,
                ev(
                    ci.datasource_where or "/etc/cloud/cloud.cfg.d",
                    f"apply_network_config: {ci.apply_network_config}",
                ),
            )
        )
    swaps = [
        m
        for m in _as_list(ci.merged.get("mounts"))
        if isinstance(m, list) and len(m) > 3 and "swap" in str(m[2])
    ]
    for m in swaps:
        opts = str(m[3])
        ok = "nofail" in opts and "x-systemd.requires=cloud-init.service" in opts
        out.append(SWP_04.check(ok, ev("cloud-init mounts", " ".join(map(str, m)))))
    return out


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


AGT_14 = Rule("AGT-14", A, "Python 3 present for waagent", "install python3")


def check_agent_python(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    if not g.agents.waagent.installed:
        return []
    ok = "/usr/bin/python3" in g.system.present or "python3" in (g.packages.installed or {})
    return [AGT_14.check(ok, ev("/usr/bin/python3", "present" if ok else "absent"))]
