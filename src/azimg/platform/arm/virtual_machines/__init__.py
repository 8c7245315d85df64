"""Virtual machines over HTTP: ``routes`` (the router), ``models`` (typed request bodies and
their commands), ``render`` (the wire shape of a VM and its instance view)."""

from azimg.platform.arm.virtual_machines.render import render
from azimg.platform.arm.virtual_machines.routes import router

__all__ = ["render", "router"]
