"""The SQLite translation cache: keys, concurrent writer processes, and a writer killed mid-run."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from pipeline.nllb.cache import CACHE_FILENAME, TranslationCache


def test_round_trip_and_key_separation(tmp_path):
    cache = TranslationCache(tmp_path, "engine-a")
    assert cache.get_many(["a dog"], "eng_Latn", "deu_Latn") == {}
    cache.put_many([("a dog", "ein Hund", False), ("long", "lang", True)], "eng_Latn", "deu_Latn")
    assert cache.get_many(["a dog", "long", "other"], "eng_Latn", "deu_Latn") == \
        {"a dog": ("ein Hund", False), "long": ("lang", True)}
    assert cache.get_many(["a dog"], "eng_Latn", "fra_Latn") == {}  # another target language
    assert cache.get_many(["a dog"], "deu_Latn", "eng_Latn") == {}  # another direction
    assert TranslationCache(tmp_path, "engine-b").get_many(["a dog"], "eng_Latn", "deu_Latn") == {}  # other settings
    assert TranslationCache(tmp_path / CACHE_FILENAME, "engine-a").count() == 2  # reopened from disk


def test_a_cache_whose_folder_was_removed_opens_again_on_another_thread(tmp_path):
    """A process keeps its cache across runs; between two runs the output holding it was removed (a rerun
    into a fresh folder): the next run's threads open a new cache there instead of failing."""
    import shutil
    import threading

    folder = tmp_path / "out" / "_work" / "translation-cache"
    cache = TranslationCache(folder, "engine-a")
    cache.put_many([("a dog", "ein Hund", False)], "eng_Latn", "deu_Latn")
    shutil.rmtree(tmp_path / "out")
    found = []
    worker = threading.Thread(target=lambda: found.append(cache.get_many(["a dog"], "eng_Latn", "deu_Latn")))
    worker.start()
    worker.join()
    assert found == [{}] and (folder / CACHE_FILENAME).is_file()


def test_lookups_larger_than_one_query(tmp_path):
    cache = TranslationCache(tmp_path, "k")
    items = [(f"text {i}", f"Text {i}", False) for i in range(1300)]
    cache.put_many(items, "eng_Latn", "deu_Latn")
    found = cache.get_many([s for s, _, _ in items] + ["missing"], "eng_Latn", "deu_Latn")
    assert len(found) == 1300 and found["text 1299"] == ("Text 1299", False)


WRITER = """
import sys
from pipeline.nllb.cache import TranslationCache
worker, n = int(sys.argv[2]), int(sys.argv[3])
cache = TranslationCache(sys.argv[1], "shared")
for i in range(n):
    # keys shared by all workers (s_i) plus keys of this worker only
    cache.put_many([(f"s{i}", f"t{i}", False), (f"w{worker}-{i}", f"x{i}", False)], "eng_Latn", "deu_Latn")
"""


def test_concurrent_writer_processes(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(w), "60"]) for w in range(3)]
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    cache = TranslationCache(tmp_path, "shared")
    assert cache.count() == 60 + 3 * 60
    assert cache.get_many(["s59", "w2-59"], "eng_Latn", "deu_Latn") == {"s59": ("t59", False), "w2-59": ("x59", False)}


KILLED_WRITER = """
import sys
from pipeline.nllb.cache import TranslationCache
cache = TranslationCache(sys.argv[1], "k")
i = 0
while True:
    cache.put_many([(f"s{i}-{j}", "t" * 200, False) for j in range(50)], "eng_Latn", "deu_Latn")
    i += 1
    if i == 3:
        print("ready", flush=True)
"""


def test_killed_writer_leaves_a_consistent_cache(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    conn = sqlite3.connect(tmp_path / CACHE_FILENAME)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    cache = TranslationCache(tmp_path, "k")
    n = cache.count()
    assert n >= 150 and n % 50 == 0  # whole transactions only: never a partial batch
    cache.put_many([("after", "kill", False)], "eng_Latn", "deu_Latn")  # still writable
    assert cache.count() == n + 1


def test_full_disk_says_so(tmp_path):
    """SQLITE_FULL (here: the database's page limit, as on a full disk) is an OSError ENOSPC naming
    the cache, not "cannot rollback - no transaction is active"; what was committed stays."""
    import errno

    import pytest

    cache = TranslationCache(tmp_path, "engine")
    cache.put_many([("kept", "behalten", False)], "eng_Latn", "deu_Latn")
    conn = cache._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages + 1}")
    big = [(f"source {i} " + "x" * 500, "y" * 500, False) for i in range(200)]
    with pytest.raises(OSError) as err:
        cache.put_many(big, "eng_Latn", "deu_Latn")
    assert err.value.errno == errno.ENOSPC
    assert "disk full" in str(err.value) and CACHE_FILENAME in str(err.value)
    assert cache.get_many(["kept"], "eng_Latn", "deu_Latn") == {"kept": ("behalten", False)}


def test_a_damaged_cache_names_the_file_and_says_it_can_be_deleted(tmp_path):
    """Not a database at all (overwritten), or pages damaged inside a real one: a ValueError (one `error:` line
    from the command line) naming the file and the way out, on opening and on a lookup."""
    import pytest

    from mblip.cli import describe_error

    path = tmp_path / "garbage" / CACHE_FILENAME
    path.parent.mkdir()
    path.write_bytes(b"not a database " * 1000)
    with pytest.raises(ValueError, match=rf"translation cache {path} is damaged \(file is not a database\); .*"
                                         r"recomputed: delete it \(or set translation.cache_dir elsewhere\)") as err:
        TranslationCache(path.parent, "engine")
    assert "\n" not in describe_error(err.value)

    cache = TranslationCache(tmp_path, "engine")
    cache.put_many([(f"text {i} " + "x" * 200, "y" * 200, False) for i in range(2000)], "eng_Latn", "deu_Latn")
    cache.close()
    sqlite3.connect(tmp_path / CACHE_FILENAME).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    with open(tmp_path / CACHE_FILENAME, "r+b") as handle:  # pages inside the table: damaged, header intact
        handle.seek(8 * 4096)
        handle.write(b"\xff" * 4096 * 16)
    damaged = TranslationCache(tmp_path, "engine")
    with pytest.raises(ValueError, match=rf"translation cache {tmp_path / CACHE_FILENAME} is damaged .*delete it"):
        damaged.get_many([f"text {i} " + "x" * 200 for i in range(2000)], "eng_Latn", "deu_Latn")
