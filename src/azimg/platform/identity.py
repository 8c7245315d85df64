"""Who may call: the default tenant, subscription and service principal, and their tokens.

Made on first start and kept in the metadata store, so ``azimg credentials`` can print them
without a running server. Tokens are RS256 JWTs signed with a key under the data directory
and published through OpenID discovery (``/{tenant}/discovery/v2.0/keys``), so other tools can
verify them too. Verification is cached per token string: the request path then costs one
dict lookup instead of an RSA verify.

Boundaries: a token names its tenant (``tid``) and ARM serves it only the subscriptions that
tenant owns (``InvalidAuthenticationTokenTenant``); tokens are issued only for the audiences
this platform serves (AADSTS500011 otherwise); wrong secrets are counted per client and after
``THROTTLE_FAILURES`` in the window the client gets 429 + Retry-After, even with the right
secret, until the window has passed.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from azimg.platform.errors import (
    ClientThrottled,
    ExpiredAuthenticationToken,
    InvalidAuthenticationToken,
    InvalidAuthenticationTokenTenant,
    InvalidClient,
    InvalidParameter,
    InvalidResource,
    InvalidTenant,
    PlatformError,
    UnsupportedGrantType,
)
from azimg.platform.resources import authorization_roles as roles
from azimg.platform.store import Document, MetadataStore

TENANT_TYPE = "azimg/tenants"
SUBSCRIPTION_TYPE = "Microsoft.Resources/subscriptions"
PRINCIPAL_TYPE = "azimg/servicePrincipals"
#: Audiences ARM accepts: the public cloud's resource id (what az and the SDK ask for by
#: default) and our own origin (for clients that use the ARM URL as the audience).
ARM_AUDIENCES = ("https://management.core.windows.net/", "https://management.azure.com/")
TOKEN_LIFETIME = 3600
#: Wrong secrets one client may send within the throttle window before it gets 429s.
THROTTLE_FAILURES = 10
_KEY_ID = "azimg-1"


@dataclass(frozen=True)
class Credentials:
    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    object_id: str


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of one ARM request."""

    tenant_id: str
    object_id: str
    app_id: str


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def bootstrap(meta: MetadataStore) -> Credentials:
    """The default tenant, subscription and principal: created once, then read back."""
    for doc in meta.list(type=PRINCIPAL_TYPE):
        body = doc.body
        if body.get("default"):
            creds = Credentials(
                tenant_id=body["tenantId"],
                subscription_id=body["subscriptionId"],
                client_id=body["appId"],
                client_secret=body["secret"],
                object_id=body["objectId"],
            )
            _ensure_owner(meta, creds)  # data directories made before RBAC get it too
            return creds
    creds = Credentials(
        tenant_id=str(uuid.uuid4()),
        subscription_id=str(uuid.uuid4()),
        client_id=str(uuid.uuid4()),
        client_secret=secrets.token_urlsafe(30),
        object_id=str(uuid.uuid4()),
    )
    meta.put(
        Document(
            id=f"/tenants/{creds.tenant_id}",
            type=TENANT_TYPE,
            body={
                "tenantId": creds.tenant_id,
                "displayName": "azimg",
                "defaultDomain": "azimg.local",
            },
        )
    )
    meta.put(
        Document(
            id=f"/subscriptions/{creds.subscription_id}",
            type=SUBSCRIPTION_TYPE,
            body={
                "subscriptionId": creds.subscription_id,
                "tenantId": creds.tenant_id,
                "displayName": "azimg",
                "state": "Enabled",
            },
        )
    )
    meta.put(
        Document(
            id=f"/tenants/{creds.tenant_id}/servicePrincipals/{creds.client_id}",
            type=PRINCIPAL_TYPE,
            body={
                "default": True,
                "tenantId": creds.tenant_id,
                "subscriptionId": creds.subscription_id,
                "appId": creds.client_id,
                "objectId": creds.object_id,
                "secret": creds.client_secret,
                "displayName": "azimg-default",
                "signInAudience": "AzureADMyOrg",
                "homeTenantId": creds.tenant_id,
                "admin": True,
            },
        )
    )
    _ensure_owner(meta, creds)
    return creds


