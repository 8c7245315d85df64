"""Pure rules of galleries and image definitions: names, identifiers, dates, recommendations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from azimg.platform.errors import InvalidParameter, InvalidResourceName, PlatformError
from azimg.platform.resources import galleries, gallery_images
from azimg.platform.resources.gallery_images import Identifier, Range, Recommended

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", ["g", "gallery1", "my_gallery.v2", "A" * 80, "a.b_c"])
def test_gallery_names_allowed(name: str) -> None:
    galleries.check_gallery_name(name)


@pytest.mark.parametrize(
    ("name", "error", "text"),
    [
        ("has-hyphen", InvalidParameter, "including dashes, are disallowed"),
        ("_lead", InvalidParameter, "periods allowed in the middle"),
        (".lead", InvalidParameter, "periods allowed in the middle"),
        ("trail.", InvalidResourceName, "invalid trailing characters: '.'"),
        ("trail_", InvalidResourceName, "invalid trailing characters: '_'"),
        ("A" * 81, InvalidParameter, "up to 80 characters"),
        ("", InvalidParameter, "Gallery name is invalid"),
        ("sp ace", InvalidParameter, "Gallery name is invalid"),
    ],
)
def test_gallery_names_refused(name: str, error: type[PlatformError], text: str) -> None:
    with pytest.raises(error, match=text):
        galleries.check_gallery_name(name)


def test_unique_name_is_subscription_and_upper_cased_name() -> None:
    sub = "0f3d0000-0000-0000-0000-000000000001"
    assert galleries.unique_name(sub, "myGallery.v2") == f"{sub}-MYGALLERY.V2"


@pytest.mark.parametrize("name", ["debian-12", "a", "x_y.z", "img_", "a" * 80])
def test_definition_names_allowed(name: str) -> None:
    gallery_images.check_image_name(name)


@pytest.mark.parametrize("name", ["_x", "-x", "x-", "x.", "a" * 81, "a b", "ä!"])
def test_definition_names_refused(name: str) -> None:
    with pytest.raises(InvalidResourceName, match="invalid according to its validation rule"):
        gallery_images.check_image_name(name)


def test_identifier_accepts_the_allowed_alphabet() -> None:
    ident = Identifier("Canonical.Ltd_x-1", "o" * 64, "22_04-lts-gen2")
    assert gallery_images.check_identifier(ident) == (
        "Canonical.Ltd_x-1",
        "o" * 64,
        "22_04-lts-gen2",
    )


@pytest.mark.parametrize(
    ("ident", "text"),
    [
        (None, "identifier' is missing"),
        ({"publisher": "", "offer": "o", "sku": "s"}, "identifier.publisher is not valid"),
        ({"publisher": "p", "offer": "o/x", "sku": "s"}, "identifier.offer is not valid"),
        ({"publisher": "p", "offer": "o", "sku": "s."}, "identifier.sku is not valid"),
        ({"publisher": "p" * 129, "offer": "o", "sku": "s"}, "cannot exceed 128"),
        ({"publisher": "p", "offer": "o" * 65, "sku": "s"}, "cannot exceed 64"),
        ({"publisher": "p", "offer": "o"}, "identifier.sku is not valid"),
    ],
)
def test_identifier_rules(ident: dict[str, str] | None, text: str) -> None:
    with pytest.raises(InvalidParameter, match=text):
        gallery_images.check_identifier(None if ident is None else Identifier(**ident))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("2027-01-01", "2027-01-01T00:00:00+00:00"),
        ("2026-06-01T13:00:00Z", "2026-06-01T13:00:00+00:00"),
        ("2026-06-01T14:00:01+02:00", "2026-06-01T12:00:01+00:00"),
    ],
)
def test_end_of_life_in_the_future(value: str | None, expected: str | None) -> None:
    assert gallery_images.check_end_of_life(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("2020-01-01", "future date"),
        ("2026-06-01T14:00:00+02:00", "future date"),  # exactly now is not the future
        ("not a date", "Could not convert string to DateTimeOffset"),
    ],
)
def test_end_of_life_refused(value: str, text: str) -> None:
    with pytest.raises(InvalidParameter, match=text):
        gallery_images.check_end_of_life(value, now=NOW)


@pytest.mark.parametrize(
    "recommended",
    [
        None,
        Recommended(),
        Recommended(v_cpus=Range(2, 2)),
        Recommended(memory=Range(min=1)),
        Recommended(v_cpus=Range(max=4)),
    ],
)
def test_recommended_allowed(recommended: Recommended | None) -> None:
    gallery_images.check_recommended(recommended)


@pytest.mark.parametrize(
    ("recommended", "text"),
    [
        (Recommended(v_cpus=Range(4, 2)), "minimum value of vCPUs"),
        (Recommended(memory=Range(64, 32)), "minimum value of memory"),
    ],
)
def test_recommended_refused(recommended: Recommended, text: str) -> None:
    with pytest.raises(InvalidParameter, match=text):
        gallery_images.check_recommended(recommended)
