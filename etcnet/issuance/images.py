"""Uploaded photos: only real JPEG or PNG images, size-limited, re-encoded so no
EXIF (location, device) survives, with a thumbnail for lists and review."""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageOps, UnidentifiedImageError

from etcnet.core.errors import FieldIssue
from etcnet.core.validators import gettext_noop

THUMBNAIL_BOX = (320, 320)
_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}


@dataclass(frozen=True)
class PreparedImage:
    content: ContentFile[bytes]
    thumbnail: ContentFile[bytes]
    content_type: str
    extension: str
    size: int
    width: int
    height: int
    sha256: str
    original_name: str


def _issue(code: str, template: str, **params: object) -> FieldIssue:
    return FieldIssue("file", code, template, params)


def prepare(upload: UploadedFile) -> PreparedImage | FieldIssue:
    """Check and re-encode one upload. Returns the clean image or the problem."""
    limit = settings.ETCNET_UPLOAD_MAX_BYTES
    if upload.size is None or upload.size == 0:
        return _issue("file_empty", gettext_noop("The file is empty."))
    if upload.size > limit:
        return _issue(
            "file_too_large",
            gettext_noop("The file is {size_mb} MB; the limit is {limit_mb} MB."),
            size_mb=round(upload.size / 1_048_576, 1),
            limit_mb=round(limit / 1_048_576, 1),
        )
    raw = upload.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = settings.ETCNET_UPLOAD_MAX_PIXELS
            probe = Image.open(io.BytesIO(raw))
            image_format = probe.format or ""
            probe.verify()
            image: Image.Image = Image.open(io.BytesIO(raw))
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return _issue("file_not_image", gettext_noop("Upload a JPEG or PNG photo."))
    except (OSError, SyntaxError, ValueError):
        return _issue("file_corrupt", gettext_noop("The image is damaged; take the photo again."))
    if image_format not in _FORMATS:
        return _issue("file_not_image", gettext_noop("Upload a JPEG or PNG photo."))
    content_type, extension = _FORMATS[image_format]

    # Apply the camera's orientation, then write only the pixels: the EXIF block
    # (GPS position, device serial) is not carried over.
    image = ImageOps.exif_transpose(image)
    if image_format == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    clean = _encode(image, image_format)
    thumb = image.copy()
    thumb.thumbnail(THUMBNAIL_BOX)
    if image_format == "JPEG" and thumb.mode not in ("RGB", "L"):
        thumb = thumb.convert("RGB")
    return PreparedImage(
        content=ContentFile(clean),
        thumbnail=ContentFile(_encode(thumb, image_format)),
        content_type=content_type,
        extension=extension,
        size=len(clean),
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(clean).hexdigest(),
        original_name=(upload.name or "")[:200],
    )


def _encode(image: Image.Image, image_format: str) -> bytes:
    out = io.BytesIO()
    if image_format == "JPEG":
        image.save(out, format="JPEG", quality=88, optimize=True)
    else:
        image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def delete_files(names: Iterable[str]) -> None:
    for name in names:
        if name and default_storage.exists(name):
            default_storage.delete(name)
