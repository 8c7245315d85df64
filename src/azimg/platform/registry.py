"""Every resource type the platform serves, declared once, as data.

The composition root of the platform: it imports each type's router (``platform/arm``) and
domain module (``platform/resources``) eagerly, so a type that fails to import stops
``azimg serve`` with the error. From ``PROVIDERS`` the app takes routers, job kinds,
releasers, LRO renderers, services, source resolvers, the api-versions each type accepts and
the provider metadata ARM serves (``GET .../providers/{namespace}``). Nothing imports this
module but ``arm/app.py`` (and tests); a new type is one ``ResourceType(...)`` entry below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter

from azimg.platform import sources
from azimg.platform.arm import authorization as arm_authorization
from azimg.platform.arm import deployments as arm_deployments
from azimg.platform.arm import disks as arm_disks
from azimg.platform.arm import galleries as arm_galleries
from azimg.platform.arm import gallery_images as arm_gallery_images
from azimg.platform.arm import gallery_versions as arm_gallery_versions
from azimg.platform.arm import identity as arm_identity
from azimg.platform.arm import images as arm_images
from azimg.platform.arm import operations as arm_operations
from azimg.platform.arm import resource_groups as arm_resource_groups
from azimg.platform.arm import snapshots as arm_snapshots
from azimg.platform.arm import subscriptions as arm_subscriptions
from azimg.platform.arm import virtual_machines as arm_virtual_machines
from azimg.platform.arm.network import network_interfaces as arm_nics
from azimg.platform.arm.network import network_security_groups as arm_nsgs
from azimg.platform.arm.network import public_ip_addresses as arm_pips
from azimg.platform.arm.network import virtual_networks as arm_vnets
from azimg.platform.compute.controller import ComputeController
from azimg.platform.jobs import Jobs, JobSpec
from azimg.platform.resources import (
    disks,
    galleries,
    gallery_images,
    gallery_versions,
    images,
    resource_groups,
    snapshots,
    virtual_machines,
)
from azimg.platform.resources.deployments import engine as deployments_engine
from azimg.platform.settings import Settings
from azimg.platform.store import Document, Store

Renderer = Callable[[Store, str], Mapping[str, Any]]
Releaser = Callable[[Store, Document], None]


class Service(Protocol):
    """A runtime a type needs while the app runs (the VM controller): built before the job
    kinds are registered (it may register its own), started before resumed jobs run, stopped
    after the job pool."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@runtime_checkable
class ReleasingService(Service, Protocol):
    """A service that is its type's releaser (the VM controller stops a VM's process before
    a resource-group delete drops its document)."""

    def release(self, store: Store, doc: Document) -> None: ...


ServiceFactory = Callable[[Settings, Store, Jobs], Service]


@dataclass(frozen=True)
class ResourceType:
    """One ARM resource type. ``type`` is the path under the namespace as ARM spells it
    (``galleries/images/versions``); ``api_versions`` are the REST spec's, newest first
    (requests with any other version get 400 InvalidApiVersionParameter)."""

    namespace: str
    type: str
    api_versions: tuple[str, ...]
    router: APIRouter | None = None  # None: routes come with another type's router
    jobs: Mapping[str, JobSpec] = field(default_factory=dict)
    releaser: Releaser | None = None  # before a resource-group delete drops a document
    renderer: Renderer | None = None  # the LRO Location result of a finished PUT/PATCH
    resolver: sources.Resolver | None = None  # when resources of this type can be a source
    service: ServiceFactory | None = None
    regional: bool = True  # provider metadata lists the platform's regions (else none)
    generic: bool = True  # a tracked resource: in the generic resources API, by-id verbs

    @property
    def full_type(self) -> str:
        return f"{self.namespace}/{self.type}"

    @property
    def key(self) -> str:
        return self.full_type.lower()


@dataclass(frozen=True)
class Provider:
    namespace: str
    types: tuple[ResourceType, ...]
    always_registered: bool = False  # Microsoft.Resources cannot be unregistered


# --- api-versions (REST specs; §1 of reference/arm-api.md lists what clients send) -------------

