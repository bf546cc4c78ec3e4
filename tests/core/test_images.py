from __future__ import annotations

import io
import struct
import zlib

import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from core import images
from tests.memberships.conftest import image_bytes


def process(data: bytes, variant: images.Variant = images.THUMBNAIL) -> images.ProcessedImage:
    return images.process_image(io.BytesIO(data), size=len(data), variant=variant)


def refusal(data: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        process(data)
    return caught.value.messages[0]


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims to be ``width`` by ``height``: the classic decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_jpeg_png_and_webp_are_accepted_and_stored_as_webp(fmt: str) -> None:
    result = process(image_bytes(fmt, size=(900, 700)))
    stored = Image.open(io.BytesIO(result.content))
    assert stored.format == "WEBP"
    assert stored.size == (600, 600)  # the thumbnail is cropped to the square the page shows


def test_a_cover_is_shrunk_to_fit_and_never_enlarged() -> None:
    big = Image.open(io.BytesIO(process(image_bytes(size=(4000, 1000)), images.COVER).content))
    small = Image.open(io.BytesIO(process(image_bytes(size=(800, 300)), images.COVER).content))
    assert big.size == (1920, 480)
    assert small.size == (800, 300)


def test_exif_orientation_is_applied_and_metadata_is_stripped() -> None:
    picture = Image.new("RGB", (400, 200), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    exif[0x010F] = "SpyCam"  # camera maker
    out = io.BytesIO()
    picture.save(out, format="JPEG", exif=exif)
    result = process(out.getvalue(), images.COVER)
    stored = Image.open(io.BytesIO(result.content))
    assert stored.size == (200, 400)
    assert not stored.getexif()
    assert b"SpyCam" not in result.content


def test_a_decompression_bomb_is_refused_before_it_is_decoded() -> None:
    assert refusal(png_header_only(60_000, 60_000)) == "The image has far too many pixels; the most is 25 megapixels."
    assert refusal(png_header_only(7_000, 7_000)).startswith("The image is 7000 by 7000 pixels")


def test_a_30_megapixel_png_is_refused() -> None:
    message = refusal(png_header_only(6000, 5000))
    assert message.startswith("The image is 6000 by 5000 pixels; the most is 25 megapixels")


def test_a_text_file_named_png_is_refused() -> None:
    assert refusal(b"just some text, honestly an image") == "This file is not a JPEG, PNG or WebP image we can read."


def test_an_svg_is_refused() -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
    assert refusal(svg) == "This file is not a JPEG, PNG or WebP image we can read."


def test_a_gif_is_refused() -> None:
    assert refusal(image_bytes("GIF")) == "Only JPEG, PNG and WebP images can be uploaded."


def test_a_truncated_image_is_refused() -> None:
    data = image_bytes("JPEG", size=(300, 300), quality=95)
    assert refusal(data[: len(data) // 2]) == "This image file is damaged or incomplete."


def test_a_file_over_10_mb_is_refused_without_reading_it() -> None:
    with pytest.raises(ValidationError, match="larger than 10 MB"):
        images.process_image(io.BytesIO(b""), size=10 * 1024 * 1024 + 1, variant=images.THUMBNAIL)


def test_transparency_is_kept() -> None:
    result = process(image_bytes("PNG", mode="RGBA", size=(100, 100)))
    assert Image.open(io.BytesIO(result.content)).mode == "RGBA"
