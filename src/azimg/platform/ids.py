"""ARM resource ids and the platform's one UTC timestamp format.

The only parser of ARM ids in the tree: ``ResourceId.parse`` (raises ``InvalidParameter``) and
``resource_type`` (lower-cased full type, or "" for what is not a provider resource). Ids keep
the casing they were created with; comparisons lower-case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from azimg.platform.errors import InvalidParameter

RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"


def utc_now() -> str:
    """Now as Azure writes times (.NET ticks: seven fractional digits, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


@dataclass(frozen=True)
class ResourceId:
    """``/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{t}/{n}...]``."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]  # ("galleries", "images", "versions")
    names: tuple[str, ...]  # ("g", "i", "1.0.0")

    @classmethod
    def parse(cls, rid: str, *, target: str | None = None) -> ResourceId:
        segs = rid.strip("/").split("/")
        low = [s.lower() for s in segs]
        if (
            len(segs) < 8
            or len(segs) % 2
            or low[0] != "subscriptions"
            or low[2] != "resourcegroups"
            or low[4] != "providers"
            or not all(segs)
        ):
            raise InvalidParameter(
                f"The resource id '{rid}' is not a valid ARM resource id.", target=target
            )
        return cls(
            subscription=segs[1],
            resource_group=segs[3],
            namespace=segs[5],
            types=(segs[6], *segs[8::2]),
            names=tuple(segs[7::2]),
        )

    @property
    def type(self) -> str:
        """The full type as given: ``Microsoft.Compute/galleries/images``."""
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def parent(self) -> str | None:
        """The id of the enclosing resource of a nested one (None at top level)."""
        if len(self.names) == 1:
            return None
        return str(
            ResourceId(
                self.subscription,
                self.resource_group,
                self.namespace,
                self.types[:-1],
                self.names[:-1],
            )
        )

    def __str__(self) -> str:
        pairs = "/".join(f"{t}/{n}" for t, n in zip(self.types, self.names, strict=True))
        return f"{rg_id(self.subscription, self.resource_group)}/providers/{self.namespace}/{pairs}"


def rg_id(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"


def resource_id(
    subscription_id: str, resource_group: str, rtype: str, name: str, *children: str
) -> str:
    """``rtype`` like ``Microsoft.Compute/disks``; ``children`` alternate type and name."""
    rid = f"{rg_id(subscription_id, resource_group)}/providers/{rtype}/{name}"
    for child in children:
        rid += f"/{child}"
    return rid


def resource_type(rid: str) -> str:
    """The lower-cased full type of any id under ``/providers/`` (the last provider segment
    counts, as for extension resources); ``microsoft.resources/resourcegroups`` for a group id
    and "" for anything else."""
    segs = rid.strip("/").split("/")
    low = [s.lower() for s in segs]
    if "providers" not in low:
        if len(segs) == 4 and low[0] == "subscriptions" and low[2] == "resourcegroups":
            return RESOURCE_GROUP_TYPE.lower()
        return ""
    i = len(low) - 1 - low[::-1].index("providers")
    rest = low[i + 1 :]
    if len(rest) < 2:
        return ""
    return "/".join([rest[0]] + [rest[j] for j in range(1, len(rest), 2)])