_DISK_RP = (
    "2026-03-02", "2025-01-02", "2024-03-02", "2023-10-02", "2023-04-02", "2023-01-02",
    "2022-07-02", "2022-03-02", "2021-12-01", "2021-08-01", "2021-04-01", "2020-12-01",
    "2020-09-30", "2020-06-30", "2020-05-01", "2019-11-01", "2019-07-01", "2019-03-01",
    "2018-09-30", "2018-06-01", "2018-04-01", "2017-03-30", "2016-04-30-preview",
)  # fmt: skip
_COMPUTE_RP = (
    "2026-04-01", "2025-11-01", "2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01",
    "2023-09-01", "2023-07-01", "2023-03-01", "2022-11-01", "2022-08-01", "2022-03-01",
    "2021-11-01", "2021-07-01", "2021-04-01", "2021-03-01", "2020-12-01", "2020-06-01",
    "2019-12-01", "2019-07-01", "2019-03-01", "2018-10-01", "2018-06-01", "2018-04-01",
    "2017-12-01", "2017-03-30", "2016-04-30-preview",
)  # fmt: skip
_VM = (*_COMPUTE_RP, "2016-03-30", "2015-06-15")
_GALLERY_RP = (
    "2026-03-03", "2025-03-03", "2024-03-03", "2023-07-03", "2022-08-03", "2022-03-03",
    "2022-01-03", "2021-10-01", "2021-07-01", "2020-09-30", "2019-12-01", "2019-07-01",
    "2019-03-01", "2018-06-01",
)  # fmt: skip
_RESOURCES = (
    "2025-04-01", "2025-03-01", "2025-01-01", "2024-11-01", "2024-07-01", "2024-03-01",
    "2023-07-01", "2022-09-01", "2021-04-01", "2021-01-01", "2020-10-01", "2020-08-01",
    "2020-06-01", "2019-10-01", "2019-08-01", "2019-07-01", "2019-05-10", "2019-05-01",
    "2019-03-01", "2018-05-01", "2018-02-01", "2017-05-10", "2016-09-01", "2016-07-01",
    "2016-06-01", "2016-02-01", "2015-11-01", "2015-01-01", "2014-04-01-preview",
)  # fmt: skip
# Microsoft.Network's stable versions (REST specs), plus every version az 2.91 and
# azure-mgmt-network 33.1 send (reference/network.md §1.1).
_NETWORK_RP = (
    "2026-03-01", "2025-09-01", "2025-07-01", "2025-05-01", "2025-03-01", "2025-01-01",
    "2024-10-01", "2024-07-01", "2024-05-01", "2024-03-01", "2024-01-01", "2023-11-01",
    "2023-09-01", "2023-06-01", "2023-05-01", "2023-04-01", "2023-02-01", "2022-11-01",
    "2022-09-01", "2022-07-01", "2022-05-01", "2022-01-01", "2021-08-01", "2021-05-01",
    "2021-03-01", "2021-02-01", "2020-11-01", "2020-08-01", "2020-07-01", "2020-06-01",
    "2020-05-01", "2020-04-01", "2020-03-01", "2019-12-01", "2019-11-01", "2019-09-01",
    "2019-08-01", "2019-07-01", "2019-06-01", "2019-04-01", "2019-02-01", "2018-12-01",
    "2018-11-01", "2018-10-01", "2018-08-01", "2018-07-01", "2018-06-01", "2018-04-01",
    "2018-03-01", "2018-02-01", "2018-01-01", "2017-11-01", "2017-10-01", "2017-09-01",
    "2017-08-01", "2017-06-01", "2017-04-01", "2017-03-01", "2016-12-01", "2016-11-01",
    "2016-10-01", "2016-09-01", "2016-08-01", "2016-07-01", "2016-06-01", "2016-03-30",
    "2015-06-15", "2015-05-01-preview",
)  # fmt: skip
_SUBSCRIPTIONS = (
    "2022-12-01", "2021-01-01", "2020-01-01", "2019-11-01", "2019-06-01", "2018-06-01",
    "2016-06-01", "2015-11-01", "2014-04-01-preview",
)  # fmt: skip


