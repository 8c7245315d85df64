"""Settings of one platform instance, validated once and passed down (nothing reads env later).

Defaults give a single-machine platform: HTTPS on 127.0.0.1:8443, SQLite and blob files under
``~/.local/share/azimg`` (``AZIMG_DATA_DIR``), several real Azure region names. Every value can
come from a flag of ``azimg serve`` or an ``AZIMG_*`` environment variable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from azimg.errors import InvalidArgument

DEFAULT_REGIONS = ("eastus", "westus", "westeurope", "northeurope", "southeastasia")
_REGION = re.compile(r"^[a-z0-9]{2,40}$")


def normalise_location(name: str) -> str:
    """ARM compares regions on ``lower()`` without spaces: ``"West US"`` == ``"westus"``."""
    return name.replace(" ", "").lower()


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "azimg"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8443
    regions: tuple[str, ...] = DEFAULT_REGIONS
    database_url: str | None = None  # None → SQLite at data_dir/metadata.sqlite
    blob_url: str | None = None  # Blob API account URL (Azure Storage, Azurite); None → files
    blob_key: str | None = None  # that account's shared key (AZIMG_BLOB_KEY)
    public_host: str | None = None  # host name put into URLs and the certificate, if not host
    job_workers: int = 2
    replication_rate: int | None = None  # bytes/s per gallery replica copy; None = full speed
    vm_provisioning_timeout: float = 1200.0  # s until OSProvisioningTimedOut (Azure: ~20 min)
    vm_accel: str = "auto"  # tcg | kvm | auto: KVM only after a boot self-test passes
    header_timeout: float = 30.0  # s for a request's line + headers, then the connection closes
    auth_throttle_window: float = 60.0  # s over which wrong client secrets are counted

    def __post_init__(self) -> None:
        if not self.regions:
            raise InvalidArgument("at least one region is needed")
        regions = tuple(normalise_location(r) for r in self.regions)
        for r in regions:
            if not _REGION.match(r):
                raise InvalidArgument(f"invalid region name {r!r}", hint="e.g. eastus,westus")
        if len(set(regions)) != len(regions):
            raise InvalidArgument("a region is listed twice")
        object.__setattr__(self, "regions", regions)
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        if not 0 < self.port < 65536:
            raise InvalidArgument(f"invalid port {self.port}")

    @property
    def url_host(self) -> str:
        host = self.public_host or self.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return host

    @property
    def base_url(self) -> str:
        """The one HTTPS origin serving ARM, the token endpoint and the blob endpoint."""
        return f"https://{self.url_host}:{self.port}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'metadata.sqlite'}"

    @property
    def blob_root(self) -> Path:
        return self.data_dir / "blobs"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``AZIMG_*`` variables, with explicit (non-None) overrides on top."""
        env: dict[str, object] = {}
        if v := os.environ.get("AZIMG_DATA_DIR"):
            env["data_dir"] = Path(v)
        if v := os.environ.get("AZIMG_HOST"):
            env["host"] = v
        if v := os.environ.get("AZIMG_PORT"):
            env["port"] = int(v)
        if v := os.environ.get("AZIMG_REGIONS"):
            env["regions"] = tuple(x for x in v.split(",") if x.strip())
        if v := os.environ.get("AZIMG_DATABASE_URL"):
            env["database_url"] = v
        if v := os.environ.get("AZIMG_BLOB_URL"):
            env["blob_url"] = v
        if v := os.environ.get("AZIMG_BLOB_KEY"):
            env["blob_key"] = v
        if v := os.environ.get("AZIMG_REPLICATION_RATE"):
            env["replication_rate"] = int(v)
        if v := os.environ.get("AZIMG_VM_PROVISIONING_TIMEOUT"):
            env["vm_provisioning_timeout"] = float(v)
        if v := os.environ.get("AZIMG_VM_ACCEL"):
            env["vm_accel"] = v
        if v := os.environ.get("AZIMG_HEADER_TIMEOUT"):
            env["header_timeout"] = float(v)
        if v := os.environ.get("AZIMG_AUTH_THROTTLE_WINDOW"):
            env["auth_throttle_window"] = float(v)
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)  # type: ignore[arg-type]
