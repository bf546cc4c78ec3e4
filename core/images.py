"""Uploaded images (offer thumbnails and covers, hub icons): checked with Pillow, normalised
and re-encoded in the sizes the pages use.

An upload is never stored as sent. It must really be a JPEG, PNG or WebP image (whatever its
name says) of at most ``MAX_BYTES`` and ``MAX_PIXELS``; the pixel check reads only the header,
so a decompression bomb is refused before it is decoded. The result is a new WebP file: EXIF
orientation applied, no metadata carried over (EXIF, GPS, ICC comments), the size fitted to its
use on the checkout page.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import IO

from django.core.exceptions import ValidationError
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 25_000_000
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}


@dataclass(frozen=True)
class Variant:
    """How an image is stored: ``crop`` fills the box exactly, otherwise it fits inside it."""

    width: int
    height: int
    crop: bool


# The checkout page shows the thumbnail at up to 300px square and the cover across the page
# (up to 960px wide); both are stored at twice that for sharp high-density screens.
THUMBNAIL = Variant(width=600, height=600, crop=True)
COVER = Variant(width=1920, height=1080, crop=False)
# Hub icons are shown at 48px square on the community pages.
ICON = Variant(width=96, height=96, crop=True)


@dataclass(frozen=True)
class ProcessedImage:
    content: bytes
    width: int
    height: int
    extension: str = "webp"


def process_image(upload: IO[bytes], *, size: int, variant: Variant) -> ProcessedImage:
    """Check an uploaded image and re-encode it, or raise ``ValidationError`` saying why."""
    if size > MAX_BYTES:
        raise ValidationError("The image is larger than 10 MB. Please upload a smaller file.", code="too_large")
    upload.seek(0)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice it; treat every warning as a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as image:
                if image.format not in ALLOWED_FORMATS:
                    raise ValidationError("Only JPEG, PNG and WebP images can be uploaded.", code="unsupported_format")
                if image.width * image.height > MAX_PIXELS:
                    raise ValidationError(
                        f"The image is {image.width} by {image.height} pixels; the most is 25 megapixels. "
                        "Please upload a smaller image.",
                        code="too_many_pixels",
                    )
                image.load()
                return _reencode(image, variant)
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(
            "The image has far too many pixels; the most is 25 megapixels.", code="too_many_pixels"
        ) from None
    except UnidentifiedImageError:
        raise ValidationError("This file is not a JPEG, PNG or WebP image we can read.", code="not_an_image") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        # Truncated or corrupt data that passed the header check.
        raise ValidationError("This image file is damaged or incomplete.", code="damaged") from None


def _reencode(image: Image.Image, variant: Variant) -> ProcessedImage:
    oriented = ImageOps.exif_transpose(image) or image
    has_alpha = oriented.mode in ("RGBA", "LA") or (oriented.mode == "P" and "transparency" in oriented.info)
    converted = oriented.convert("RGBA" if has_alpha else "RGB")
    box = (variant.width, variant.height)
    if variant.crop:
        resized = ImageOps.fit(converted, box, method=Image.Resampling.LANCZOS)
    else:
        resized = converted.copy()
        resized.thumbnail(box, Image.Resampling.LANCZOS)  # only ever shrinks
    # A fresh image carries no metadata of the upload (EXIF, XMP, ICC, text chunks).
    clean = Image.new(resized.mode, resized.size)
    clean.paste(resized)
    out = io.BytesIO()
    clean.save(out, format="WEBP", quality=85, method=4)
    return ProcessedImage(content=out.getvalue(), width=clean.width, height=clean.height)
