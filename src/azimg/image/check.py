"""`azimg check`: read an image offline, run the catalogue's rules, render the one report.

Flow: container rules over the file's bytes (``rules/container.py``) → ``open_guest`` (view,
partition table, filesystems; qcow2/VMDK are read through ``qemu-img map`` offsets, never
converted, see ``disk/view.py``; the report notes the method) → ``DiskLayout`` (table, MBR
boot code, ESP's ``EFI/BOOT``) → find the root (the readable filesystem holding
``/etc/fstab`` or os-release) and mount what its fstab names at /boot, /boot/efi, /usr and
/var by UUID/LABEL/PARTUUID → ``gather`` →
rules per scope → ``Report``. This module is the only renderer (text table grouped by
severity + summary line, and JSON), as STYLE.md rule 11 asks.

Exit codes: 0 no failed blocker; 1 a blocker failed; 2 the image could not be read — the
container could not be opened, no root filesystem could be read (BSD UFS/FFS, LUKS, LVM), or a
blocker rule could not be evaluated (e.g. a corrupt initramfs): the report is still printed,
with every rule that could not read what it needs marked ``unreadable``.
"""

from __future__ import annotations

import os
import posixpath
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from azimg.disk.guest import open_guest
from azimg.disk.guestfs import GuestFS, exists, read_text
from azimg.disk.partitions import GPT_FREEBSD_BOOT, GPT_FREEBSD_UFS, GPT_OPENBSD_DATA
from azimg.errors import AzimgError, CorruptImage
from azimg.image import inspect as insp
from azimg.image.facts.layout import DiskLayout, PartitionInfo
from azimg.image.findings import Finding, Severity, Status
from azimg.image.rules import (
    Check,
    CheckContext,
    debian,
    flatcar,
    freebsd,
    generation,
    linux,
    openbsd,
    oracle,
    rhel,
    suse,
    ubuntu,
)
from azimg.image.rules.container import check_container

T = TypeVar("T")
SCOPES: tuple[tuple[str, Check], ...] = (
    ("generation", generation.evaluate),
    ("linux", linux.evaluate),
    ("debian", debian.evaluate),
    ("ubuntu", ubuntu.evaluate),
    ("rhel", rhel.evaluate),
    ("oracle", oracle.evaluate),
    ("suse", suse.evaluate),
    ("flatcar", flatcar.evaluate),
    ("freebsd", freebsd.evaluate),
    ("openbsd", openbsd.evaluate),
)
MOUNTED = ("/boot", "/boot/efi", "/efi", "/usr", "/var")
SEVERITY_ORDER = (Severity.blocker, Severity.warning, Severity.advice)


@dataclass(frozen=True)
class Report:
    image: str
    format: str
    context: CheckContext
    findings: tuple[Finding, ...]
    os: str = ""
    kernel: str | None = None
    generations: generation.Generations | None = None
    root: str | None = None  # "ext4 on partition 1"
    unreadable_reason: str | None = None  # why the guest root could not be read (exit 2)
    seconds: float = 0.0
    bytes_read: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def count(self, severity: Severity, status: Status = Status.failed) -> int:
        return sum(1 for f in self.findings if f.severity is severity and f.status is status)

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.is_blocking]

    @property
    def unreadable(self) -> list[Finding]:
        return [f for f in self.findings if f.status is Status.unreadable]

    @property
    def exit_code(self) -> int:
        if self.blockers:
            return 1
        return 2 if self.why_unreadable else 0

    @property
    def why_unreadable(self) -> str | None:
        """Why the verdict is incomplete: the root could not be read, or a blocker rule could
        not be evaluated (exit 2 — "no blockers" would claim what was not checked)."""
        if self.unreadable_reason:
            return self.unreadable_reason
        blind = [f for f in self.unreadable if f.severity is Severity.blocker]
        if not blind:
            return None
        first = blind[0].evidence[0].detail if blind[0].evidence else ""
        ids = ", ".join(f.rule for f in blind)
        return f"{len(blind)} blocker check(s) could not be read ({ids}): {first}"

    def summary(self) -> str:
        gens = self.generations.label if self.generations else "unknown"
        passed = sum(1 for f in self.findings if f.status is Status.passed)
        return (
            f"{os.path.basename(self.image)}: {self.os or 'unknown OS'}, boots {gens} — "
            f"{self.count(Severity.blocker)} blockers, {self.count(Severity.warning)} warnings, "
            f"{self.count(Severity.advice)} advice, {len(self.unreadable)} unreadable, "
            f"{passed} passed ({self.seconds:.2f} s, {self.bytes_read / 1e6:.1f} MB read)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "format": self.format,
            "generalized": self.context.generalized,
            "requested_generation": self.context.generation,
            "os": self.os,
            "kernel": self.kernel,
            "root": self.root,
            "generations": self.generations.to_json() if self.generations else None,
            "summary": {
                "blockers": self.count(Severity.blocker),
                "warnings": self.count(Severity.warning),
                "advice": self.count(Severity.advice),
                "unreadable": len(self.unreadable),
                "passed": sum(1 for f in self.findings if f.status is Status.passed),
                "exit_code": self.exit_code,
            },
            "unreadable_reason": self.why_unreadable,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            "bytes_read": self.bytes_read,
            "findings": [f.to_json() for f in self.findings],
        }