def _ensure_owner(meta: MetadataStore, creds: Credentials) -> None:
    """The principal is Owner of its subscription (a single-tenant user notices no RBAC)."""
    name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"owner:{creds.subscription_id}:{creds.object_id}"))
    scope = f"/subscriptions/{creds.subscription_id}"
    if meta.get(roles.assignment_key(creds.subscription_id, name)) is None:
        doc = roles.assignment_document(
            scope=scope,
            name=name,
            role_guid=roles.OWNER.guid,
            principal_id=creds.object_id,
            principal_type="ServicePrincipal",
            created_by=creds.object_id,
        )
        with contextlib.suppress(PlatformError):  # another process seeded it first
            meta.put(doc, if_none_match=True)


# --- the directory: tenants, subscriptions, service principals (``azimg tenant|sub|sp``) -------


def _principals(meta: MetadataStore, tenant_id: str) -> list[Document]:
    return meta.list(type=PRINCIPAL_TYPE, prefix=f"/tenants/{tenant_id}/")


def require_tenant_exists(meta: MetadataStore, tenant_id: str) -> str:
    doc = meta.get(f"/tenants/{tenant_id}")
    if doc is None or doc.type != TENANT_TYPE:
        raise InvalidTenant(f"AADSTS90002: Tenant '{tenant_id}' not found.")
    return str(doc.body["tenantId"])


def _admin(meta: MetadataStore, tenant_id: str) -> Document:
    for doc in _principals(meta, tenant_id):
        if doc.body.get("admin") or doc.body.get("default"):
            return doc
    raise InvalidTenant(f"Tenant '{tenant_id}' has no administrator principal.")


def _secret(meta: MetadataStore, body: Mapping[str, Any]) -> str:
    """Secrets belong to the application: an SP consented into another tenant has none of
    its own and signs in with its home tenant's."""
    if "secret" in body:
        return str(body["secret"])
    home = meta.get(f"/tenants/{body['homeTenantId']}/servicePrincipals/{body['appId']}")
    return str(home.body.get("secret", "")) if home is not None else ""


def _credentials(meta: MetadataStore, body: Mapping[str, Any], subscription_id: str) -> Credentials:
    return Credentials(
        tenant_id=body["tenantId"],
        subscription_id=subscription_id,
        client_id=body["appId"],
        client_secret=_secret(meta, body),
        object_id=body["objectId"],
    )


def _put_subscription(meta: MetadataStore, tenant_id: str, display_name: str) -> str:
    sub = str(uuid.uuid4())
    meta.put(
        Document(
            id=f"/subscriptions/{sub}",
            type=SUBSCRIPTION_TYPE,
            body={
                "subscriptionId": sub,
                "tenantId": tenant_id,
                "displayName": display_name,
                "state": "Enabled",
            },
        ),
        if_none_match=True,
    )
    return sub


def _put_principal(
    meta: MetadataStore,
    *,
    tenant_id: str,
    app_id: str,
    subscription_id: str,
    display_name: str,
    audience: str,
    home_tenant: str,
    secret: str | None,
    admin: bool = False,
) -> Document:
    body: dict[str, Any] = {
        "tenantId": tenant_id,
        "subscriptionId": subscription_id,
        "appId": app_id,
        "objectId": str(uuid.uuid4()),
        "displayName": display_name,
        "signInAudience": audience,
        "homeTenantId": home_tenant,
        "admin": admin,
    }
    if secret is not None:
        body["secret"] = secret
    doc = Document(
        id=f"/tenants/{tenant_id}/servicePrincipals/{app_id}", type=PRINCIPAL_TYPE, body=body
    )
    return meta.put(doc, if_none_match=True)


def grant(
    meta: MetadataStore, *, scope: str, role: str, principal_id: str, created_by: str
) -> Document:
    """Assign a built-in role (by name or GUID) at ``scope`` (the CLI's ``--role --scope``)."""
    found = roles.built_in_by_name(role)
    if found is None:
        raise InvalidParameter(f"Role '{role}' is not a built-in role.", target="role")
    if roles.subscription_of(scope) is None:
        raise InvalidParameter(
            f"The scope '{scope}' is not a subscription, resource group or resource.",
            target="scope",
        )
    doc = roles.assignment_document(
        scope=scope,
        name=str(uuid.uuid4()),
        role_guid=found.guid,
        principal_id=principal_id,
        principal_type="ServicePrincipal",
        created_by=created_by,
    )
    return meta.put(doc, if_none_match=True)


