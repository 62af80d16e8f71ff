"""Photos of requests: only real JPEG, PNG and WebP, stripped of their location, never run as
a page, and seen by whom their request allows (issue: "script injection through photos").

Pillow makes the photos (with Exif GPS, XMP, text chunks) and reads geogrid's output back as
the reference: the image must decode to the same pixels, with no location left.
"""

from __future__ import annotations

import base64
import io
from fractions import Fraction
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Engine, func, select

from geogrid import audit
from geogrid.access import Actor
from geogrid.db import migrate
from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.db.engine import make_engine
from geogrid.errors import InvalidInput
from geogrid.requests.media import (
    MAX_BYTES_PER_CALL,
    Photo,
    check_photos,
    clean_photo,
    sniff,
)
from geogrid.requests.workflow import Intake, receive
from tests.requests_factories import IN_FIELD, file_request, make_world, new_key

GPS_IFD = 0x8825
#: 31°13'59.99" N, a latitude no test writes anywhere else, as Exif rationals.
LATITUDE = (Fraction(31), Fraction(13), Fraction(5999, 100))
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b"<exif:GPSLatitude>31,13.9998N</exif:GPSLatitude></x:xmpmeta>"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"/>'
HTML = b"<html><script>fetch('/v1/keys')</script></html>"


def _exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: LATITUDE, 3: "E", 4: (Fraction(121), Fraction(28), Fraction(617, 50))})
    return exif


def _image() -> Image.Image:
    image = Image.new("RGB", (48, 32))
    for x in range(48):
        for y in range(32):
            image.putpixel((x, y), (x * 5, y * 7, (x + y) * 3))
    return image


def make_photo(kind: str) -> bytes:
    """A small photo of ``kind`` carrying a GPS position in every place its format allows."""
    buffer = io.BytesIO()
    image = _image()
    if kind == "jpeg":
        image.save(buffer, "JPEG", exif=_exif(orientation=6), xmp=XMP, quality=90)
    elif kind == "png":
        info = PngImagePlugin.PngInfo()
        info.add_text("Location", "31.2333N 121.4667E")
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        image.save(buffer, "PNG", exif=_exif(), pnginfo=info)
    else:
        image.save(buffer, "WEBP", exif=_exif(), xmp=XMP, lossless=True)
    return buffer.getvalue()


def _has_location(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        gps = exif.get_ifd(GPS_IFD)
        return bool(gps) or b"GPSLatitude" in data or b"31.2333N" in data or GPS_IFD in exif


@pytest.mark.parametrize("kind", ["jpeg", "png", "webp"])
def test_location_is_stripped_and_the_image_kept(kind: str) -> None:
    original = make_photo(kind)
    assert _has_location(original)  # the fixture really carries one
    cleaned = clean_photo(original, f"image/{kind}")
    assert not _has_location(cleaned)
    assert sniff(cleaned) == f"image/{kind}"
    with Image.open(io.BytesIO(original)) as before, Image.open(io.BytesIO(cleaned)) as after:
        assert after.format == before.format and after.size == before.size
        assert after.convert("RGB").tobytes() == before.convert("RGB").tobytes()
        if kind == "jpeg":  # the orientation alone survives, so the photo shows upright
            assert dict(after.getexif()) == {0x0112: 6}
    assert len(cleaned) < len(original)


def test_a_photo_without_metadata_is_kept_byte_for_byte() -> None:
    buffer = io.BytesIO()
    _image().save(buffer, "PNG")
    assert clean_photo(buffer.getvalue(), "image/png") == buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "declared", "message"),
    [
        (SVG, "image/svg+xml", "must be a JPEG, PNG or WebP photo"),
        (HTML, "image/x, text/html", "must be a JPEG, PNG or WebP photo"),
        (HTML, "image/png", "declared image/png but its bytes are not an image"),
        (SVG, "image/jpeg", "declared image/jpeg but its bytes are not an image"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif", "must be a JPEG, PNG or WebP photo"),
        ("jpeg", "image/png", "declared image/png but its bytes are image/jpeg"),
        ("jpeg-cut", "image/jpeg", "not a valid image/jpeg file: segment at byte"),
        ("png-cut", "image/png", "not a valid image/png file: PNG chunk"),
    ],
)
def test_anything_but_a_real_photo_is_refused(data: Any, declared: str, message: str) -> None:
    if data == "jpeg":
        data = make_photo("jpeg")
    elif data == "jpeg-cut":
        data = make_photo("jpeg")[:40]
    elif data == "png-cut":
        data = make_photo("png")[:60]
    with pytest.raises(InvalidInput, match=message) as caught:
        clean_photo(data, declared, field="photos[2]")
    assert caught.value.field == "photos[2]"


def test_limits_per_call() -> None:
    one = Photo(make_photo("png"), "image/png")
    assert len(check_photos([one] * 5, max_photo_bytes=5_000_000, field="photos")) == 5
    with pytest.raises(InvalidInput, match="has 6 photos; at most 5 per call"):
        check_photos([one] * 6, max_photo_bytes=5_000_000, field="photos")
    big = Photo(b"\x89PNG\r\n\x1a\n" + b"\0" * 4_000_000, "image/png")
    with pytest.raises(InvalidInput, match=f"at most {MAX_BYTES_PER_CALL:,} per call"):
        check_photos([big] * 3, max_photo_bytes=5_000_000, field="photos")


# --- through the API ------------------------------------------------------------------------


def _file(client: TestClient, key: str, category: str, photo: bytes, kind: str) -> Any:
    photos = [{"data": base64.b64encode(photo).decode(), "content_type": kind}]
    return file_request(client, key, category=category, photos=photos)