# ----------------------------------------------------------------------------------------------
# Running the rules (pure; tests call this with facts built from root trees)


def evaluate(facts: insp.ImageFacts, ctx: CheckContext) -> list[Finding]:
    out: list[Finding] = []
    for _name, fn in SCOPES:
        out += fn(facts, ctx)
    return out


def check_root(fs: GuestFS, ctx: CheckContext, *, disk: DiskLayout | None = None) -> list[Finding]:
    """Rules over a guest root alone (a host tree in tests, or an unpacked image)."""
    guest = insp.gather(fs)
    layout = disk or DiskLayout(size=0, scheme="gpt")
    return evaluate(insp.ImageFacts(layout, guest), ctx)


# ----------------------------------------------------------------------------------------------
# Reading the image


def _norm_type(t: str) -> str:
    return f"0x{int(t, 16):02X}" if t.lower().startswith("0x") else t.upper()


def _esp_files(fs: GuestFS) -> tuple[str, ...]:
    """Upper-cased ``EFI/BOOT/*`` names (FAT is case-insensitive; firmware is too)."""

    def child(path: str, name: str) -> str | None:
        for n in fs.listdir(path):
            if n.upper() == name:
                return posixpath.join(path, n)
        return None

    efi = child("/", "EFI")
    boot = child(efi, "BOOT") if efi else None
    if boot is None:
        vendor = [n.upper() for n in fs.listdir(efi)] if efi else []
        return tuple(f"EFI/{v}/" for v in vendor)
    return tuple(f"EFI/BOOT/{n.upper()}" for n in fs.listdir(boot))


def _layout(img: Any) -> tuple[DiskLayout, frozenset[str]]:
    table = img.table
    lba0 = img.view.reader.pread(0, 512)
    boot_code = lba0[:440]
    parts, ids = [], set()
    esp_files: list[str] = []
    esp_error = None
    for gp in img.partitions:
        p = gp.partition
        if p is None:
            continue
        info = PartitionInfo(
            index=p.number,
            scheme=table.scheme,
            start=p.start,
            size=p.size,
            type=_norm_type(p.type),
            bootable=p.bootable,
            filesystem=gp.fs_type,
            fs_uuid=gp.uuid,
            fs_label=gp.label,
            part_uuid=p.uuid,
            error=gp.why,
        )
        parts.append(info)
        if gp.uuid:
            ids.add(f"UUID={gp.uuid.lower()}")
        if gp.label:
            ids.add(f"LABEL={gp.label}")
        if p.uuid:
            ids.add(f"PARTUUID={p.uuid.lower()}")
        if p.name:
            ids.add(f"PARTLABEL={p.name}")
        if info.is_esp:
            if gp.fs is None:
                esp_error = f"ESP partition {p.number}: {gp.why}"
            else:
                try:
                    esp_files += _esp_files(gp.fs)
                except (AzimgError, OSError) as err:
                    esp_error = f"ESP partition {p.number}: {err}"
    if table.scheme == "mbr" and table.mbr is not None:
        sig = table.mbr.disk_signature
        for p in parts:
            ids.add(f"PARTUUID={sig:08x}-{p.index:02x}")
    if table.scheme == "none":
        for gp in img.partitions:
            if gp.uuid:
                ids.add(f"UUID={gp.uuid.lower()}")
            if gp.label:
                ids.add(f"LABEL={gp.label}")
    layout = DiskLayout(
        size=img.size,
        scheme=table.scheme,
        partitions=tuple(parts),
        mbr_boot_code=any(boot_code) and lba0[510:512] == b"\x55\xaa",
        mbr_boot_code_grub=b"GRUB" in boot_code,
        esp_files=tuple(esp_files),
        esp_error=esp_error if not esp_files else None,
        table_error=None if table.scheme != "none" else "no MBR or GPT partition table",
        table_problems=tuple(table.problems),
    )
    return layout, frozenset(ids)


