"""The fetcher's HTTP: http(s) only, a byte cap, a pixel cap and a deadline per URL.

img2dataset downloads with ``urllib.request.urlopen``, reads each response whole, and its timeout is per
socket read: a 50 MB response is held in memory by each of 32 threads, a server sending a byte every
2 s keeps a URL busy for as long as it likes, and a 20000x20000 PNG is decoded in full. Here, in each
process that downloads (img2dataset's workers), ``urlopen`` goes through ``guarded_opener``
(``urllib.request.install_opener``, the library's own hook), which:

- speaks http and https only, redirects included (no ``file:``, ``ftp:`` or ``data:`` handler);
- gives each URL a deadline, redirects included: connecting and every read of the headers and body wait
  at most what is left of it, so a slow or dripping server ends in ``timeout`` after ``deadline_s`` (a
  TLS handshake's reads wait the per-read timeout);
- refuses a body over ``max_bytes`` (by its Content-Length at once, else as it is read) and an image
  whose header declares more than ``max_pixels``, both ``too_large``, before anything is decoded.

``guarded_downloads`` hands img2dataset a downloader that installs the opener where it runs: img2dataset
builds its ``Downloader`` inside ``download`` and has no hook for its HTTP client.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import importlib
import io
import socket
import time
import urllib.request
from dataclasses import dataclass

from pipeline.images.guard import DEFAULT_MAX_PIXELS, TOO_LARGE, ImageTooLarge, check_image_header

READ_SIZE = 64 * 1024  # bytes per socket read of a body


@dataclass(frozen=True)
class FetchLimits:
    """Per URL. 32 threads per process hold at most 32 x ``max_bytes`` of responses at once."""

    max_bytes: int = 16 * 2**20  # body bytes (16 MiB; web images are rarely over 5); 0: no cap
    max_pixels: int = DEFAULT_MAX_PIXELS  # width x height declared by the image header; 0: no cap
    deadline_s: float = 30.0  # whole fetch (connect, redirects, headers, body); 0: none (the per-read timeout only)


class DeadlinePassed(TimeoutError):
    def __init__(self, deadline_s: float):
        super().__init__(f"timed out: the deadline of {deadline_s:g} s per URL passed (--deadline)")


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, each waiting at most what is left until ``deadline`` (and the socket's timeout)."""

    def __init__(self, sock, deadline: float | None, deadline_s: float):
        self.sock, self.deadline, self.deadline_s = sock, deadline, deadline_s
        self.raw = sock.makefile("rb", buffering=0)  # counts as a reference: the socket stays open for it
        self.timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise DeadlinePassed(self.deadline_s)
            self.sock.settimeout(left if self.timeout is None else min(self.timeout, left))
        try:
            return self.raw.readinto(buffer)
        except socket.timeout:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                raise DeadlinePassed(self.deadline_s) from None
            raise

    def close(self) -> None:
        self.raw.close()
        super().close()


class _DeadlineSocket:
    """A connected socket whose reads (``makefile``, what ``http.client`` reads through) keep a deadline."""

    def __init__(self, sock, deadline: float | None, deadline_s: float):
        self._sock, self._deadline, self._deadline_s = sock, deadline, deadline_s

    def makefile(self, mode: str = "r", *args, **kwargs):
        if "w" in mode:
            return self._sock.makefile(mode, *args, **kwargs)
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline, self._deadline_s))

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _DeadlineConnection:
    """Mixed into ``http.client``'s connections: the socket, once connected (TLS included), keeps the deadline."""

    deadline: float | None = None
    deadline_s: float = 0.0

    def connect(self) -> None:
        if self.deadline is not None and isinstance(self.timeout, (int, float)):  # connecting waits no longer
            self.timeout = max(0.001, min(self.timeout, self.deadline - time.monotonic()))
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self.deadline, self.deadline_s)


class _HTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