def create_tenant(meta: MetadataStore, *, display_name: str | None = None) -> Credentials:
    """A new tenant with one subscription and an administrator principal that owns it."""
    bootstrap(meta)  # the default tenant always exists first
    tid = str(uuid.uuid4())
    name = display_name or f"tenant-{tid[:8]}"
    meta.put(
        Document(
            id=f"/tenants/{tid}",
            type=TENANT_TYPE,
            body={"tenantId": tid, "displayName": name, "defaultDomain": f"{tid[:8]}.azimg.local"},
        ),
        if_none_match=True,
    )
    sub = _put_subscription(meta, tid, name)
    doc = _put_principal(
        meta,
        tenant_id=tid,
        app_id=str(uuid.uuid4()),
        subscription_id=sub,
        display_name=f"{name}-admin",
        audience="AzureADMyOrg",
        home_tenant=tid,
        secret=secrets.token_urlsafe(30),
        admin=True,
    )
    creds = _credentials(meta, doc.body, sub)
    _ensure_owner(meta, creds)
    return creds


def create_subscription(
    meta: MetadataStore, *, tenant_id: str, display_name: str | None = None
) -> Credentials:
    """A new subscription in ``tenant_id``; the tenant's administrator owns it."""
    bootstrap(meta)
    tid = require_tenant_exists(meta, tenant_id)
    admin = _admin(meta, tid)
    sub = _put_subscription(meta, tid, display_name or "azimg")
    creds = _credentials(meta, admin.body, sub)
    _ensure_owner(meta, creds)
    return creds


def create_service_principal(
    meta: MetadataStore,
    *,
    tenant_id: str,
    multi_tenant: bool = False,
    display_name: str | None = None,
    role: str | None = None,
    scope: str | None = None,
) -> Credentials:
    """A new application and its service principal in ``tenant_id``, with a role if asked."""
    bootstrap(meta)
    tid = require_tenant_exists(meta, tenant_id)
    admin = _admin(meta, tid)
    if (role is None) != (scope is None):
        raise InvalidParameter("--role and --scope go together.", target="role")
    sub = admin.body["subscriptionId"]
    if scope is not None:
        sub = roles.subscription_of(scope) or ""
        doc = meta.get(f"/subscriptions/{sub}")
        if doc is None or str(doc.body.get("tenantId", "")).lower() != tid:
            raise InvalidParameter(
                f"The scope '{scope}' is not in a subscription of tenant '{tid}'.", target="scope"
            )
    app_id = str(uuid.uuid4())
    doc = _put_principal(
        meta,
        tenant_id=tid,
        app_id=app_id,
        subscription_id=sub,
        display_name=display_name or f"azimg-sp-{app_id[:8]}",
        audience="AzureADMultipleOrgs" if multi_tenant else "AzureADMyOrg",
        home_tenant=tid,
        secret=secrets.token_urlsafe(30),
    )
    if role is not None and scope is not None:
        grant(
            meta,
            scope=scope,
            role=role,
            principal_id=doc.body["objectId"],
            created_by=admin.body["objectId"],
        )
    return _credentials(meta, doc.body, sub)