def test_a_script_in_a_photo_is_refused_and_nothing_written(
    client: TestClient, engine: Engine
) -> None:
    key = new_key(engine, "public", name="hotline app")
    for body, kind in ((SVG, "image/svg+xml"), (HTML, "image/x, text/html"), (HTML, "image/png")):
        r = _file(client, key, "sewer_blocked", body, kind)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "photos[0]"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(m.Request)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(m.RequestMedia)).scalar() == 0


def test_photos_are_served_stripped_and_never_as_a_page(client: TestClient, engine: Engine) -> None:
    key = new_key(engine, "public", name="hotline app")
    r = _file(client, key, "sewer_blocked", make_photo("jpeg"), "image/jpeg")
    assert r.status_code == 201, r.text
    url = r.json()["media"][0]["url"]
    photo = client.get(url)  # no key: a public request's photo is public
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["x-content-type-options"] == "nosniff"
    assert photo.headers["content-security-policy"] == "default-src 'none'; sandbox"
    media_id = r.json()["media"][0]["id"]
    assert photo.headers["content-disposition"] == (
        f'inline; filename="request-photo-{media_id}.jpg"'
    )
    assert photo.headers["cache-control"] == "public, max-age=86400"
    assert not _has_location(photo.content)


def test_a_care_request_s_photo_is_only_for_its_scope(client: TestClient, engine: Engine) -> None:
    with engine.begin() as conn:  # community B, elsewhere
        q.insert_returning_ids(
            conn,
            m.Community,
            [
                {
                    "code": "441302011098",
                    "name": "另一社区",
                    "boundary": q.geom_value(MultiPolygon([box(100.0, 30.0, 100.1, 30.1)])),
                    "created_at": m.utcnow(),
                }
            ],
        )
    official = new_key(engine, "official", community_code="441302011099")
    other = new_key(engine, "official", community_code="441302011098")
    public_key = new_key(engine, "public", name="hotline app")
    r = _file(client, official, "elderly_care", make_photo("png"), "image/png")
    assert r.status_code == 201, r.text
    rid, url = r.json()["id"], r.json()["media"][0]["url"]
    for headers in ({}, {"X-API-Key": public_key}, {"X-API-Key": other}):
        assert client.get(url, headers=headers).status_code == 404
        assert client.get(f"/v1/requests/{rid}", headers=headers).status_code == 404
    seen = client.get(url, headers={"X-API-Key": official})
    assert seen.status_code == 200 and seen.headers["cache-control"] == "private, no-store"
    # Open311 is public: the care request is not listed at all.
    listed = client.get("/open311/v2/requests.json").json()
    assert str(rid) not in [i["service_request_id"] for i in listed]


def test_links_are_shown_never_redirected_to(client: TestClient, engine: Engine) -> None:
    key = new_key(engine, "public", name="hotline app")
    link = "https://evil.example/phish"
    r = file_request(client, key, media_urls=[link])
    assert r.status_code == 201, r.text
    media = r.json()["media"][0]
    assert media["url"] == link  # shown as the link it is
    answer = client.get(f"/v1/media/{media['id']}", follow_redirects=False)
    assert answer.status_code == 404 and "location" not in answer.headers
    assert "media_url" in answer.json()["error"]["message"]


# --- photos stored before the checks (migration 0006) ---------------------------------------


def test_migration_strips_old_photos_and_quarantines_what_fails(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(db_url)
    # The request is filed at schema 0005, before the audit log (0011) exists.
    monkeypatch.setattr(audit, "record", lambda *a, **k: None)
    try:
        migrate.downgrade(engine, "0005")
        # request_media as it was at 0005: no quarantined column.
        old_media = sa.table(
            "request_media",
            *(sa.column(c) for c in ("request_id", "content_type", "data", "size", "sha256")),
            sa.column("created_at", m.UTCDateTime),
        )
        with engine.begin() as conn:
            make_world(conn)
            rid = receive(
                conn,
                Intake(category="sewer_blocked", lon=IN_FIELD[0], lat=IN_FIELD[1]),
                actor=Actor.system("test"),
            ).request_id
            for content_type, data in (
                ("image/jpeg", make_photo("jpeg")),
                ("image/svg+xml", SVG),
                ("image/png", HTML),
            ):
                conn.execute(
                    sa.insert(old_media).values(
                        request_id=rid,
                        content_type=content_type,
                        data=data,
                        size=len(data),
                        sha256="old",
                        created_at=m.utcnow(),
                    )
                )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rm = m.RequestMedia
            jpeg, svg, html = conn.execute(
                select(rm.data, rm.quarantined, rm.sha256, rm.size).order_by(rm.id)
            ).all()
        assert not jpeg.quarantined and not _has_location(bytes(jpeg.data))
        assert jpeg.sha256 != "old" and jpeg.size == len(jpeg.data)
        assert svg.quarantined and html.quarantined
        assert bytes(svg.data) == SVG  # kept as it was, never served inline again
    finally:
        engine.dispose()


def test_a_quarantined_photo_is_only_an_attachment(client: TestClient, engine: Engine) -> None:
    key = new_key(engine, "public", name="hotline app")
    r = _file(client, key, "sewer_blocked", make_photo("png"), "image/png")
    media_id = r.json()["media"][0]["id"]
    with engine.begin() as conn:  # as migration 0006 leaves a photo that failed its check
        conn.execute(
            sa.update(m.RequestMedia)
            .where(m.RequestMedia.id == media_id)
            .values(data=SVG, content_type="image/svg+xml", quarantined=True)
        )
    answer = client.get(f"/v1/media/{media_id}")
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["content-security-policy"] == "default-src 'none'; sandbox"
