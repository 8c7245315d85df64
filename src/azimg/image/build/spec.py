"""What the user asked to build, validated once before any slow step runs."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path

from azimg.errors import InvalidArgument

MiB = 1024 * 1024
GiB = 1024 * MiB
DEFAULT_SIZE = 4 * GiB
# Azure's upload floor is 20 MiB, but a Debian root with a kernel needs far more; the real
# minimum is checked against the bootstrapped tree once it is known (layout.check_fits).
MIN_SIZE = 256 * MiB
MAX_SIZE_GEN1 = 2 * 1024 * GiB  # MBR (and Azure Gen1) stop at 2 TiB
MAX_SIZE = 4095 * GiB  # Azure's largest OS disk

_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# useradd's portable rule (Debian's NAME_REGEX default), minus names Azure refuses.
_USERNAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_RESERVED_USERS = frozenset({"root", "admin", "administrator", "daemon", "bin", "sys", "nobody"})
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$")
_SSH_KEY = re.compile(r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-\S+) [A-Za-z0-9+/=]+( .*)?$")


class Generation(enum.StrEnum):
    """Which firmware the disk boots under: BIOS (1), UEFI (2) or both (hybrid GPT)."""

    gen1 = "1"
    gen2 = "2"
    both = "both"

    @property
    def bios(self) -> bool:
        return self is not Generation.gen2

    @property
    def uefi(self) -> bool:
        return self is not Generation.gen1


class Agent(enum.StrEnum):
    """Who provisions the VM: cloud-init (+ waagent for extensions), waagent alone, or nobody."""

    cloud_init = "cloud-init"
    waagent = "waagent"
    none = "none"


@dataclass(frozen=True)
class Account:
    """The user a specialized image carries (it will never be provisioned)."""

    hostname: str
    username: str
    ssh_public_key: str


@dataclass(frozen=True)
class BuildSpec:
    output: Path
    release: str = "bookworm"
    generation: Generation = Generation.both
    agent: Agent = Agent.cloud_init
    size: int = DEFAULT_SIZE
    packages: tuple[str, ...] = ()
    specialized: Account | None = None
    mirror: str | None = None
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.size % MiB:
            raise InvalidArgument(
                f"--size {self.size} is not a whole number of MiB",
                hint="Azure needs whole MiB; e.g. --size 4096M",
            )
        if self.size < MIN_SIZE:
            raise InvalidArgument(f"--size must be at least {MIN_SIZE // MiB} MiB")
        limit = MAX_SIZE_GEN1 if self.generation is Generation.gen1 else MAX_SIZE
        if self.size > limit:
            raise InvalidArgument(
                f"--size {self.size // GiB} GiB is over the {limit // GiB} GiB limit "
                f"for generation {self.generation.value}"
            )
        if not re.fullmatch(r"[a-z][a-z0-9-]*", self.release):
            raise InvalidArgument(f"--release {self.release!r} is not a Debian suite name")
        for name in self.packages:
            if not _PACKAGE.match(name):
                raise InvalidArgument(f"--packages: {name!r} is not a Debian package name")
        if self.output.suffix.lower() != ".vhd":
            raise InvalidArgument(f"output {self.output} must end in .vhd")
        if not self.output.parent.is_dir():
            raise InvalidArgument(f"output directory {self.output.parent} does not exist")
        if self.specialized is not None:
            validate_account(self.specialized)


def validate_account(account: Account) -> None:
    if not _HOSTNAME.match(account.hostname):
        raise InvalidArgument(f"--hostname {account.hostname!r} is not a valid host name")
    if not _USERNAME.match(account.username) or account.username in _RESERVED_USERS:
        raise InvalidArgument(
            f"--user {account.username!r} is not allowed",
            hint="lower-case letters, digits, '-' and '_', not a system account name",
        )
    if not _SSH_KEY.match(account.ssh_public_key.strip()):
        raise InvalidArgument(
            "--ssh-key is not an OpenSSH public key line", hint="pass the contents of a .pub file"
        )


def parse_size(text: str) -> int:
    """'4G', '4096M', '4GiB' or plain bytes → bytes (binary units, as qemu-img reads them)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise InvalidArgument(f"--size {text!r} is not a size", hint="e.g. 4G or 4096M")
    number, unit = int(match.group(1)), match.group(2).upper()
    return number * {"": 1, "K": 1024, "M": MiB, "G": GiB, "T": 1024 * GiB}[unit]
