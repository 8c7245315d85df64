"""Resource-provider registration per subscription (``register`` / ``unregister``).

Which providers and types exist is the registry's (``platform/registry.py``); this module
only keeps the registration state a subscription chose. Providers start Registered (as the
SDK's auto-registration expects of a fresh subscription); an unregistered namespace refuses
writes with ``MissingSubscriptionRegistration``, which the SDK answers by registering it.
"""

from __future__ import annotations

from azimg.platform.errors import MissingSubscriptionRegistration
from azimg.platform.resources.common import check_subscription
from azimg.platform.store import Document, Store

PROVIDER_TYPE = "Microsoft.Resources/providers"
REGISTERED = "Registered"
NOT_REGISTERED = "NotRegistered"


def _id(subscription_id: str, namespace: str) -> str:
    return f"/subscriptions/{subscription_id}/providers/{namespace}"


def state(store: Store, *, subscription_id: str, namespace: str) -> str:
    doc = store.meta.get(_id(subscription_id, namespace))
    return doc.body["registrationState"] if doc is not None else REGISTERED


def set_state(store: Store, *, subscription_id: str, namespace: str, registered: bool) -> str:
    """Register or unregister ``namespace`` (the canonical spelling) for the subscription."""
    check_subscription(store, subscription_id)
    value = REGISTERED if registered else NOT_REGISTERED
    store.meta.put(
        Document(
            id=_id(subscription_id, namespace),
            type=PROVIDER_TYPE,
            body={"namespace": namespace, "registrationState": value},
        )
    )
    return value


def require_registered(store: Store, *, subscription_id: str, namespace: str) -> None:
    if state(store, subscription_id=subscription_id, namespace=namespace) != REGISTERED:
        raise MissingSubscriptionRegistration.of(namespace=namespace)
