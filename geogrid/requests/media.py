"""Photos of requests: which are accepted, what is kept of them, and who may see them.

Only JPEG, PNG and WebP are accepted, and only when their first bytes say so: the type an
uploader declares is never trusted alone, since an SVG or an HTML body declared as ``image/…``
and served back would run script on the API's origin. Before a photo is stored, every block
that can carry a location (or other personal metadata) is cut out **without re-encoding the
image**: the pixels are the uploader's, byte for byte.

* JPEG (ITU T.81 / JFIF): the segments before the first scan are walked; APP1 (Exif, with its
  GPS IFD, and XMP), APP13 (Photoshop IRB / IPTC, which has location fields) and COM are
  dropped. The Exif orientation alone is kept, as a minimal Exif block of one tag, so phone
  photos still show upright.
* PNG (ISO/IEC 15948): the ``eXIf``, ``tEXt``, ``zTXt`` and ``iTXt`` (XMP) chunks are dropped.
* WebP (RIFF container, Google's "WebP Container Specification"): the ``EXIF`` and ``XMP ``
  chunks are dropped and their flags cleared in ``VP8X``.

A file that does not parse as its type is refused with the byte offset of the fault.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from geogrid.errors import InvalidInput

__all__ = [
    "ACCEPTED_TYPES",
    "MAX_BYTES_PER_CALL",
    "MAX_PHOTOS_PER_CALL",
    "Photo",
    "check_photos",
    "clean_photo",
    "declared_type",
    "sniff",
]

#: Declared type → file extension, for the three formats accepted.
ACCEPTED_TYPES: Final = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
#: At most this many photos in one API call (an intake or an action) …
MAX_PHOTOS_PER_CALL: Final = 5
#: … and at most this many decoded bytes of photos in all.
MAX_BYTES_PER_CALL: Final = 10_000_000


@dataclass(frozen=True)
class Photo:
    """An uploaded photo (bytes) with its declared type."""

    data: bytes
    content_type: str = "image/jpeg"
    filename: str | None = None

    @classmethod
    def from_base64(cls, item: Mapping[str, Any], *, field: str) -> Photo:
        """A photo given in JSON as ``{"data": base64, "content_type", "filename"}``."""
        if not isinstance(item, Mapping) or not isinstance(item.get("data"), str):
            raise InvalidInput(f"{field} must be an object with base64 data", field=field)
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{field}.data is not valid base64", field=f"{field}.data") from None
        return cls(data, str(item.get("content_type") or "image/jpeg"), item.get("filename"))


def sniff(data: bytes) -> str | None:
    """The type the bytes say they are (by their signature), or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class _Malformed(ValueError):
    """The bytes do not parse as the format they start like (message: what, where)."""


# --- JPEG ------------------------------------------------------------------------------------

#: Segments dropped: APP1 (Exif, XMP), APP13 (Photoshop IRB / IPTC), COM (comments).
_JPEG_DROP: Final = {0xE1, 0xED, 0xFE}
_EXIF: Final = b"Exif\x00\x00"
_ORIENTATION_TAG: Final = 0x0112


def _exif_orientation(payload: bytes) -> int | None:
    """The orientation (1–8) in an APP1 Exif payload's first IFD, if it has one."""
    tiff = payload[len(_EXIF) :]
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if len(entry) < 12:
            return None
        tag, kind, n = struct.unpack(order + "HHI", entry[:8])
        if tag == _ORIENTATION_TAG and kind == 3 and n == 1:  # one SHORT
            (value,) = struct.unpack(order + "H", entry[8:10])
            return value if 1 <= value <= 8 else None
    return None


