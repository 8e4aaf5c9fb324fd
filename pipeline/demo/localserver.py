"""A static file server on 127.0.0.1 (an ephemeral port) in a background thread, for the demo and tests."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve_directory(root: str | Path, handler: type[SimpleHTTPRequestHandler] = QuietHandler,
                    port: int = 0) -> Iterator[str]:
    """Serve ``root`` at ``http://127.0.0.1:PORT`` while the block runs; yields that base URL.

    ``port`` 0 takes a free one; a given port that is taken falls back to a free one.
    """
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
