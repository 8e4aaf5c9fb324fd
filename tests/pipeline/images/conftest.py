"""A loopback image server with the cases the fetcher must handle: good images of several sizes and
aspect ratios, a 404, a page that is not an image, a truncated JPEG, a slow response, a redirect, and the
hostile ones: image bombs, responses over the byte cap, servers that drip, redirects to other schemes."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from pipeline.demo.localserver import QuietHandler, serve_directory

GOOD = {"wide.jpg": (640, 320), "tall.png": (200, 500), "small.jpg": (100, 60), "square.jpg": (300, 300)}
SLOW_S = 4
DRIP_EVERY_S = 2.0  # one byte every 2 s ...
DRIP_BYTES = 30  # ... for at most 60 s: the loop ends by itself (or when the client hangs up)
BIG_BYTES = 300_000  # over the 100 kB cap the tests set


def _image_bytes(size, fmt, mode="RGB"):
    buf = io.BytesIO()
    Image.new(mode, size, (200, 40, 40) if mode == "RGB" else (200, 40, 40, 128)).save(buf, fmt)
    return buf.getvalue()


def write_png_bomb(path: Path, width: int, height: int) -> Path:
    """A black 1-bit PNG of ``width`` x ``height`` written row by row: a few hundred kB on disk for
    20000x20000 (400 megapixels, over a GB once decoded to RGB), without ever holding it in memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compress, row, data = zlib.compressobj(9), b"\0" * (1 + (width + 7) // 8), []
    for _ in range(height):
        data.append(compress.compress(row))
    data.append(compress.flush())
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", b"".join(data)) + chunk(b"IEND", b""))
    return path


class CasesHandler(QuietHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/slow.jpg":
            time.sleep(SLOW_S)
        if self.path in ("/redirect.jpg", "/to-file.jpg", "/to-ftp.jpg"):
            target = {"/redirect.jpg": "/wide.jpg", "/to-file.jpg": f"file://{self.directory}/wide.jpg",
                      "/to-ftp.jpg": "ftp://127.0.0.1/wide.jpg"}[self.path]
            self.send_response(302)
            self.send_header("Location", target)
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
        if self.path == "/big-undeclared.jpg":  # no Content-Length: the body ends when the connection closes
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            self._write_slowly(b"\xff\xd8" + b"\0" * BIG_BYTES, every_s=0, size=8192)
            return
        if self.path in ("/drip.jpg", "/drip-headers.jpg"):
            self._drip(headers=self.path == "/drip-headers.jpg")
            return
        super().do_GET()

    def _drip(self, headers: bool) -> None:
        head = b"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % DRIP_BYTES
        self.close_connection = True
        if headers:  # the status line and headers themselves, a byte at a time
            self._write_slowly(head[:DRIP_BYTES], every_s=DRIP_EVERY_S, size=1)
        else:
            self.wfile.write(head)
            self._write_slowly(b"\xff" * DRIP_BYTES, every_s=DRIP_EVERY_S, size=1)

    def _write_slowly(self, data: bytes, every_s: float, size: int) -> None:
        for start in range(0, len(data), size):
            try:
                self.wfile.write(data[start:start + size])
                self.wfile.flush()
            except OSError:  # the client hung up
                return
            time.sleep(every_s)


@pytest.fixture(scope="session")
def png_bomb():
    """``write_png_bomb`` as a fixture (test modules cannot import conftest)."""
    return write_png_bomb


@pytest.fixture
def image_server(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    for name, size in GOOD.items():
        (root / name).write_bytes(_image_bytes(size, "PNG" if name.endswith(".png") else "JPEG"))
    (root / "slow.jpg").write_bytes(_image_bytes((50, 50), "JPEG"))
    (root / "truncated.jpg").write_bytes(_image_bytes((400, 300), "JPEG")[:200])
    write_png_bomb(root / "bomb.png", 20000, 20000)
    write_png_bomb(root / "large.png", 4000, 4000)  # 16 megapixels: under PIL's own limit, over the tests' cap
    (root / "big.jpg").write_bytes(_image_bytes((50, 50), "JPEG") + b"\0" * BIG_BYTES)
    with serve_directory(root, CasesHandler) as base:
        yield base