COMPUTE = Provider(
    "Microsoft.Compute",
    (
        ResourceType(
            "Microsoft.Compute",
            "disks",
            _DISK_RP,
            router=arm_disks.router,
            jobs=disks.JOBS,
            renderer=arm_disks.render,
            resolver=disks.resolve_disk,
        ),
        ResourceType(
            "Microsoft.Compute",
            "snapshots",
            _DISK_RP,
            router=arm_snapshots.router,
            jobs=snapshots.JOBS,
            renderer=arm_snapshots.render,
            resolver=snapshots.resolve_snapshot,
        ),
        ResourceType(
            "Microsoft.Compute",
            "images",
            _COMPUTE_RP,
            router=arm_images.router,
            jobs=images.JOBS,
            renderer=arm_images.render,
            resolver=images.resolve_image,
        ),
        ResourceType(
            "Microsoft.Compute",
            "galleries",
            _GALLERY_RP,
            router=arm_galleries.router,
            renderer=arm_galleries.render,
        ),
        ResourceType(
            "Microsoft.Compute",
            "galleries/images",
            _GALLERY_RP,
            router=arm_gallery_images.router,
            renderer=arm_gallery_images.render,
            resolver=gallery_versions.resolve_version,  # a definition id: its latest version
        ),
        ResourceType(
            "Microsoft.Compute",
            "galleries/images/versions",
            _GALLERY_RP,
            router=arm_gallery_versions.router,
            jobs=gallery_versions.JOBS,
            renderer=arm_gallery_versions.render,
            resolver=gallery_versions.resolve_version,
        ),
        ResourceType(
            "Microsoft.Compute",
            "virtualMachines",
            _VM,
            router=arm_virtual_machines.router,
            renderer=arm_virtual_machines.render,
            resolver=virtual_machines.resolve_os_disk,
            service=ComputeController.from_settings,
        ),
        ResourceType("Microsoft.Compute", "locations", _COMPUTE_RP, generic=False),
        ResourceType("Microsoft.Compute", "locations/operations", _VM, generic=False),
        ResourceType("Microsoft.Compute", "locations/diskoperations", _DISK_RP, generic=False),
        ResourceType("Microsoft.Compute", "locations/capsoperations", _GALLERY_RP, generic=False),
    ),
)

NETWORK = Provider(
    "Microsoft.Network",
    (
        ResourceType(
            "Microsoft.Network",
            "virtualNetworks",
            _NETWORK_RP,
            router=arm_vnets.router,
            renderer=arm_vnets.render_by_id,
        ),
        ResourceType("Microsoft.Network", "virtualNetworks/subnets", _NETWORK_RP, generic=False),
        ResourceType(
            "Microsoft.Network",
            "networkInterfaces",
            _NETWORK_RP,
            router=arm_nics.router,
            renderer=arm_nics.render_by_id,
        ),
        ResourceType(
            "Microsoft.Network", "networkInterfaces/ipConfigurations", _NETWORK_RP, generic=False
        ),
        ResourceType(
            "Microsoft.Network",
            "publicIPAddresses",
            _NETWORK_RP,
            router=arm_pips.router,
            renderer=arm_pips.render_by_id,
        ),
        ResourceType(
            "Microsoft.Network",
            "networkSecurityGroups",
            _NETWORK_RP,
            router=arm_nsgs.router,
            renderer=arm_nsgs.render_by_id,
        ),
        ResourceType(
            "Microsoft.Network", "networkSecurityGroups/securityRules", _NETWORK_RP, generic=False
        ),
        ResourceType(
            "Microsoft.Network",
            "networkSecurityGroups/defaultSecurityRules",
            _NETWORK_RP,
            generic=False,
        ),
        ResourceType("Microsoft.Network", "locations", _NETWORK_RP, generic=False),
        ResourceType("Microsoft.Network", "locations/operations", _NETWORK_RP, generic=False),
    ),
)

