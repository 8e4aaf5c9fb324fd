"""What may be fetched and decoded: http(s) URLs only, and images within a pixel cap.

``mblip fetch-images`` fetches http and https URLs and nothing else: ``file:``, ``ftp:``, ``data:``, a
bare local path or a URL without a host is refused per URL with a reason (``url_problem``), never handed
to the fetcher, which would read local files or other servers for it (``pipeline/images/http.py``
refuses such redirects too). Where images are decoded with PIL (the pipeline's image checks, the
trainer's ``load_image``, the data browser's thumbnails), ``open_rgb`` first reads the header and refuses
an image over ``max_pixels`` (an image bomb: a 20000x20000 PNG is a few hundred kB and 1.2 GB decoded)
with ``ImageTooLarge``.
PIL's own limit (``PIL.Image.MAX_IMAGE_PIXELS``, refused above twice it) stays in force as well.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

FETCHED_SCHEMES = ("http", "https")
# 50 megapixels: above the photos of common cameras, 150 MB decoded as RGB; an image over it is refused
# (reason too_large) instead of decoded. mBLIP stores every image at 256 px, so the cap loses nothing
# a training example would keep. 0 turns it off (PIL's own limit still applies).
DEFAULT_MAX_PIXELS = 50_000_000
REASON_UNSUPPORTED_SCHEME = "unsupported_scheme"  # file:, ftp:, data:, ... (only http and https are fetched)
REASON_INVALID_URL = "invalid_url"  # no scheme (a local path), no host, spaces or control characters
REASON_TOO_LARGE = "too_large"  # over the pixel or byte cap
TOO_LARGE = "too large"  # in every such message: ``pipeline.images.table.classify_error`` counts it as too_large


class ImageTooLarge(ValueError):
    """An image (or a response) over its cap; the message says which cap and the knob that sets it."""


def url_problem(url: str) -> str | None:
    """Why ``url`` is not fetched (``unsupported_scheme`` or ``invalid_url``), or None for an http(s) URL."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return REASON_INVALID_URL
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. a malformed IPv6 host
        return REASON_INVALID_URL
    if not parts.scheme:
        return REASON_INVALID_URL
    if parts.scheme.lower() not in FETCHED_SCHEMES:
        return REASON_UNSUPPORTED_SCHEME
    return None if host else REASON_INVALID_URL


def check_pixels(width: int, height: int, max_pixels: int, knob: str = "max_pixels") -> None:
    """``ImageTooLarge`` when ``width`` x ``height`` is over ``max_pixels`` (0: no cap)."""
    if max_pixels and width * height > max_pixels:
        raise ImageTooLarge(f"image {TOO_LARGE}: {width}x{height} = {width * height:,} pixels, over the cap of "
                            f"{max_pixels:,} ({knob})")


def check_image_header(data: bytes, max_pixels: int, knob: str = "max_pixels") -> None:
    """Refuse encoded image bytes whose header declares more than ``max_pixels``; nothing is decoded.

    Bytes PIL cannot identify pass: the decoder that follows reports them (``decode_error``)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError as e:  # over twice PIL's own limit
        raise ImageTooLarge(f"image {TOO_LARGE}: {e}") from e
    except (UnidentifiedImageError, OSError, ValueError):
        return
    check_pixels(width, height, max_pixels, knob)


def open_rgb(source: str | Path | BinaryIO, max_pixels: int = DEFAULT_MAX_PIXELS,
             draft: tuple[int, int] | None = None):
    """The image at ``source`` (a path or a binary file object) as RGB; ``ImageTooLarge`` before decoding
    one over ``max_pixels`` (the caller names the file: its messages go into logs and quarantine reasons,
    where paths are relative). ``draft`` (width, height) lets a JPEG decode at a reduced scale no smaller
    than it (PIL's ``Image.draft``): a thumbnail need not decode every pixel of a large photo."""
    from PIL import Image

    try:
        with Image.open(source) as image:
            check_pixels(*image.size, max_pixels)
            if draft:
                image.draft("RGB", draft)
            return image.convert("RGB")
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"image {TOO_LARGE}: {e}") from e
