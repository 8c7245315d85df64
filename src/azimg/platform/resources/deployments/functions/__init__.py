"""Every template function, registered by importing its family module (the registry is
``base.FUNCTIONS``; names are looked up lower-cased)."""

from azimg.platform.resources.deployments.functions import (  # noqa: F401  (registration)
    cidr,
    collections,
    dates,
    lambdas,
    logic,
    numeric,
    resource,
    scope,
    strings,
)
from azimg.platform.resources.deployments.functions.base import FUNCTIONS, Context

__all__ = ["FUNCTIONS", "Context"]