def consent(meta: MetadataStore, *, tenant_id: str, app_id: str) -> Credentials:
    """A multi-tenant application gets a service principal (its own object id) in another
    tenant, as an administrator's consent gives it; its secret stays the application's."""
    bootstrap(meta)
    tid = require_tenant_exists(meta, tenant_id)
    app = app_id.lower()
    home = next(
        (
            d
            for d in meta.list(type=PRINCIPAL_TYPE)
            if d.body.get("appId") == app and d.body.get("homeTenantId") == d.body.get("tenantId")
        ),
        None,
    )
    if home is None:
        raise InvalidClient(f"AADSTS700016: Application with identifier '{app_id}' was not found.")
    if home.body.get("signInAudience") != "AzureADMultipleOrgs":
        raise InvalidParameter(
            f"The application '{app_id}' is a single-tenant application (signInAudience "
            "AzureADMyOrg): it cannot have a service principal in another tenant.",
            target="appId",
        )
    existing = meta.get(f"/tenants/{tid}/servicePrincipals/{app}")
    sub = _admin(meta, tid).body["subscriptionId"]
    if existing is not None:
        return _credentials(meta, existing.body, sub)
    doc = _put_principal(
        meta,
        tenant_id=tid,
        app_id=app,
        subscription_id=sub,
        display_name=home.body["displayName"],
        audience="AzureADMultipleOrgs",
        home_tenant=home.body["tenantId"],
        secret=None,
    )
    return _credentials(meta, doc.body, sub)


def find_principal(meta: MetadataStore, tenant_id: str, object_id: str) -> Document | None:
    """The service principal with ``object_id`` in ``tenant_id`` (None if there is none)."""
    oid = object_id.lower()
    return next((d for d in _principals(meta, tenant_id) if d.body["objectId"] == oid), None)


def _signing_key(data_dir: Path) -> rsa.RSAPrivateKey:
    path = data_dir / "identity" / "token-signing.pem"
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return key


