"""A static file server on 127.0.0.1 (an ephemeral port) in a background thread, for the demo and tests;
optionally the HTTP proxy of one made-up host name, so that the URLs it serves do not name its port."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


class HostProxyHandler(QuietHandler):
    """Also answers as the HTTP proxy of one host name (``host``, set by ``serve_directory``): a proxied
    request names the whole URL (``GET http://HOST/a.jpg``), which is served from the root like ``/a.jpg``.
    Any other host gets a 404: this is no general proxy."""

    host: str | None = None

    def translate_path(self, path: str) -> str:
        parts = urlsplit(path)
        if parts.scheme:  # a proxied request
            if parts.hostname != self.host:
                return str(Path(self.directory) / ".not-served")
            path = parts.path or "/"
        return super().translate_path(path)


@contextlib.contextmanager
def serve_directory(root: str | Path, handler: type[SimpleHTTPRequestHandler] = QuietHandler,
                    port: int = 0, proxy_for: str | None = None) -> Iterator[str]:
    """Serve ``root`` at ``http://127.0.0.1:PORT`` while the block runs; yields that base URL.

    ``port`` 0 takes a free one; a given port that is taken falls back to a free one. ``proxy_for``: a host
    name this server also answers for as an HTTP proxy (``HostProxyHandler``).
    """
    if proxy_for is not None:
        handler = type("HostProxy", (HostProxyHandler,), {"host": proxy_for})
    make = functools.partial(handler, directory=str(root))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), make)
    except OSError:
        server = ThreadingHTTPServer(("127.0.0.1", 0), make)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
