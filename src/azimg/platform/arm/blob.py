"""Placeholder replaced below."""

from __future__ import annotations

from starlette.applications import Starlette

from azimg.platform.store import Store


def create_blob_app(store: Store) -> Starlette:
    return Starlette()
