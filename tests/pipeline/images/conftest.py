"""A loopback image server with the cases the fetcher must handle: good images of several sizes and
aspect ratios, a 404, a page that is not an image, a truncated JPEG, a slow response, a redirect."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from pipeline.demo.localserver import QuietHandler, serve_directory

GOOD = {"wide.jpg": (640, 320), "tall.png": (200, 500), "small.jpg": (100, 60), "square.jpg": (300, 300)}
SLOW_S = 4


def _image_bytes(size, fmt, mode="RGB"):
    buf = io.BytesIO()
    Image.new(mode, size, (200, 40, 40) if mode == "RGB" else (200, 40, 40, 128)).save(buf, fmt)
    return buf.getvalue()


class CasesHandler(QuietHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/slow.jpg":
            time.sleep(SLOW_S)
        if self.path == "/redirect.jpg":
            self.send_response(302)
            self.send_header("Location", "/wide.jpg")
            self.end_headers()
            return
        if self.path == "/page.jpg":
            body = b"<html><body>not an image</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture
def image_server(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    for name, size in GOOD.items():
        (root / name).write_bytes(_image_bytes(size, "PNG" if name.endswith(".png") else "JPEG"))
    (root / "slow.jpg").write_bytes(_image_bytes((50, 50), "JPEG"))
    (root / "truncated.jpg").write_bytes(_image_bytes((400, 300), "JPEG")[:200])
    with serve_directory(root, CasesHandler) as base:
        yield base
