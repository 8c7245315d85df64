"""The provisioning agents: waagent and cloud-init, their configuration and their state."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from azimg.disk.guestfs import GuestFS, exists, read_text
from azimg.image.facts.files import (
    Guard,
    Located,
    files_under,
    is_file,
    kv_file,
    listdir,
    lstat,
)

WAAGENT_PATHS = ("/usr/sbin/waagent", "/usr/bin/waagent", "/usr/local/sbin/waagent")


CLOUD_INIT_PATHS = ("/usr/bin/cloud-init", "/usr/local/bin/cloud-init")


@dataclass(frozen=True)
class WaagentInfo:
    installed: bool
    where: str = ""
    version: str | None = None
    conf: Mapping[str, Located] = field(default_factory=dict)  # waagent.conf key -> value
    conf_present: bool = False

    def get(self, key: str, default: str | None = None) -> str | None:
        loc = self.conf.get(key)
        return loc.value if loc else default


@dataclass(frozen=True)
class CloudInitInfo:
    installed: bool
    where: str = ""
    datasource_list: tuple[str, ...] | None = None  # effective, after cfg.d merge
    datasource_where: str = ""
    config_files: tuple[str, ...] = ()
    yaml_errors: tuple[Located, ...] = ()
    disabled_marker: bool = False  # /etc/cloud/cloud-init.disabled
    ds_identify: Located | None = None  # /etc/cloud/ds-identify.cfg policy text
    network_disabled: Located | None = None  # network: {config: disabled}
    apply_network_config: bool | None = None
    merged: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentFacts:
    waagent: WaagentInfo = field(default_factory=lambda: WaagentInfo(False))
    cloud_init: CloudInitInfo = field(default_factory=lambda: CloudInitInfo(False))
    waagent_state: tuple[str, ...] = ()  # files under /var/lib/waagent
    cloud_state: tuple[str, ...] = ()  # instance state under /var/lib/cloud


def read_agents(fs: GuestFS, guard: Guard, packages: Mapping[str, str] | None) -> AgentFacts:
    """``packages`` (dpkg) names the agent's version where its files do not."""
    return AgentFacts(
        waagent=guard("waagent", lambda: _read_waagent(fs, packages), WaagentInfo(False)),
        cloud_init=guard("cloud-init", lambda: _read_cloud_init(fs), CloudInitInfo(False)),
        waagent_state=guard("waagent", lambda: files_under(fs, "/var/lib/waagent"), ()),
        cloud_state=guard("cloud-init", lambda: _read_cloud_state(fs), ()),
    )


def _read_waagent(fs: GuestFS, packages: Mapping[str, str] | None) -> WaagentInfo:
    where = next((p for p in WAAGENT_PATHS if exists(fs, p)), "")
    version = None
    for pkg in ("waagent", "walinuxagent", "WALinuxAgent", "python-azure-agent"):
        if packages and pkg in packages:
            version = packages[pkg]
            where = where or f"/var/lib/dpkg/status ({pkg})"
    if version is None and where:
        for d in _python_dirs(fs):
            text = read_text(fs, f"{d}/azurelinuxagent/common/version.py")
            if text:
                m = re.search(r"^AGENT_VERSION\s*=\s*['\"]([^'\"]+)", text, re.M)
                if m:
                    version = m.group(1)
                    break
    conf = kv_file(fs, "/etc/waagent.conf")
    return WaagentInfo(bool(where), where, version, conf, is_file(fs, "/etc/waagent.conf"))


def _python_dirs(fs: GuestFS) -> list[str]:
    out = ["/usr/lib/python3/dist-packages"]
    for base in ("/usr/lib", "/usr/lib64", "/usr/local/lib"):
        for name in listdir(fs, base):
            if name.startswith("python3"):
                out += [f"{base}/{name}/site-packages", f"{base}/{name}/dist-packages"]
    return out


def _read_cloud_init(fs: GuestFS) -> CloudInitInfo:
    where = next((p for p in CLOUD_INIT_PATHS if exists(fs, p)), "")
    files = []
    if is_file(fs, "/etc/cloud/cloud.cfg"):
        files.append("/etc/cloud/cloud.cfg")
    files += [
        f"/etc/cloud/cloud.cfg.d/{n}"
        for n in sorted(listdir(fs, "/etc/cloud/cloud.cfg.d"))
        if n.endswith(".cfg")
    ]
    merged: dict[str, Any] = {}
    errors = []
    ds_where = ""
    net_disabled = None
    for path in files:
        text = read_text(fs, path) or ""
        try:
            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as err:
            errors.append(Located(str(err).splitlines()[0], path))
            continue
        if doc is None:
            continue
        if not isinstance(doc, dict):
            errors.append(Located("top level is not a mapping", path))
            continue
        if "datasource_list" in doc:
            ds_where = path
        net = doc.get("network")
        if isinstance(net, dict) and str(net.get("config", "")).lower() == "disabled":
            net_disabled = Located("network: {config: disabled}", path)
        merged.update(doc)
    dsl = merged.get("datasource_list")
    ds_list: tuple[str, ...] | None = None
    if isinstance(dsl, list):
        ds_list = tuple(str(x).strip() for x in dsl)
    elif isinstance(dsl, str):
        ds_list = tuple(x.strip() for x in dsl.strip("[] ").split(",") if x.strip())
    elif "datasource_list" in merged:
        ds_list = ()  # present but neither a list nor a string: cloud-init cannot use it
    apply_net = None
    ds = merged.get("datasource")
    if isinstance(ds, dict) and isinstance(ds.get("Azure"), dict):
        val = ds["Azure"].get("apply_network_config")
        apply_net = bool(val) if val is not None else None
    ds_identify = None
    text = read_text(fs, "/etc/cloud/ds-identify.cfg")
    if text is not None:
        ds_identify = Located(" ".join(text.split())[:200], "/etc/cloud/ds-identify.cfg")
    return CloudInitInfo(
        installed=bool(where),
        where=where,
        datasource_list=ds_list,
        datasource_where=ds_where,
        config_files=tuple(files),
        yaml_errors=tuple(errors),
        disabled_marker=exists(fs, "/etc/cloud/cloud-init.disabled"),
        ds_identify=ds_identify,
        network_disabled=net_disabled,
        apply_network_config=apply_net,
        merged=merged,
    )


def _read_cloud_state(fs: GuestFS) -> tuple[str, ...]:
    """cloud-init's instance state from the build VM (``cloud-init clean`` removes it)."""
    markers = (
        "/var/lib/cloud/instance",
        "/var/lib/cloud/data/reported_ready",
        "/var/lib/cloud/data/poll_imds",
    )
    return tuple(p for p in markers if lstat(fs, p) is not None) + tuple(
        f"/var/lib/cloud/instances/{n}" for n in listdir(fs, "/var/lib/cloud/instances")
    )