def _root_score(fs: GuestFS) -> int:
    score = 0
    for path, weight in (
        ("/etc/fstab", 2),
        ("/etc/os-release", 2),
        ("/usr/lib/os-release", 1),
        ("/sbin/init", 1),
        ("/etc/passwd", 1),
        ("/bin/freebsd-version", 2),
    ):
        try:
            if exists(fs, path):
                score += weight
        except (AzimgError, OSError):
            continue
    return score


def _flatcar_parts(img: Any) -> dict[str, Any]:
    """Flatcar's GPT layout by partition type/name: ROOT (/), USR-A (/usr), OEM, ESP (/boot).

    A pristine Flatcar ROOT is nearly empty (Ignition fills it on first boot) and os-release
    lives on USR-A, so the root cannot be found by its contents."""
    out: dict[str, Any] = {}
    for gp in img.partitions:
        p = gp.partition
        if p is None or gp.fs is None:
            continue
        if p.kind == "flatcar-usr" and "usr" not in out:
            out["usr"] = gp
        elif p.kind == "flatcar-root" or p.name == "ROOT":
            out["root"] = gp
        elif p.name == "OEM":
            out["oem"] = gp
        elif p.kind == "esp":
            out["esp"] = gp
    return out if "usr" in out and "root" in out else {}


def _find_root(img: Any) -> tuple[Any | None, str | None]:
    flatcar = _flatcar_parts(img)
    if flatcar:
        return flatcar["root"], None
    best, best_score = None, 0
    for gp in img.filesystems():
        if gp.fs_type == "vfat":
            continue
        score = _root_score(gp.fs)
        if score > best_score:
            best, best_score = gp, score
    if best is not None:
        return best, None
    whys = [
        f"partition {gp.number}: {gp.fs_type or 'unknown'} ({gp.why})"
        for gp in img.partitions
        if gp.fs is None and gp.fs_type not in ("swap", None)
    ]
    return None, "no readable root filesystem; " + ("; ".join(whys) or "no filesystem found")


def _bsd_kind(layout: DiskLayout, img: Any) -> str | None:
    parts = layout.partitions
    fs_types = {gp.fs_type for gp in img.partitions}
    openbsd = any(p.has_type(GPT_OPENBSD_DATA, "0xA6") for p in parts)
    freebsd = any(p.has_type(GPT_FREEBSD_UFS, GPT_FREEBSD_BOOT, "0xA5") for p in parts)
    if freebsd or ("ufs" in fs_types and not openbsd):
        return "freebsd"
    if openbsd:
        return "openbsd"
    return None


