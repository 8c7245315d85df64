"""Pure rules of gallery image versions: names, target regions, sources, latest, deletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from azimg.platform.errors import BadRequest, InvalidParameter, PlatformError
from azimg.platform.resources.gallery_versions import model
from azimg.platform.resources.gallery_versions import rules as gv
from azimg.platform.resources.gallery_versions.commands import DiskImageSpec
from azimg.platform.resources.gallery_versions.commands import TargetRegionSpec as R
from azimg.platform.resources.gallery_versions.rules import (
    DefinitionFacts,
    LatestCandidate,
    SourceFacts,
    VersionNumber,
)

SUB = "/subscriptions/0f3d0000-0000-0000-0000-000000000001/resourceGroups/rg/providers"
IMAGE = f"{SUB}/Microsoft.Compute/images/img"
DISK = f"{SUB}/Microsoft.Compute/disks/d1"
DISK2 = f"{SUB}/Microsoft.Compute/disks/d2"
SNAP = f"{SUB}/Microsoft.Compute/snapshots/s1"
VERSION = f"{SUB}/Microsoft.Compute/galleries/g/images/def/versions/1.0.0"
VM = f"{SUB}/Microsoft.Compute/virtualMachines/vm1"
REGIONS = ("eastus", "westus", "westeurope")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1.0.0", (1, 0, 0)),
        ("2018.12.1", (2018, 12, 1)),
        ("0.0.0", (0, 0, 0)),
        ("2147483647.2147483647.2147483647", (2**31 - 1,) * 3),
        ("01.2.3", (1, 2, 3)),
    ],
)
def test_version_names_that_parse(name: str, expected: tuple[int, int, int]) -> None:
    assert VersionNumber.parse(name) == VersionNumber(*expected)


@pytest.mark.parametrize(
    "name",
    [
        "1.0",
        "1.0.0.0",
        "latest",
        "1.0.x",
        "-1.0.0",
        "1.0.0-rc1",
        "",
        "1..0",
        " 1.0.0",
        "2147483648.0.0",
        "1.0.4294967296",
        "\u0661.\u0662.\u0663",  # Arabic-Indic digits: isdigit() but not ASCII
    ],
)
def test_version_names_that_do_not(name: str) -> None:
    with pytest.raises(InvalidParameter, match=r"Major\(int\)\.Minor\(int\)\.Patch\(int\)"):
        VersionNumber.parse(name)


def test_versions_order_numerically_not_as_text() -> None:
    names = ["1.10.0", "1.9.0", "1.2.10", "1.2.9", "10.0.0", "2.0.0"]
    ordered = sorted(names, key=VersionNumber.parse)
    assert ordered == ["1.2.9", "1.2.10", "1.9.0", "1.10.0", "2.0.0", "10.0.0"]


def _regions(**kw: object) -> tuple[gv.TargetRegion, ...]:
    args: dict[str, object] = {
        "location": "eastus",
        "target_regions": None,
        "replica_count": None,
        "storage_account_type": None,
        "known_regions": REGIONS,
    }
    args.update(kw)
    return gv.resolve_target_regions(**args)  # type: ignore[arg-type]


def test_no_target_regions_means_the_source_region_with_defaults() -> None:
    (only,) = _regions()
    assert (only.name, only.regional_replica_count, only.storage_account_type) == (
        "eastus",
        1,
        "Standard_LRS",
    )


def test_profile_defaults_fill_each_region_and_region_values_win() -> None:
    regions = _regions(
        location="East US",
        replica_count=2,
        storage_account_type="standard_zrs",
        target_regions=[
            R(name="East US"),
            R(name="westus", regional_replica_count=3, storage_account_type="Premium_LRS"),
        ],
    )
    assert [(r.key, r.regional_replica_count, r.storage_account_type) for r in regions] == [
        ("eastus", 2, "Standard_ZRS"),
        ("westus", 3, "Premium_LRS"),
    ]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"target_regions": [R(name="westus")]}, "must contain the location of image version"),
        (
            {"target_regions": [R(name="eastus"), R(name="East US")]},
            "Duplicate regions are not allowed",
        ),
        ({"target_regions": [R(name="eastus"), R(name="mars")]}, "is not available"),
        ({"target_regions": [R(name="eastus", regional_replica_count=0)]}, "out of range"),
        ({"target_regions": [R(name="eastus", regional_replica_count=101)]}, "out of range"),
        ({"replica_count": 0}, "out of range"),
        ({"storage_account_type": "UltraSSD_LRS"}, "is not allowed"),
        (
            {"target_regions": [R(name="eastus", storage_account_type="StandardSSD_LRS")]},
            "is not allowed",
        ),
        ({"target_regions": [R(regional_replica_count=1)]}, "is missing"),
    ],
)
def test_target_region_rules(kw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        _regions(**kw)


@pytest.mark.parametrize(
    ("source_id", "os_disk", "data", "message"),
    [
        (None, None, [], "One and only one source type"),
        (IMAGE, DiskImageSpec(None, DISK), [], "One and only one source type"),
        (DISK, None, [], "must either be a managed image, virtual machine or another gallery"),
        ("not-an-id", None, [], "Expect fully qualified resource Id"),
        (None, DiskImageSpec(None, IMAGE), [], "must be a managed disk or snapshot"),
        (None, DiskImageSpec(None, DISK), [DiskImageSpec(0, DISK)], "cannot point to same blob"),
        (
            None,
            DiskImageSpec(None, DISK),
            [DiskImageSpec(0, SNAP), DiskImageSpec(0, DISK2)],
            "Duplicated lun numbers",
        ),
        (
            None,
            DiskImageSpec(None, DISK),
            [DiskImageSpec(0, SNAP), DiskImageSpec(1, SNAP.upper())],
            "Duplicated source ids",
        ),
        (None, None, [DiskImageSpec(0, SNAP)], "osDiskImage.source.id' is missing"),
    ],
)
def test_storage_profile_shape_rules(
    source_id: str | None,
    os_disk: DiskImageSpec | None,
    data: list[DiskImageSpec],
    message: str,
) -> None:
    with pytest.raises(InvalidParameter, match=message):
        gv.check_storage_profile(source_id=source_id, os_disk_image=os_disk, data_disk_images=data)


@pytest.mark.parametrize(
    ("source_id", "os_disk", "data"),
    [
        (IMAGE, None, []),
        (VERSION, None, []),
        (VM, None, []),
        (None, DiskImageSpec(None, DISK), []),
        (None, DiskImageSpec(None, SNAP), [DiskImageSpec(0, DISK2), DiskImageSpec(3, DISK)]),
    ],
)
def test_storage_profiles_that_are_well_formed(
    source_id: str | None, os_disk: DiskImageSpec | None, data: list[DiskImageSpec]
) -> None:
    gv.check_storage_profile(source_id=source_id, os_disk_image=os_disk, data_disk_images=data)


GEN2_LINUX_GENERALIZED = DefinitionFacts(
    os_type="Linux", os_state="Generalized", hyper_v_generation="V2"
)


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        (("Linux", "Specialized", "V2"), r"different OS state \['Specialized'\] than the parent"),
        (("Linux", "Generalized", "V1"), r"different Hypervisor generation \['V1'\]"),
        (("Linux", "Generalized", None), r"different Hypervisor generation \['V1'\]"),
        (("Windows", "Generalized", "V2"), r"different OS type \['Windows'\]"),
    ],
)
def test_source_must_match_definition(
    facts: tuple[str | None, str | None, str | None], message: str
) -> None:
    source = SourceFacts(IMAGE, "eastus", *facts)
    with pytest.raises(BadRequest, match=message) as info:
        gv.check_source_matches_definition(source, GEN2_LINUX_GENERALIZED)
    assert info.value.code == "BadRequest"


@pytest.mark.parametrize(
    "facts",
    [("Linux", "Generalized", "V2"), ("linux", "generalized", "v2"), (None, None, "V2")],
)
def test_sources_that_match(facts: tuple[str | None, str | None, str | None]) -> None:
    gv.check_source_matches_definition(SourceFacts(DISK, "eastus", *facts), GEN2_LINUX_GENERALIZED)


def test_source_must_be_in_the_version_region() -> None:
    gv.check_source_location(SourceFacts(DISK, "East US", None, None, None), "eastus")
    with pytest.raises(InvalidParameter, match="is in the same region"):
        gv.check_source_location(SourceFacts(DISK, "westus", None, None, None), "eastus")


def _cand(
    name: str,
    *,
    provisioned: bool = True,
    excluded: bool = False,
    regions: dict[str, tuple[bool, bool]] | None = None,
) -> LatestCandidate:
    return LatestCandidate(
        name=name,
        provisioned=provisioned,
        exclude_from_latest=excluded,
        regions=regions if regions is not None else {"eastus": (False, True)},
    )


DEF_ID = f"{SUB}/Microsoft.Compute/galleries/g/images/def"


@pytest.mark.parametrize(
    ("candidates", "region", "expected"),
    [
        ([_cand("1.0.0"), _cand("1.2.0"), _cand("1.10.0")], None, "1.10.0"),
        ([_cand("1.0.0"), _cand("2.0.0", excluded=True)], None, "1.0.0"),
        ([_cand("1.0.0"), _cand("2.0.0", provisioned=False)], None, "1.0.0"),
        (
            [
                _cand("1.0.0", regions={"eastus": (False, True), "westus": (False, True)}),
                _cand("2.0.0", regions={"eastus": (False, True), "westus": (True, True)}),
            ],
            "West US",
            "1.0.0",
        ),
        (
            [
                _cand("1.0.0", regions={"eastus": (False, True), "westus": (False, True)}),
                _cand("2.0.0", regions={"eastus": (False, True), "westus": (True, True)}),
            ],
            "eastus",
            "2.0.0",
        ),
        (
            [
                _cand("1.0.0", regions={"eastus": (False, True), "westus": (False, True)}),
                _cand("2.0.0", regions={"eastus": (False, True), "westus": (False, False)}),
            ],
            "westus",
            "1.0.0",
        ),
        ([_cand("3.0.0"), _cand("2.99.99")], "eastus", "3.0.0"),
    ],
)
def test_latest(candidates: list[LatestCandidate], region: str | None, expected: str) -> None:
    assert gv.select_latest(candidates, definition_id=DEF_ID, region=region).name == expected


@pytest.mark.parametrize(
    ("candidates", "region", "message"),
    [
        ([], None, "There is no latest image version exists for"),
        ([_cand("1.0.0", excluded=True)], None, "There is no latest image version exists for"),
        ([_cand("1.0.0", provisioned=False)], None, "There is no latest image version"),
        ([_cand("1.0.0")], "westus", "is not available in westus region"),
    ],
)
def test_no_latest(candidates: list[LatestCandidate], region: str | None, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        gv.select_latest(candidates, definition_id=DEF_ID, region=region)


NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("block", "eol", "allowed"),
    [
        (False, None, True),
        (False, NOW + timedelta(days=30), True),
        (True, NOW - timedelta(seconds=1), True),
        (True, NOW + timedelta(days=1), False),
        (True, None, False),
    ],
)
def test_block_deletion_before_end_of_life(
    block: bool, eol: datetime | None, allowed: bool
) -> None:
    if allowed:
        gv.check_deletable(block_before_end_of_life=block, end_of_life=eol, now=NOW)
        return
    with pytest.raises(PlatformError) as info:
        gv.check_deletable(block_before_end_of_life=block, end_of_life=eol, now=NOW)
    assert info.value.code == "DeleteGalleryImageVersionBlockedBeforeEndOfLife"


def _version(name: str, *, updating: bool, states: dict[str, str]) -> model.GalleryImageVersion:
    from azimg.platform.resources import replication as rp
    from azimg.platform.store.metadata import BlobRef

    disk = model.SourceDisk(lun=None, blob=BlobRef("eastus", "src"), size=1024)
    replicas = tuple(
        rp.Replica(
            region=region,
            index=0,
            disks=(rp.DiskCopy(None, disk.blob, BlobRef(region, f"{name}-{region}"), 1024),),
            state=rp.ReplicaState(state),
            copied=1024 if state == "Completed" else 0,
        )
        for region, state in states.items()
    )
    return model.GalleryImageVersion(
        id=f"{DEF_ID}/versions/{name}",
        name=name,
        location="eastus",
        target_regions=tuple(gv.TargetRegion(r, 1, "Standard_LRS") for r in states),
        replica_count=1,
        storage_account_type="Standard_LRS",
        replication_mode="Full",
        exclude_from_latest=False,
        end_of_life_date=None,
        published_date="2026-01-01T00:00:00+00:00",
        source_id=None,
        disks=(disk,),
        replicas=replicas,
        updating=updating,
    )


def test_a_version_gaining_a_region_stays_latest_where_it_is_replicated() -> None:
    old = _version("1.0.0", updating=False, states={"eastus": "Completed", "westus": "Completed"})
    growing = _version("2.0.0", updating=True, states={"eastus": "Completed", "westus": "Queued"})
    assert growing.provisioning_state == "Updating"
    candidates = model.latest_candidates([old, growing])
    assert gv.select_latest(candidates, definition_id=DEF_ID).name == "2.0.0"
    assert gv.select_latest(candidates, definition_id=DEF_ID, region="eastus").name == "2.0.0"
    assert gv.select_latest(candidates, definition_id=DEF_ID, region="westus").name == "1.0.0"
    creating = _version("3.0.0", updating=False, states={"eastus": "Queued"})
    assert creating.provisioning_state == "Creating"
    assert (
        gv.select_latest(model.latest_candidates([old, creating]), definition_id=DEF_ID).name
        == "1.0.0"
    )