def _connection(cls, deadline: float | None, deadline_s: float, *args, **kwargs):
    conn = cls(*args, **kwargs)
    conn.deadline, conn.deadline_s = deadline, deadline_s
    return conn


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, limits: FetchLimits):
        super().__init__()
        self.limits = limits

    def http_open(self, req):
        return self.do_open(functools.partial(_connection, _HTTPConnection, req.deadline, self.limits.deadline_s), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, limits: FetchLimits):
        super().__init__()
        self.limits = limits

    def https_open(self, req):
        return self.do_open(functools.partial(_connection, _HTTPSConnection, req.deadline, self.limits.deadline_s),
                            req, context=self._context)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Redirects keep the first request's deadline (a non-http(s) target finds no handler: ``unknown url type``)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.deadline = req.deadline
        return new


class _CappedResponse:
    """A response whose ``read`` stops at the byte cap and the deadline and checks the image header."""

    def __init__(self, response, deadline: float | None, limits: FetchLimits):
        self._response, self._deadline, self._limits = response, deadline, limits

    def __getattr__(self, name):
        return getattr(self._response, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._response.close()

    def read(self, amt: int | None = None) -> bytes:
        cap = self._limits.max_bytes
        declared = self._response.headers.get("Content-Length", "")
        if cap and declared.isdigit() and int(declared) > cap:
            raise ImageTooLarge(f"response {TOO_LARGE}: {int(declared):,} bytes declared, over the cap of {cap:,} "
                                "(--max-bytes)")
        chunks, total = [], 0
        while amt is None or total < amt:
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise DeadlinePassed(self._limits.deadline_s)
            chunk = self._response.read1(READ_SIZE if amt is None else min(READ_SIZE, amt - total))
            if not chunk:
                break
            total += len(chunk)
            if cap and total > cap:
                raise ImageTooLarge(f"response {TOO_LARGE}: over the cap of {cap:,} bytes (--max-bytes)")
            chunks.append(chunk)
        data = b"".join(chunks)
        if amt is None:
            check_image_header(data, self._limits.max_pixels, "--max-pixels")
        return data


class _GuardedOpener(urllib.request.OpenerDirector):
    def __init__(self, limits: FetchLimits):
        super().__init__()
        self.limits = limits

    def open(self, fullurl, data=None, timeout=socket._GLOBAL_DEFAULT_TIMEOUT):
        req = fullurl if isinstance(fullurl, urllib.request.Request) else urllib.request.Request(fullurl, data)
        if not hasattr(req, "deadline"):
            req.deadline = time.monotonic() + self.limits.deadline_s if self.limits.deadline_s else None
        response = super().open(req, data, timeout)
        return response if isinstance(response, _CappedResponse) else _CappedResponse(response, req.deadline,
                                                                                          self.limits)


def guarded_opener(limits: FetchLimits = FetchLimits()) -> urllib.request.OpenerDirector:
    """An opener for http and https only, within ``limits`` (see the module's docstring)."""
    opener = _GuardedOpener(limits)
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), _HTTPHandler(limits),
                    _HTTPSHandler(limits), urllib.request.HTTPDefaultErrorHandler(), _RedirectHandler(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


class GuardedDownloader:
    """img2dataset's downloader, fetching through ``guarded_opener`` in whichever process runs a shard."""

    def __init__(self, downloader, limits: FetchLimits):
        self.downloader, self.limits = downloader, limits

    def __call__(self, row):
        urllib.request.install_opener(guarded_opener(self.limits))
        try:
            return self.downloader(row)
        finally:
            urllib.request.install_opener(None)  # the default opener again


@contextlib.contextmanager
def guarded_downloads(limits: FetchLimits):
    """While the block runs, img2dataset's ``download`` builds ``GuardedDownloader``s."""
    entry = importlib.import_module("img2dataset.main")  # the module (the package's ``main`` is a function)
    build = entry.Downloader
    entry.Downloader = lambda **kwargs: GuardedDownloader(build(**kwargs), limits)
    try:
        yield
    finally:
        entry.Downloader = build
