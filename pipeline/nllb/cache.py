"""Persistent translation cache: SQLite in WAL mode, shared by every worker process of a machine.

Key: (engine key, source language, target language, cleaned source text); forced-decoding scores
(``scores`` table) add the cleaned target text. The engine key names the
model (id, revision, source fingerprint), its quantisation and compute type, and every decoding
setting (``NllbTranslator.cache_key``), so a change of any of them misses instead of serving stale
translations. A rerun, a regeneration with more data or a second flow over the same text translates
only new strings.

Concurrency and crash safety: WAL lets readers run while one writer commits; ``busy_timeout`` makes
a writer wait for the lock instead of failing; each batch of results is one short transaction, so a
killed process loses at most its uncommitted batch and never corrupts the file (SQLite's journal
rolls it back on the next open). ``INSERT OR IGNORE`` makes concurrent writers of the same key
harmless: the first one wins and both hold the same translation anyway. A file SQLite cannot read
(overwritten, damaged pages) is a ``ValueError`` naming it and saying that it can be deleted.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_FILENAME = "translations.sqlite"
BUSY_TIMEOUT_MS = 60_000  # how long a writer waits for another process's transaction
LOOKUP_BATCH = 500  # host parameters per SELECT (SQLite's limit is 999 on old builds)
WRITE_RETRIES = 5  # "database is locked" beyond the busy timeout: bounded retries with backoff

_SCHEMA = """
CREATE TABLE IF NOT EXISTS engines (
    engine_id TEXT PRIMARY KEY,
    engine_key TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS translations (
    engine_id TEXT NOT NULL,
    src_lang TEXT NOT NULL,
    tgt_lang TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (engine_id, src_lang, tgt_lang, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scores (
    engine_id TEXT NOT NULL,
    src_lang TEXT NOT NULL,
    tgt_lang TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    score REAL,
    PRIMARY KEY (engine_id, src_lang, tgt_lang, source, target)
) WITHOUT ROWID;
"""


def engine_id(engine_key: str) -> str:
    """Short stable id of an engine key (the full key is kept in the ``engines`` table)."""
    return hashlib.sha256(engine_key.encode()).hexdigest()[:16]


class TranslationCache:
    """Get and put translations for one engine key. One SQLite connection per thread and process."""

    def __init__(self, path: str | Path, engine_key: str):
        path = Path(path)
        if path.suffix != ".sqlite":
            path = path / CACHE_FILENAME  # a directory was given
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.engine_key = engine_key
        self.engine_id = engine_id(engine_key)
        self._local = threading.local()
        self._write(lambda c: c.execute(
            "INSERT OR IGNORE INTO engines VALUES (?, ?, ?)", (self.engine_id, engine_key, time.time())
        ))

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            # The folder again: a process keeps this cache across runs (``open_translator``), and the output
            # holding it may have been removed or moved away since (a rerun into a fresh folder).
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
                conn.executescript(_SCHEMA)
            except sqlite3.DatabaseError as e:
                raise self._damaged(e) from e
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _damaged(self, error: sqlite3.DatabaseError) -> Exception:
        """A file SQLite cannot read ("file is not a database", "database disk image is malformed") as a
        ``ValueError`` naming it and the way out; other errors (locked, disk full) unchanged."""
        if isinstance(error, sqlite3.OperationalError):
            return error
        return ValueError(
            f"translation cache {self.path} is damaged ({error}); it only stores translations and scores, which "
            "are recomputed: delete it (or set translation.cache_dir elsewhere) and run again"
        )

    def _write(self, work) -> None:
        """Run ``work(conn)`` in one IMMEDIATE transaction, retrying a locked database a few times."""
        conn = self._conn()
        for attempt in range(WRITE_RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:  # SQLite already rolled back after some errors (disk full)
                        conn.execute("ROLLBACK")
                    raise
                return
            except sqlite3.DatabaseError as e:
                if not isinstance(e, sqlite3.OperationalError):
                    raise self._damaged(e) from e
                if "full" in str(e):  # SQLITE_FULL: "database or disk is full"
                    raise OSError(errno.ENOSPC, f"disk full while writing the translation cache ({e}); free "
                                  "space or set translation.cache_dir elsewhere", str(self.path)) from e
                if "locked" not in str(e) and "busy" not in str(e) or attempt == WRITE_RETRIES - 1:
                    log.error("translation cache %s: write failed: %s", self.path, e)
                    raise
                time.sleep(0.1 * 2**attempt)

    def get_many(self, texts: Iterable[str], src_lang: str, tgt_lang: str) -> dict[str, tuple[str, bool]]:
        """Cached ``text -> (translation, truncated)`` for those of ``texts`` that are cached."""
        texts = list(dict.fromkeys(texts))
        conn = self._conn()
        found: dict[str, tuple[str, bool]] = {}
        for start in range(0, len(texts), LOOKUP_BATCH):
            part = texts[start:start + LOOKUP_BATCH]
            marks = ",".join("?" * len(part))
            rows = self._read(
                conn,
                f"SELECT source, target, truncated FROM translations WHERE engine_id=? AND src_lang=? AND tgt_lang=? "
                f"AND source IN ({marks})",
                (self.engine_id, src_lang, tgt_lang, *part),
            )
            for source, target, truncated in rows:
                found[source] = (target, bool(truncated))
        return found

    def _read(self, conn: sqlite3.Connection, query: str, params: tuple) -> list[tuple]:
        try:
            return conn.execute(query, params).fetchall()
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from e

    def put_many(self, items: Iterable[tuple[str, str, bool]], src_lang: str, tgt_lang: str) -> int:
        """Store ``(source, translation, truncated)`` items in one transaction; returns how many were given."""
        rows = [(self.engine_id, src_lang, tgt_lang, s, t, int(tr)) for s, t, tr in items]
        if rows:
            self._write(lambda c: c.executemany("INSERT OR IGNORE INTO translations VALUES (?, ?, ?, ?, ?, ?)", rows))
        return len(rows)

    def get_scores(self, pairs: Iterable[tuple[str, str]], src_lang: str,
                   tgt_lang: str) -> dict[tuple[str, str], float]:
        """Cached forced-decoding scores ``(source, target) -> mean log-prob`` (NaN stored as NULL)."""
        pairs = list(dict.fromkeys(pairs))
        conn = self._conn()
        found: dict[tuple[str, str], float] = {}
        for start in range(0, len(pairs), LOOKUP_BATCH // 2):
            part = pairs[start:start + LOOKUP_BATCH // 2]
            marks = ",".join("(?, ?)" for _ in part)
            rows = self._read(
                conn,
                f"SELECT source, target, score FROM scores WHERE engine_id=? AND src_lang=? AND tgt_lang=? "
                f"AND (source, target) IN (VALUES {marks})",
                (self.engine_id, src_lang, tgt_lang, *(x for pair in part for x in pair)),
            )
            for source, target, score in rows:
                found[(source, target)] = float("nan") if score is None else score
        return found

    def put_scores(self, items: Iterable[tuple[str, str, float]], src_lang: str, tgt_lang: str) -> int:
        """Store ``(source, target, score)`` items in one transaction; returns how many were given."""
        rows = [(self.engine_id, src_lang, tgt_lang, s, t, None if v != v else v) for s, t, v in items]
        if rows:
            self._write(lambda c: c.executemany("INSERT OR IGNORE INTO scores VALUES (?, ?, ?, ?, ?, ?)", rows))
        return len(rows)

    def count(self) -> int:
        """Entries for this engine key."""
        query = "SELECT count(*) FROM translations WHERE engine_id=?"
        return self._read(self._conn(), query, (self.engine_id,))[0][0]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local = threading.local()
