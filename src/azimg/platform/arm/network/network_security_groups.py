"""Network security groups, security rules and default rules over HTTP (reference §5)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from azimg.platform.arm.deps import ARM_DEPENDENCIES, JsonBody, StoreDep
from azimg.platform.arm.models import parse
from azimg.platform.arm.network.models import (
    NetworkSecurityGroupBody,
    SecurityRuleBody,
    TagsBody,
    etag,
    rg_base,
)
from azimg.platform.arm.network.routes import add_common_routes
from azimg.platform.arm.paging import page
from azimg.platform.resources.common import check_tags, not_found
from azimg.platform.resources.network import network_security_groups as nsgs
from azimg.platform.resources.network import nsg_eval, references, security_rules
from azimg.platform.resources.network.network_security_groups import (
    DEFAULT_RULE_TYPE,
    RULE_TYPE,
    TYPE,
    NetworkSecurityGroup,
    SecurityRule,
    SecurityRuleSpec,
)
from azimg.platform.store import Store

router = APIRouter(dependencies=ARM_DEPENDENCIES, tags=["networkSecurityGroups"])
RG_BASE = rg_base("networksecuritygroups")

DEFAULT_DESCRIPTIONS = {
    "AllowVnetInBound": "Allow inbound traffic from all VMs in VNET",
    "AllowAzureLoadBalancerInBound": "Allow inbound traffic from azure load balancer",
    "DenyAllInBound": "Deny all inbound traffic",
    "AllowVnetOutBound": "Allow outbound traffic from all VMs to all VMs in VNET",
    "AllowInternetOutBound": "Allow outbound traffic from all VMs to Internet",
    "DenyAllOutBound": "Deny all outbound traffic",
}


def rule_spec(body: SecurityRuleBody, name: str | None = None) -> SecurityRuleSpec:
    p = body.properties
    rule_name = name or body.name or ""
    if p is None:
        return SecurityRuleSpec(name=rule_name)
    return SecurityRuleSpec(
        name=rule_name,
        protocol=p.protocol,
        access=p.access,
        priority=p.priority,
        direction=p.direction,
        description=p.description,
        source_port_range=p.sourcePortRange,
        source_port_ranges=tuple(p.sourcePortRanges or ()),
        destination_port_range=p.destinationPortRange,
        destination_port_ranges=tuple(p.destinationPortRanges or ()),
        source_address_prefix=p.sourceAddressPrefix,
        source_address_prefixes=tuple(p.sourceAddressPrefixes or ()),
        destination_address_prefix=p.destinationAddressPrefix,
        destination_address_prefixes=tuple(p.destinationAddressPrefixes or ()),
        application_security_groups=bool(
            p.sourceApplicationSecurityGroups or p.destinationApplicationSecurityGroups
        ),
    )


def render_rule(nsg: NetworkSecurityGroup, r: SecurityRule) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "protocol": r.protocol,
        "access": r.access,
        "priority": r.priority,
        "direction": r.direction,
        "sourcePortRanges": list(r.source_port_ranges),
        "destinationPortRanges": list(r.destination_port_ranges),
        "sourceAddressPrefixes": list(r.source_address_prefixes),
        "destinationAddressPrefixes": list(r.destination_address_prefixes),
    }
    for key, value in (
        ("description", r.description),
        ("sourcePortRange", r.source_port_range),
        ("destinationPortRange", r.destination_port_range),
        ("sourceAddressPrefix", r.source_address_prefix),
        ("destinationAddressPrefix", r.destination_address_prefix),
    ):
        if value is not None:
            props[key] = value
    return {
        "id": f"{nsg.id}/securityRules/{r.name}",
        "name": r.name,
        "etag": etag(nsg.etag),
        "type": RULE_TYPE,
        "properties": props,
    }


def render_default_rule(nsg: NetworkSecurityGroup, r: nsg_eval.Rule) -> dict[str, Any]:
    return {
        "id": f"{nsg.id}/defaultSecurityRules/{r.name}",
        "name": r.name,
        "etag": etag(nsg.etag),
        "type": DEFAULT_RULE_TYPE,
        "properties": {
            "provisioningState": "Succeeded",
            "description": DEFAULT_DESCRIPTIONS[r.name],
            "protocol": "*",
            "sourcePortRange": "*",
            "destinationPortRange": "*",
            "sourceAddressPrefix": r.source_prefixes[0],
            "destinationAddressPrefix": r.destination_prefixes[0],
            "access": r.access,
            "priority": r.priority,
            "direction": r.direction,
            "sourcePortRanges": [],
            "destinationPortRanges": [],
            "sourceAddressPrefixes": [],
            "destinationAddressPrefixes": [],
        },
    }


def render(store: Store, nsg: NetworkSecurityGroup) -> dict[str, Any]:
    nics, subnets = references.users_of_nsg(store, nsg.id)
    props: dict[str, Any] = {
        "provisioningState": nsg.provisioning_state,
        "resourceGuid": nsg.resource_guid,
        "flushConnection": nsg.flush_connection,
        "securityRules": [render_rule(nsg, r) for r in nsg.rules],
        "defaultSecurityRules": [render_default_rule(nsg, r) for r in nsg_eval.DEFAULT_RULES],
    }
    if nics:
        props["networkInterfaces"] = [{"id": i} for i in nics]
    if subnets:
        props["subnets"] = [{"id": i} for i in subnets]
    return {
        "id": nsg.id,
        "name": nsg.name,
        "type": TYPE,
        "location": nsg.location,
        "tags": dict(nsg.tags),
        "etag": etag(nsg.etag),
        "properties": props,
    }


@router.put(RG_BASE + "/{name}")
def create_or_update(
    subscription_id: str, resource_group: str, name: str, body: JsonBody, store: StoreDep
) -> Response:
    req = parse(NetworkSecurityGroupBody, body)
    p = req.properties
    nsg, created = nsgs.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=name,
        location=req.location,
        rules=tuple(rule_spec(r) for r in (p.securityRules or [])) if p else (),
        tags=req.tags,
        flush_connection=bool(p and p.flushConnection),
    )
    return JSONResponse(render(store, nsg), status_code=201 if created else 200)


@router.patch(RG_BASE + "/{name}")
def update_tags(
    subscription_id: str, resource_group: str, name: str, body: JsonBody, store: StoreDep
) -> dict[str, Any]:
    req = parse(TagsBody, body)
    nsg = nsgs.get(store, subscription_id=subscription_id, resource_group=resource_group, name=name)
    return render(store, nsgs.save(store, replace(nsg, tags=check_tags(req.tags))))


# --- security rules (child resources) and default rules (read-only) --------------------------


@router.put(RG_BASE + "/{nsg}/securityrules/{name}")
def put_rule(
    subscription_id: str,
    resource_group: str,
    nsg: str,
    name: str,
    body: JsonBody,
    store: StoreDep,
) -> Response:
    req = parse(SecurityRuleBody, body)
    group, rule, created = security_rules.create_or_update(
        store,
        subscription_id=subscription_id,
        resource_group=resource_group,
        nsg=nsg,
        spec=rule_spec(req, name),
    )
    return JSONResponse(render_rule(group, rule), status_code=201 if created else 200)


@router.get(RG_BASE + "/{nsg}/securityrules/{name}")
def get_rule(
    subscription_id: str, resource_group: str, nsg: str, name: str, store: StoreDep
) -> dict[str, Any]:
    group, rule = security_rules.get(
        store, subscription_id=subscription_id, resource_group=resource_group, nsg=nsg, name=name
    )
    return render_rule(group, rule)


@router.get(RG_BASE + "/{nsg}/securityrules")
def list_rules(
    subscription_id: str, resource_group: str, nsg: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    group = nsgs.get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=nsg
    )
    return page(request, [render_rule(group, r) for r in group.rules])


@router.delete(RG_BASE + "/{nsg}/securityrules/{name}")
def delete_rule(
    subscription_id: str, resource_group: str, nsg: str, name: str, store: StoreDep
) -> Response:
    deleted = security_rules.delete(
        store, subscription_id=subscription_id, resource_group=resource_group, nsg=nsg, name=name
    )
    return Response(status_code=200 if deleted else 204)


@router.get(RG_BASE + "/{nsg}/defaultsecurityrules")
def list_default_rules(
    subscription_id: str, resource_group: str, nsg: str, request: Request, store: StoreDep
) -> dict[str, Any]:
    group = nsgs.get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=nsg
    )
    return page(request, [render_default_rule(group, r) for r in nsg_eval.DEFAULT_RULES])


@router.get(RG_BASE + "/{nsg}/defaultsecurityrules/{name}")
def get_default_rule(
    subscription_id: str, resource_group: str, nsg: str, name: str, store: StoreDep
) -> dict[str, Any]:
    group = nsgs.get(
        store, subscription_id=subscription_id, resource_group=resource_group, name=nsg
    )
    for r in nsg_eval.DEFAULT_RULES:
        if r.name.lower() == name.lower():
            return render_default_rule(group, r)
    raise not_found(DEFAULT_RULE_TYPE, f"{group.name}/{name}", resource_group)


def render_by_id(store: Store, rid: str) -> dict[str, Any]:
    return render(store, nsgs.get_by_id(store, rid))


add_common_routes(router, "networksecuritygroups", nsgs, render)