RESOURCES = Provider(
    "Microsoft.Resources",
    (
        ResourceType(
            "Microsoft.Resources",
            "resourceGroups",
            _RESOURCES,
            router=arm_resource_groups.router,
            renderer=arm_resource_groups.render,
            generic=False,
        ),
        ResourceType("Microsoft.Resources", "subscriptions", _SUBSCRIPTIONS, generic=False),
        ResourceType("Microsoft.Resources", "tenants", _SUBSCRIPTIONS, generic=False),
        ResourceType("Microsoft.Resources", "providers", _RESOURCES, generic=False),
        ResourceType("Microsoft.Resources", "resources", _RESOURCES, generic=False),
        ResourceType(
            "Microsoft.Resources", "subscriptions/resourceGroups", _RESOURCES, generic=False
        ),
        ResourceType("Microsoft.Resources", "operations", _RESOURCES, generic=False),
        ResourceType(
            "Microsoft.Resources",
            "deployments",
            ("2026-06-01", *_RESOURCES),  # 2026-06-01: azure-mgmt-resource-deployments 2.0.0
            router=arm_deployments.router,
            service=deployments_engine.service,
            regional=False,
            generic=False,
        ),
    ),
    always_registered=True,
)

# Microsoft.Authorization (REST specs; azure-mgmt-authorization 5.0.0b2 sends 2022-04-01 for
# assignments and 2022-05-01-preview for definitions; az pins none).
_ROLE_ASSIGNMENTS = (
    "2022-04-01", "2022-01-01-preview", "2020-10-01-preview", "2020-08-01-preview",
    "2020-04-01-preview", "2020-03-01-preview", "2018-09-01-preview", "2018-01-01-preview",
    "2017-10-01-preview", "2015-07-01",
)  # fmt: skip
_ROLE_DEFINITIONS = (
    "2022-05-01-preview", "2022-04-01", "2018-01-01-preview", "2015-07-01",
)  # fmt: skip

AUTHORIZATION = Provider(
    "Microsoft.Authorization",
    (
        ResourceType(
            "Microsoft.Authorization",
            "roleAssignments",
            _ROLE_ASSIGNMENTS,
            router=arm_authorization.router,  # roleDefinitions' routes too
            regional=False,
            generic=False,
        ),
        ResourceType(
            "Microsoft.Authorization",
            "roleDefinitions",
            _ROLE_DEFINITIONS,
            regional=False,
            generic=False,
        ),
    ),
    always_registered=True,
)

PROVIDERS: tuple[Provider, ...] = (COMPUTE, NETWORK, RESOURCES, AUTHORIZATION)

#: Routers that are not a resource type's (sign-in, operation status, subscriptions),
#: included after the types' own: FastAPI tries routes in order, and the per-type GETs are
#: the hot path.
PLUMBING_ROUTERS: tuple[APIRouter, ...] = (
    arm_operations.router,
    arm_subscriptions.router,
    arm_identity.router,
)

TYPES: dict[str, ResourceType] = {t.key: t for p in PROVIDERS for t in p.types}
_unused = (galleries, gallery_images)  # imported so a failure to import them stops serve


def provider(namespace: str) -> Provider | None:
    for p in PROVIDERS:
        if p.namespace.lower() == namespace.lower():
            return p
    return None


def routers() -> list[APIRouter]:
    return [t.router for t in TYPES.values() if t.router is not None] + list(PLUMBING_ROUTERS)


def renderers() -> dict[str, Renderer]:
    return {k: t.renderer for k, t in TYPES.items() if t.renderer is not None}


def releasers() -> dict[str, Releaser]:
    return {k: t.releaser for k, t in TYPES.items() if t.releaser is not None}


def job_specs(services: Mapping[str, Service] | None = None) -> dict[str, JobSpec]:
    """Every job kind, the resource-group delete (which needs the releasers, the services'
    included: ``services`` by type key) included."""
    release = releasers()
    for key, service in (services or {}).items():
        if isinstance(service, ReleasingService):
            release[key] = service.release
    out: dict[str, JobSpec] = dict(resource_groups.job_specs(release))
    for t in TYPES.values():
        for kind, spec in t.jobs.items():
            assert kind not in out, f"job kind {kind} declared twice"
            out[kind] = spec
    return out


def api_versions(rtype: str) -> tuple[str, ...] | None:
    """The versions the type (full type, any case) serves; None when it is not registered."""
    t = TYPES.get(rtype.lower())
    return t.api_versions if t is not None else None


sources.install({t.full_type: t.resolver for t in TYPES.values() if t.resolver is not None})