def _orientation_segment(orientation: int) -> bytes:
    """An APP1 Exif segment holding nothing but the orientation (big-endian TIFF, one IFD)."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8)
    tiff += struct.pack(">H", 1) + struct.pack(">HHIHH", _ORIENTATION_TAG, 3, 1, orientation, 0)
    tiff += struct.pack(">I", 0)  # no next IFD
    payload = _EXIF + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _clean_jpeg(data: bytes) -> bytes:
    out = bytearray(data[:2])  # SOI
    pos = 2
    orientation: int | None = None
    while True:
        if pos >= len(data) or data[pos] != 0xFF:
            raise _Malformed(f"no JPEG marker at byte {pos}")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= len(data):
            raise _Malformed(f"the file ends inside a marker at byte {pos}")
        marker = data[pos]
        start = pos - 1
        if marker == 0xD9:  # EOI before any scan: no image
            raise _Malformed(f"the image ends before its first scan (byte {start})")
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length
            out += data[start : pos + 1]
            pos += 1
            continue
        if pos + 3 > len(data):
            raise _Malformed(f"segment at byte {start} is cut off")
        (length,) = struct.unpack(">H", data[pos + 1 : pos + 3])
        end = pos + 1 + length
        if length < 2 or end > len(data):
            raise _Malformed(f"segment at byte {start} runs past the end of the file")
        if marker == 0xDA:  # start of scan: the rest is image data, kept as it is
            if orientation not in (None, 1):
                out += _orientation_segment(orientation)
            out += data[start:]
            return bytes(out)
        if marker in _JPEG_DROP:
            payload = data[pos + 3 : end]
            if marker == 0xE1 and payload.startswith(_EXIF):
                orientation = _exif_orientation(payload) or orientation
        else:
            out += data[start:end]
        pos = end


# --- PNG -------------------------------------------------------------------------------------

_PNG_DROP: Final = {b"eXIf", b"tEXt", b"zTXt", b"iTXt"}


def _clean_png(data: bytes) -> bytes:
    out = bytearray(data[:8])
    pos = 8
    first = True
    while pos < len(data):
        if pos + 12 > len(data):
            raise _Malformed(f"PNG chunk at byte {pos} is cut off")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise _Malformed(f"PNG chunk {kind!r} at byte {pos} runs past the end of the file")
        if first and kind != b"IHDR":
            raise _Malformed("a PNG must start with its IHDR chunk")
        first = False
        if kind not in _PNG_DROP:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)
    raise _Malformed("the PNG has no IEND chunk")


# --- WebP ------------------------------------------------------------------------------------

_WEBP_DROP: Final = {b"EXIF", b"XMP "}
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def _clean_webp(data: bytes) -> bytes:
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 > len(data) or riff_size < 4:
        raise _Malformed("the WebP's RIFF size runs past the end of the file")
    body = bytearray()
    pos, stop = 12, riff_size + 8
    while pos < stop:
        if pos + 8 > stop:
            raise _Malformed(f"WebP chunk at byte {pos} is cut off")
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + size + (size & 1)  # chunks are padded to an even size
        if pos + 8 + size > stop:
            raise _Malformed(f"WebP chunk {kind!r} at byte {pos} runs past the end of the file")
        chunk = bytearray(data[pos:end])
        if kind == b"VP8X" and size >= 1:
            chunk[8] &= ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
        if kind not in _WEBP_DROP:
            body += chunk
        pos = end
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + bytes(body)


_CLEANERS: Final = {"image/jpeg": _clean_jpeg, "image/png": _clean_png, "image/webp": _clean_webp}


def declared_type(content_type: str) -> str:
    """The media type an uploader declared, without parameters: ``image/JPEG; q=1`` →
    ``image/jpeg``."""
    return content_type.split(";", 1)[0].strip().lower()


def clean_photo(data: bytes, content_type: str, *, field: str = "photo") -> bytes:
    """``data`` checked to be the ``content_type`` it is declared as, minus its metadata.

    Raises :class:`InvalidInput` (422) for another type, bytes that are another format, or a
    file that does not parse.
    """
    declared = declared_type(content_type)
    if declared not in ACCEPTED_TYPES:
        raise InvalidInput(
            f"{field} must be a JPEG, PNG or WebP photo (image/jpeg, image/png, image/webp), "
            f"not {content_type!r}",
            field=field,
        )
    actual = sniff(data)
    if actual != declared:
        raise InvalidInput(
            f"{field} is declared {declared} but its bytes are "
            f"{'not an image geogrid accepts' if actual is None else actual}",
            field=field,
        )
    try:
        return _CLEANERS[declared](data)
    except (_Malformed, struct.error) as exc:
        raise InvalidInput(f"{field} is not a valid {declared} file: {exc}", field=field) from None


def check_photos(photos: Sequence[Photo], *, max_photo_bytes: int, field: str) -> list[Photo]:
    """The photos of one API call, checked and cleaned (the limits are in docs/api.md)."""
    if len(photos) > MAX_PHOTOS_PER_CALL:
        raise InvalidInput(
            f"{field} has {len(photos)} photos; at most {MAX_PHOTOS_PER_CALL} per call",
            field=field,
        )
    total = sum(len(p.data) for p in photos)
    if total > MAX_BYTES_PER_CALL:
        raise InvalidInput(
            f"{field} hold {total:,} bytes; at most {MAX_BYTES_PER_CALL:,} per call", field=field
        )
    cleaned = []
    for i, p in enumerate(photos):
        where = f"{field}[{i}]"
        if not p.data:
            raise InvalidInput(f"{where} is empty", field=where)
        if len(p.data) > max_photo_bytes:
            raise InvalidInput(
                f"{where} is {len(p.data):,} bytes; at most {max_photo_bytes:,}", field=where
            )
        data = clean_photo(p.data, p.content_type, field=where)
        cleaned.append(Photo(data, declared_type(p.content_type), p.filename))
    return cleaned
