"""What may be fetched (http and https URLs) and decoded (images within the pixel cap, refused from their
header, before any decoding)."""

from __future__ import annotations

import pytest
from PIL import Image

from pipeline.images.guard import ImageTooLarge, check_image_header, open_rgb, url_problem
from pipeline.images.table import classify_error


@pytest.mark.parametrize("url, problem", [
    ("http://example.org/a.jpg", None),
    ("HTTPS://example.org/a.jpg?x=1", None),
    ("file:///etc/passwd", "unsupported_scheme"),
    ("ftp://example.org/a.jpg", "unsupported_scheme"),
    ("data:image/png;base64,AAAA", "unsupported_scheme"),
    ("javascript:alert(1)", "unsupported_scheme"),
    ("/etc/passwd", "invalid_url"),
    ("example.org/a.jpg", "invalid_url"),
    ("http:///a.jpg", "invalid_url"),
    ("http://[::1/a.jpg", "invalid_url"),
    ("http://example.org/a b.jpg", "invalid_url"),
    ("http://example.org/a.jpg\n", "invalid_url"),
])
def test_only_http_urls_with_a_host_are_fetched(url, problem):
    assert url_problem(url) == problem


def test_fetch_errors_are_classed(tmp_path):
    assert classify_error("image too large: 4000x4000 = 16,000,000 pixels, over the cap") == "too_large"
    assert classify_error("response too large: over the cap of 100 bytes (--max-bytes)") == "too_large"
    assert classify_error("<urlopen error unknown url type: ftp>") == "unsupported_scheme"
    assert classify_error("HTTP Error 302: Found - Redirection to url 'file:///x' is not allowed") == \
        "unsupported_scheme"
    assert classify_error("timed out: the deadline of 3 s per URL passed (--deadline)") == "timeout"


def test_image_bombs_are_refused_from_their_header(tmp_path, png_bomb):
    bomb = png_bomb(tmp_path / "bomb.png", 20000, 20000)  # over PIL's own limit too
    large = png_bomb(tmp_path / "large.png", 4000, 4000)
    with pytest.raises(ImageTooLarge, match="image too large"):
        open_rgb(bomb)
    with pytest.raises(ImageTooLarge, match=r"4000x4000 = 16,000,000 pixels, over the cap of 10,000,000"):
        open_rgb(large, max_pixels=10_000_000)
    with pytest.raises(ImageTooLarge, match="over the cap of 10,000,000 \\(--max-pixels\\)"):
        check_image_header(large.read_bytes(), 10_000_000, "--max-pixels")
    check_image_header(b"<html>not an image</html>", 10)  # left to the decoder, which reports it
    assert open_rgb(large, max_pixels=0).size == (4000, 4000)  # 0: no cap
    Image.new("RGB", (30, 20)).save(tmp_path / "ok.png")
    assert open_rgb(tmp_path / "ok.png").mode == "RGB"


def test_open_rgb_reads_file_objects_and_decodes_a_jpeg_at_a_reduced_scale(tmp_path):
    Image.new("RGB", (800, 600), (200, 40, 40)).save(tmp_path / "photo.jpg")
    Image.new("RGB", (800, 600), (200, 40, 40)).save(tmp_path / "photo.png")
    with open(tmp_path / "photo.jpg", "rb") as handle:
        assert open_rgb(handle).size == (800, 600)
    reduced = open_rgb(tmp_path / "photo.jpg", draft=(100, 100))
    assert reduced.mode == "RGB" and reduced.size < (800, 600) and min(reduced.size) >= 75
    assert open_rgb(tmp_path / "photo.png", draft=(100, 100)).size == (800, 600)  # only JPEG has draft scales
