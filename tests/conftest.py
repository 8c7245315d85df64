"""Session fixtures shared by every test directory. Keep this a thin include: logic lives in
helper modules (``tests/images.py``) so several engineers can add fixtures here side by side."""

from __future__ import annotations

import pytest

from tests.images import ImageFactory


@pytest.fixture(scope="session")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> ImageFactory:
    """``built_image(generation="both", agent="cloud-init", specialized=False, **extra)`` →
    the path of a real built .vhd (built once per argument set per session; read-only)."""
    return ImageFactory(tmp_path_factory.mktemp("images"))