def _mounts(root_fs: GuestFS, img: Any, root_number: int, layout: DiskLayout) -> dict:
    """Mount what the root's fstab names at /boot, /boot/efi, /usr, /var (by id)."""
    by_id: dict[str, Any] = {}
    for gp in img.partitions:
        if gp.fs is None:
            continue
        if gp.uuid:
            by_id[f"UUID={gp.uuid.lower()}"] = gp
        if gp.label:
            by_id[f"LABEL={gp.label}"] = gp
        p = gp.partition
        if p is not None and p.uuid:
            by_id[f"PARTUUID={p.uuid.lower()}"] = gp
        if p is not None and p.name:
            by_id[f"PARTLABEL={p.name}"] = gp
    mounts: dict[str, GuestFS] = {}
    try:
        text = read_text(root_fs, "/etc/fstab") or ""
    except (AzimgError, OSError):
        text = ""
    for line in text.splitlines():
        f = line.split()
        if len(f) < 2 or f[0].startswith("#") or f[1] not in MOUNTED:
            continue
        key, _, val = f[0].partition("=")
        key, val = key.upper(), val.strip("\"'")
        if key in ("UUID", "PARTUUID"):
            val = val.lower()
        spec = f"{key}={val}"
        gp = by_id.get(spec)
        if gp is not None and gp.number != root_number:
            mounts[f[1]] = gp.fs
    flatcar = _flatcar_parts(img)
    if flatcar:
        mounts["/usr"] = flatcar["usr"].fs
        if "oem" in flatcar:
            mounts["/oem"] = mounts["/usr/share/oem"] = flatcar["oem"].fs
        if "esp" in flatcar:
            mounts["/boot"] = flatcar["esp"].fs
        return mounts
    if "/boot/efi" not in mounts and "/efi" not in mounts:
        for gp in img.partitions:
            if gp.fs is not None and gp.partition is not None and gp.partition.kind == "esp":
                mounts["/boot/efi"] = gp.fs
                break
    return mounts


# What a reader bug on hostile bytes looks like; the user gets one line, not a traceback.
READER_FAILURES = (ValueError, IndexError, KeyError, OverflowError, struct.error, MemoryError)


def _open(fn: Callable[[Any], T], arg: Any) -> T:
    try:
        return fn(arg)
    except READER_FAILURES as err:
        raise CorruptImage(f"cannot read the image: {type(err).__name__}: {err}") from err


def check_image(path: str | os.PathLike[str], ctx: CheckContext) -> Report:
    """Run every applicable rule on the image at ``path``."""
    start = time.perf_counter()
    spath = os.fspath(path)
    if not os.path.exists(spath):
        raise AzimgError(f"{spath}: no such file")
    if os.path.isdir(spath):
        raise AzimgError(f"{spath} is a directory, not a disk image")
    container = _container_findings(spath)
    notes: list[str] = []
    try:
        img = _open(open_guest, spath)
    except AzimgError as err:
        if any(f.is_blocking for f in container):
            return Report(
                spath,
                "unknown",
                ctx,
                tuple(container),
                unreadable_reason=str(err),
                seconds=time.perf_counter() - start,
                notes=(f"guest not read: {err}",),
            )
        raise
    with img:
        layout, ids = _open(_layout, img)
        root_gp, why = _open(_find_root, img)
        root_label = None
        if root_gp is None:
            kind = _bsd_kind(layout, img) or "unknown"
            guest = insp.unreadable_root(spath, kind, why or "no root")
            root_number = None
        else:
            root_number = root_gp.number
            root_label = root_gp.fs.label
            mounts = _mounts(root_gp.fs, img, root_gp.number, layout)
            fs = insp.MountedFS(root_gp.fs, mounts)
            try:
                guest = insp.gather(fs)
            except AzimgError as err:  # gather guards facets; this is a last line
                guest = insp.unreadable_root(spath, "linux", str(err))
                why = str(err)
            if mounts:
                notes.append("mounted " + ", ".join(sorted(mounts)))
        facts = insp.ImageFacts(layout, guest, root_number, ids)
        findings = list(container)
        have = {f.rule for f in findings}
        findings += [f for f in evaluate(facts, ctx) if f.rule not in have]
        bytes_read = img.bytes_read
        fmt = img.format
        if img.view.method not in ("direct", "vhd"):
            notes.append(f"{fmt} read through {img.view.method}")
    g = guest
    os_name = " ".join(x for x in (g.os.id or g.os.kind, g.os.version_id) if x)
    arch = g.system.arch.value if g.system.arch else None
    return Report(
        image=spath,
        format=fmt,
        context=ctx,
        findings=tuple(findings),
        os=os_name,
        kernel=g.kernel.default_kernel,
        generations=generation.bootable_generations(layout, arch),
        root=root_label,
        unreadable_reason=why if root_gp is None else None,
        seconds=time.perf_counter() - start,
        bytes_read=bytes_read,
        notes=tuple(notes),
    )


def _container_findings(path: str) -> list[Finding]:
    """FMT/VHD/SZ rules from the container module (shared with `azimg info`)."""
    with open(path, "rb") as fh:
        return list(check_container(fh))