class Identity:
    """Issues and checks tokens for the principals in the metadata store."""

    def __init__(
        self,
        meta: MetadataStore,
        data_dir: Path,
        base_url: str,
        *,
        throttle_window: float = 60.0,
    ) -> None:
        self.meta = meta
        self.base_url = base_url
        self.default = bootstrap(meta)
        self._key = _signing_key(data_dir)
        self._public = self._key.public_key()
        self._cache: dict[str, tuple[Caller, float]] = {}
        self._cache_lock = threading.Lock()
        self._owners: dict[str, str | None] = {}  # subscription id (lower) → tenant id
        self._throttle_window = throttle_window
        self._failures: dict[str, deque[float]] = {}
        self._failures_lock = threading.Lock()

    # --- throttling of wrong secrets -----------------------------------------------------------

    def _recent_failures(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and times[0] <= now - self._throttle_window:
            times.popleft()
        return times

    def _check_throttle(self, client: str) -> None:
        now = time.monotonic()
        with self._failures_lock:
            times = self._recent_failures(client, now)
            if len(times) < THROTTLE_FAILURES:
                return
            wait = max(1, int(times[0] + self._throttle_window - now + 0.999))
        raise ClientThrottled(
            f"AADSTS50196: Too many failed sign-ins for client '{client}' "
            f"({THROTTLE_FAILURES} wrong secrets within {self._throttle_window:g} s). "
            f"Retry after {wait} seconds.",
            retry_after=wait,
        )

    def _record_failure(self, client: str) -> None:
        now = time.monotonic()
        with self._failures_lock:
            if len(self._failures) > 10_000:  # bounded: forget clients with no failure in window
                cutoff = now - self._throttle_window
                for key in [k for k, v in self._failures.items() if not v or v[-1] <= cutoff]:
                    del self._failures[key]
            self._recent_failures(client, now).append(now)

    # --- OpenID / OAuth2 ---------------------------------------------------------------------

    def _tenant(self, tenant: str) -> str:
        if tenant.lower() in ("common", "organizations"):
            return self.default.tenant_id
        if self.meta.get(f"/tenants/{tenant}") is None:
            raise InvalidTenant(f"AADSTS90002: Tenant '{tenant}' not found.")
        return tenant.lower()

    def issuer(self, tenant: str) -> str:
        return f"{self.base_url}/{tenant}/v2.0"

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        tid = self._tenant(tenant)
        base = f"{self.base_url}/{tid}"
        return {
            "issuer": self.issuer(tid),
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["client_credentials"],
            "tenant_region_scope": "azimg",
        }

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._public, as_dict=True)
        jwk.update({"kid": _KEY_ID, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def issue_token(self, tenant: str, form: Mapping[str, str]) -> dict[str, Any]:
        """The client-credentials grant: check the secret, answer with a signed JWT."""
        tid = self._tenant(tenant)
        if form.get("grant_type") != "client_credentials":
            raise UnsupportedGrantType(
                f"AADSTS70003: The grant type '{form.get('grant_type')}' is not supported."
            )
        client_id = (form.get("client_id") or "").lower()
        self._check_throttle(f"{tid}/{client_id}")
        doc = self.meta.get(f"/tenants/{tid}/servicePrincipals/{client_id}")
        secret = form.get("client_secret") or ""
        if doc is None:
            self._record_failure(f"{tid}/{client_id}")
            raise InvalidClient(
                f"AADSTS700016: Application with identifier '{client_id}' was not found "
                f"in the directory '{tid}'."
            )
        if not hmac.compare_digest(secret.encode(), _secret(self.meta, doc.body).encode()):
            self._record_failure(f"{tid}/{client_id}")
            raise InvalidClient(
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
                f"in the request is the client secret value for app '{client_id}'."
            )
        scope = (form.get("scope") or "").split()
        resource = next(
            (s for s in scope if s.endswith("/.default")), ARM_AUDIENCES[0] + "/.default"
        )
        audience = resource[: -len("/.default")]
        if audience not in self.audiences():
            raise InvalidResource(
                f"AADSTS500011: The resource principal named {audience} was not found in the "
                f"tenant named {tid}. This platform issues tokens only for Azure Resource "
                f"Manager ({ARM_AUDIENCES[0]} or {self.base_url}/)."
            )
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": self.issuer(tid),
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME,
            "tid": tid,
            "oid": doc.body["objectId"],
            "sub": doc.body["objectId"],
            "appid": doc.body["appId"],
            "azp": doc.body["appId"],
            "idtyp": "app",
            "ver": "2.0",
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": _KEY_ID})
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": token,
        }

    # --- ARM side ----------------------------------------------------------------------------

    def audiences(self) -> list[str]:
        out: list[str] = []
        for a in (*ARM_AUDIENCES, self.base_url + "/"):
            out += [a, a.rstrip("/")]
        return out

    def require_tenant(self, caller: Caller, subscription_id: str) -> None:
        """401 ``InvalidAuthenticationTokenTenant`` unless the caller's tenant owns the
        subscription (an unknown subscription passes: the route answers 404 for it)."""
        key = subscription_id.lower()
        if key not in self._owners:
            doc = self.meta.get(f"/subscriptions/{subscription_id}")
            owner = str(doc.body.get("tenantId", "")).lower() if doc is not None else None
            if owner is None:
                return  # not cached: it may be created later
            self._owners[key] = owner
        owner = self._owners[key]
        if owner is not None and owner != caller.tenant_id.lower():
            raise InvalidAuthenticationTokenTenant(
                f"The access token is from the wrong issuer '{self.issuer(caller.tenant_id)}'. "
                f"It must match the tenant '{self.issuer(owner)}' associated with this "
                f"subscription. Please use the authority (URL) '{self.base_url}/{owner}' to get "
                "the token."
            )

    def verify(self, authorization: str | None) -> Caller:
        """The caller behind an ``Authorization: Bearer`` header, or a 401 error."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise InvalidAuthenticationToken(
                "The access token is missing or not a Bearer token."
                if not authorization
                else "The authentication scheme is not supported; use Bearer."
            )
        token = authorization[7:].strip()
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                audience=self.audiences(),
                options={"require": ["exp", "iat", "tid", "oid"]},
            )
        except jwt.ExpiredSignatureError:
            raise ExpiredAuthenticationToken(
                "The access token expiry UTC time is earlier than current UTC time."
            ) from None
        except jwt.InvalidTokenError as err:
            raise InvalidAuthenticationToken(f"The access token is invalid: {err}.") from None
        if claims["iss"] != self.issuer(claims["tid"]):
            raise InvalidAuthenticationToken("The access token is from the wrong issuer.")
        caller = Caller(
            tenant_id=claims["tid"], object_id=claims["oid"], app_id=claims.get("appid", "")
        )
        with self._cache_lock:
            if len(self._cache) > 10_000:
                self._cache = {t: v for t, v in self._cache.items() if v[1] > now}
            self._cache[token] = (caller, float(claims["exp"]))
        return caller
