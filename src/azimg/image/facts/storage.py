"""What the guest mounts at boot (fstab) and the swap it would turn on."""

from __future__ import annotations

from dataclasses import dataclass

from azimg.disk.guestfs import GuestFS, read_text
from azimg.image.facts.files import Guard, Located, is_file, lines, listdir


@dataclass(frozen=True)
class FstabEntry:
    spec: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]
    where: str  # "/etc/fstab:3"


@dataclass(frozen=True)
class StorageFacts:
    fstab: tuple[FstabEntry, ...] | None = None  # None: no /etc/fstab
    fstab_errors: tuple[Located, ...] = ()
    swap_files: tuple[str, ...] = ()
    swap_units: tuple[str, ...] = ()

    def fstab_mount(self, mountpoint: str) -> FstabEntry | None:
        for e in self.fstab or ():
            if e.mountpoint == mountpoint:
                return e
        return None


def read_storage(fs: GuestFS, guard: Guard) -> StorageFacts:
    fstab, fstab_errors = guard("fstab", lambda: _read_fstab(fs), (None, ()))
    swap_files, swap_units = guard("swap", lambda: _read_swap(fs), ((), ()))
    return StorageFacts(fstab, fstab_errors, swap_files, swap_units)


def _read_fstab(fs: GuestFS) -> tuple[tuple[FstabEntry, ...] | None, tuple[Located, ...]]:
    text = read_text(fs, "/etc/fstab")
    if text is None:
        return None, ()
    entries, errors = [], []
    for n, line in lines(text):
        fields = line.split()
        where = f"/etc/fstab:{n}"
        if len(fields) < 3:
            errors.append(Located(line, where))
            continue
        opts = tuple(fields[3].split(",")) if len(fields) > 3 else ("defaults",)
        entries.append(FstabEntry(fields[0], fields[1], fields[2], opts, where))
    return tuple(entries), tuple(errors)


SWAP_FILE_CANDIDATES = (
    "/swapfile",
    "/swap.img",
    "/swap",
    "/var/swap",
    "/mnt/resource/swapfile",
    "/mnt/swapfile",
)


def _read_swap(fs: GuestFS) -> tuple[tuple[str, ...], tuple[str, ...]]:
    files = tuple(p for p in SWAP_FILE_CANDIDATES if is_file(fs, p))
    units = tuple(
        f"/etc/systemd/system/{n}"
        for n in listdir(fs, "/etc/systemd/system")
        if n.endswith(".swap")
    )
    return files, units