# ----------------------------------------------------------------------------------------------
# Rendering (the only place findings become text)

HEADINGS = {Severity.blocker: "BLOCKERS", Severity.warning: "WARNINGS", Severity.advice: "ADVICE"}
MARK = {Status.failed: "FAIL", Status.unreadable: "UNREAD", Status.passed: "pass"}


def render_text(report: Report, *, show_passed: bool = False) -> str:
    lines = [
        f"image   {report.image} ({report.format})",
        f"guest   {report.os or 'unknown'}"
        + (f", kernel {report.kernel}" if report.kernel else "")
        + (f", root {report.root}" if report.root else ""),
    ]
    if report.generations:
        gens = report.generations
        lines.append(f"boots   {gens.label}  (gen1: {gens.gen1_why}; gen2: {gens.gen2_why})")
    type_ = "generalized" if report.context.generalized else "specialized"
    lines.append(
        f"checked as {type_}"
        + (f", Gen{report.context.generation}" if report.context.generation else "")
    )
    for note in report.notes:
        lines.append(f"note    {note}")
    for sev in SEVERITY_ORDER:
        shown = [
            f
            for f in report.findings
            if f.severity is sev
            and (
                f.status in (Status.failed, Status.unreadable)
                or (show_passed and f.status is Status.passed)
            )
        ]
        if not shown:
            continue
        lines.append("")
        lines.append(f"{HEADINGS[sev]} ({len(shown)})")
        width = max(len(f.rule) for f in shown)
        for f in shown:
            lines.append(f"  {MARK[f.status]:<6} {f.rule:<{width}}  {f.title}")
            for e in f.evidence[:3]:
                lines.append(
                    f"  {'':<6} {'':<{width}}    at {e.where}"
                    + (f": {e.detail}" if e.detail else "")
                )
            if f.fix and f.status is Status.failed:
                lines.append(f"  {'':<6} {'':<{width}}    fix: {f.fix}")
    if report.why_unreadable:
        lines.append("")
        lines.append(f"unreadable: {report.why_unreadable}")
    lines.append("")
    lines.append(report.summary())
    return "\n".join(lines)


# SARIF 2.1.0 for CI code scanning: one rule per rule id (its help is the fix), one result per
# finding. Passed and n/a findings are results too (kind pass / notApplicable, level none), so a
# scanner sees what was checked; failed ones carry the severity's level.
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {Severity.blocker: "error", Severity.warning: "warning", Severity.advice: "note"}
SARIF_KIND = {
    Status.failed: "fail",
    Status.passed: "pass",
    Status.unreadable: "review",
    Status.not_applicable: "notApplicable",
}


def render_sarif(report: Report, *, tool_version: str) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    artifact = {"uri": os.path.basename(report.image), "index": 0}
    for f in report.findings:
        if f.rule not in rules:
            rules[f.rule] = {
                "id": f.rule,
                "shortDescription": {"text": f.title},
                "help": {"text": f.fix or f.title},
                "defaultConfiguration": {"level": SARIF_LEVEL[f.severity]},
                "properties": {"severity": str(f.severity)},
            }
        failing = f.status in (Status.failed, Status.unreadable)
        where = "; ".join(e.where + (f": {e.detail}" if e.detail else "") for e in f.evidence)
        text = f"{f.title}" + (f" — {where}" if where else "")
        if f.status is Status.failed and f.fix:
            text += f". Fix: {f.fix}"
        results.append(
            {
                "ruleId": f.rule,
                "ruleIndex": list(rules).index(f.rule),
                "kind": SARIF_KIND[f.status],
                "level": SARIF_LEVEL[f.severity] if failing else "none",
                "message": {"text": text},
                "locations": [{"physicalLocation": {"artifactLocation": artifact}}],
                "properties": {
                    "status": str(f.status),
                    "evidence": [{"where": e.where, "detail": e.detail} for e in f.evidence],
                },
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "azimg check",
                        "version": tool_version,
                        "informationUri": "https://learn.microsoft.com/azure/virtual-machines/linux/create-upload-generic",
                        "rules": list(rules.values()),
                    }
                },
                "artifacts": [{"location": {"uri": artifact["uri"]}}],
                "results": results,
                "properties": {"summary": report.summary(), "exitCode": report.exit_code},
            }
        ],
    }
