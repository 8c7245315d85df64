"""VM documents change only by compare-and-set: a tags PATCH and the fabric's power-state
report racing each other both survive, on both metadata backends.

The race is made exact at the metadata-store boundary: a store whose ``put`` lets the other
writer in between a writer's read and its write (the window the old read-then-save had).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from azimg.platform.resources import virtual_machines as vms
from azimg.platform.resources.virtual_machines import (
    OsDisk,
    RuntimeDisk,
    UpdateVm,
    VirtualMachine,
    to_doc,
)
from azimg.platform.store import BlobRef, Document, Store
from azimg.platform.store.filesystem import FilesystemBlobStore
from azimg.platform.store.sql import SqlMetadataStore

RG = "/subscriptions/s/resourceGroups/rg"
RID = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1"


class Interleaving:
    """A metadata store that runs ``between`` once, just before the first write that
    ``when`` picks, as if another writer got there first."""

    def __init__(self, inner: SqlMetadataStore) -> None:
        self.inner = inner
        self.when: Callable[[Document], bool] = lambda doc: False
        self.between: Callable[[], None] = lambda: None

    def put(self, doc: Document, **kwargs: Any) -> Document:
        if self.when(doc):
            self.when = lambda doc: False
            self.between()
        return self.inner.put(doc, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """(the store the racing writer uses, the plain store the other writer uses)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    meta = SqlMetadataStore(url)
    blobs = FilesystemBlobStore(tmp_path / "blobs", ("eastus",))
    racing = Store(meta=Interleaving(meta), blobs=blobs, regions=("eastus",))  # type: ignore[arg-type]
    plain = Store(meta=meta, blobs=blobs, regions=("eastus",))
    plain.meta.put(Document(id=RG, type="Microsoft.Resources/resourceGroups", body={}))
    plain.meta.put(to_doc(_vm()))
    yield racing, plain
    meta.close()


def _vm() -> VirtualMachine:
    return VirtualMachine(
        id=RID,
        name="vm1",
        location="eastus",
        vm_id="3f0c5a2e-1b2c-4d3e-8f90-aabbccddeeff",
        vm_size="Standard_B1s",
        os_disk=OsDisk("d", "d", "Attach", "ReadWrite", "Standard_LRS", "Detach", 1 << 30),
        time_created="2026-12-07T18:00:00.0000000Z",
        system_data={},
        generation=1,
        os_state="Specialized",
        runtime_disk=RuntimeDisk(BlobRef("eastus", "d.vhd"), "vhd", 1 << 30),
        provisioning_state="Succeeded",
        power_state="running",
        tags={"env": "old"},
    )


def _fabric_reports_stopped(store: Store) -> None:
    """The compute controller's write when the guest powered itself off."""
    vms.change(store, RID, lambda vm: replace(vm, power_state="stopped"))


def _tags_patch(store: Store) -> VirtualMachine:
    return vms.update(store, UpdateVm("s", "rg", "vm1", tags={"env": "new"}))


def test_a_power_report_between_a_patch_read_and_write_is_kept(
    stores: tuple[Store, Store],
) -> None:
    racing, plain = stores
    racing.meta.when = lambda doc: doc.body.get("tags") == {"env": "new"}  # type: ignore[attr-defined]
    racing.meta.between = lambda: _fabric_reports_stopped(plain)  # type: ignore[attr-defined]
    answered = _tags_patch(racing)
    stored = vms.get_by_id(plain, RID)
    assert (stored.tags, stored.power_state) == ({"env": "new"}, "stopped")
    assert (answered.tags, answered.power_state) == ({"env": "new"}, "stopped")


def test_a_patch_between_a_power_report_read_and_write_is_kept(
    stores: tuple[Store, Store],
) -> None:
    racing, plain = stores
    racing.meta.when = lambda doc: doc.body.get("power_state") == "stopped"  # type: ignore[attr-defined]
    racing.meta.between = lambda: _tags_patch(plain)  # type: ignore[attr-defined]
    _fabric_reports_stopped(racing)
    stored = vms.get_by_id(plain, RID)
    assert (stored.tags, stored.power_state) == ({"env": "new"}, "stopped")
