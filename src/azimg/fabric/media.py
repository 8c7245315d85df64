"""Provisioning media: ovf-env.xml and the UDF disc that carries it (provisioning.md §1).

Both real agents read ``ovf-env.xml`` from the root of a small read-only disc. The disc must be
UDF (or ISO9660 with Rock Ridge): plain ISO9660 renames the file ``ovf_env.xml`` and neither
agent finds it. We write ISO9660 + Rock Ridge + UDF 2.60 with pycdlib and label it
``rd_rdfe_stable.<YYMMDD>-<HHMM>`` like Azure, so blkid reports ``TYPE="udf"`` with that label
(ds-identify's fallback signal). No Joliet: its 16-character volume name cannot hold the label.

The XML is built by a pure function from a frozen dataclass; a parser of the same shape exists
so tests can round-trip and so a document can be inspected (``parse_ovf_env``).
"""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from azimg.errors import CorruptImage, InvalidArgument

OVF_NS = "http://schemas.dmtf.org/ovf/environment/1"
WA_NS = "http://schemas.microsoft.com/windowsazure"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
OVF_ENV_NAME = "ovf-env.xml"
LABEL_PREFIX = "rd_rdfe_stable."


@dataclass(frozen=True)
class SshPublicKey:
    path: str  # /home/<user>/.ssh/authorized_keys; waagent requires it, cloud-init ignores it
    key_data: str  # one OpenSSH public key line


@dataclass(frozen=True)
class LinuxProvisioning:
    """What the platform tells the guest at first boot (osProfile, as ovf-env carries it)."""

    hostname: str
    username: str
    password: str | None = None
    disable_password_authentication: bool = True
    public_keys: tuple[SshPublicKey, ...] = ()
    custom_data: bytes | None = None
    provision_guest_agent: bool = True


def _wa(tag: str) -> str:
    return f"{{{WA_NS}}}{tag}"


def build_ovf_env(cfg: LinuxProvisioning) -> bytes:
    """ovf-env.xml accepted by cloud-init 22.4 (OvfEnvXml) and waagent 2.7 (OvfEnv).

    Every element waagent requires is present (Version, HostName, UserName, PlatformSettings
    with ProvisionGuestAgent); each property appears once (cloud-init rejects duplicates); no
    empty ProvisioningSection (cloud-init would call that "not Azure").
    """
    if not cfg.hostname or not cfg.username:
        raise InvalidArgument("ovf-env needs a host name and a user name")
    ET.register_namespace("", OVF_NS)
    ET.register_namespace("wa", WA_NS)
    ET.register_namespace("i", XSI_NS)
    root = ET.Element(f"{{{OVF_NS}}}Environment")
    prov = ET.SubElement(root, _wa("ProvisioningSection"))
    ET.SubElement(prov, _wa("Version")).text = "1.0"
    linux = ET.SubElement(prov, _wa("LinuxProvisioningConfigurationSet"))
    ET.SubElement(linux, _wa("ConfigurationSetType")).text = "LinuxProvisioningConfiguration"
    ET.SubElement(linux, _wa("HostName")).text = cfg.hostname
    ET.SubElement(linux, _wa("UserName")).text = cfg.username
    if cfg.password is not None:
        ET.SubElement(linux, _wa("UserPassword")).text = cfg.password
    ET.SubElement(linux, _wa("DisableSshPasswordAuthentication")).text = _bool(
        cfg.disable_password_authentication
    )
    if cfg.public_keys:
        ssh = ET.SubElement(linux, _wa("SSH"))
        keys = ET.SubElement(ssh, _wa("PublicKeys"))
        for key in cfg.public_keys:
            el = ET.SubElement(keys, _wa("PublicKey"))
            # No certificate backs the key: the fingerprint is a placeholder, keys reach
            # cloud-init through IMDS compute.publicKeys (provisioning.md §2.7).
            ET.SubElement(el, _wa("Fingerprint")).text = "0" * 40
            ET.SubElement(el, _wa("Path")).text = key.path
            ET.SubElement(el, _wa("Value")).text = key.key_data
    if cfg.custom_data:
        ET.SubElement(linux, _wa("CustomData")).text = base64.b64encode(cfg.custom_data).decode()
    plat_section = ET.SubElement(root, _wa("PlatformSettingsSection"))
    ET.SubElement(plat_section, _wa("Version")).text = "1.0"
    plat = ET.SubElement(plat_section, _wa("PlatformSettings"))
    ET.SubElement(plat, _wa("KmsServerHostname")).text = "kms.core.windows.net"
    ET.SubElement(plat, _wa("ProvisionGuestAgent")).text = _bool(cfg.provision_guest_agent)
    ET.SubElement(plat, _wa("GuestAgentPackageName"), {f"{{{XSI_NS}}}nil": "true"})
    ET.SubElement(plat, _wa("PreprovisionedVm")).text = "false"
    ET.SubElement(plat, _wa("PreprovisionedVMType"), {f"{{{XSI_NS}}}nil": "true"})
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def parse_ovf_env(raw: bytes) -> LinuxProvisioning:
    """The inverse of ``build_ovf_env`` (the fields azimg writes); bad XML is CorruptImage."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as err:
        raise CorruptImage(f"ovf-env.xml is not XML: {err}", field="ovf-env.xml") from None
    if root.tag != f"{{{OVF_NS}}}Environment":
        raise CorruptImage("ovf-env.xml root is not an OVF Environment", field="Environment")
    linux = root.find(f"{_wa('ProvisioningSection')}/{_wa('LinuxProvisioningConfigurationSet')}")
    plat = root.find(f"{_wa('PlatformSettingsSection')}/{_wa('PlatformSettings')}")
    if linux is None or plat is None:
        raise CorruptImage("ovf-env.xml lacks a provisioning or platform section", field="Section")

    def text(parent: ET.Element, tag: str) -> str | None:
        el = parent.find(_wa(tag))
        return el.text if el is not None and el.text else None

    hostname, username = text(linux, "HostName"), text(linux, "UserName")
    if not hostname or not username:
        raise CorruptImage("ovf-env.xml lacks HostName or UserName", field="HostName")
    keys = tuple(
        SshPublicKey(path=text(k, "Path") or "", key_data=text(k, "Value") or "")
        for k in linux.iterfind(f"{_wa('SSH')}/{_wa('PublicKeys')}/{_wa('PublicKey')}")
    )
    custom = text(linux, "CustomData")
    return LinuxProvisioning(
        hostname=hostname,
        username=username,
        password=text(linux, "UserPassword"),
        disable_password_authentication=(text(linux, "DisableSshPasswordAuthentication") or "")
        .strip()
        .lower()
        == "true",
        public_keys=keys,
        custom_data=base64.b64decode("".join(custom.split())) if custom else None,
        provision_guest_agent=(text(plat, "ProvisionGuestAgent") or "").strip().lower() == "true",
    )


def disc_label(at: datetime) -> str:
    """Azure's provisioning disc label shape, e.g. ``rd_rdfe_stable.161212-1209``."""
    return f"{LABEL_PREFIX}{at:%y%m%d-%H%M}"


def write_provisioning_disc(ovf_env: bytes, out: BinaryIO, *, label: str) -> None:
    """Write a UDF 2.60 + ISO9660/Rock Ridge disc holding ``/ovf-env.xml`` to ``out``."""
    import pycdlib

    if not label.startswith(LABEL_PREFIX) or len(label) > 32:
        raise InvalidArgument(f"disc label {label!r} must start with {LABEL_PREFIX} (≤ 32 chars)")
    iso = pycdlib.PyCdlib()
    iso.new(rock_ridge="1.09", udf="2.60", vol_ident=label)
    iso.add_fp(
        io.BytesIO(ovf_env),
        len(ovf_env),
        "/OVF_ENV.XML;1",
        rr_name=OVF_ENV_NAME,
        udf_path=f"/{OVF_ENV_NAME}",
    )
    iso.write_fp(out)
    iso.close()


def read_ovf_env_from_disc(fh: BinaryIO) -> bytes:
    """The ``/ovf-env.xml`` a guest would read through UDF; CorruptImage when absent."""
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    iso = pycdlib.PyCdlib()
    buf = io.BytesIO()
    try:
        iso.open_fp(fh)
    except PyCdlibException as err:
        raise CorruptImage(f"provisioning disc unreadable: {err}", field="udf") from None
    try:
        iso.get_file_from_iso_fp(buf, udf_path=f"/{OVF_ENV_NAME}")
    except PyCdlibException as err:
        raise CorruptImage(f"provisioning disc has no {OVF_ENV_NAME}: {err}", field="udf") from None
    finally:
        iso.close()
    return buf.getvalue()


def _bool(value: bool) -> str:
    return "true" if value else "false"
