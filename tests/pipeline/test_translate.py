"""The translate stage: deduplication, the persistent cache, truncation flags, per-chunk stats."""

import json

import polars as pl
import pytest

from pipeline.nllb.cache import TranslationCache
from pipeline.nllb.engine import EngineSettings, load_translator
from pipeline.translate import (
    CachingTranslator, TranslationStats, translate_frame, write_stats_sidecar,
)


class CountingEngine:
    """The real engine, recording every string it is asked to translate."""

    def __init__(self, engine):
        self.engine = engine
        self.sent: list[tuple[str, str]] = []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def translate(self, texts, src_lang, tgt_lang, **options):
        targets = [tgt_lang] * len(texts) if isinstance(tgt_lang, str) else tgt_lang
        self.sent += list(zip(texts, targets))
        self.calls = getattr(self, "calls", 0) + 1
        return self.engine.translate(texts, src_lang, tgt_lang, **options)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return load_translator(tiny_model_dir, EngineSettings(compute_type="int8", max_input_tokens=48))


def _frame():
    texts = ["What color is the square?", "What color is the square? ", "Is the triangle blue?", None,
             "What color is the square?", "red circle " * 30, "", "Is the triangle blue?"]
    langs = ["deu_Latn", "deu_Latn", "deu_Latn", "deu_Latn", "fra_Latn", "fra_Latn", "fra_Latn", "eng_Latn"]
    return pl.DataFrame({"text_en": texts, "lang_nllb": langs})


def test_each_distinct_text_and_language_translated_once(engine):
    counting = CountingEngine(engine)
    stats = TranslationStats()
    out = translate_frame(_frame(), CachingTranslator(counting), stats=stats)
    assert sorted(counting.sent) == sorted([
        ("What color is the square?", "deu_Latn"), ("Is the triangle blue?", "deu_Latn"),
        ("What color is the square?", "fra_Latn"), (("red circle " * 30).strip(), "fra_Latn"),
    ])
    assert counting.calls == 1  # all languages in one engine call
    tgt = out["text_tgt"].to_list()
    assert tgt[0] == tgt[1]  # trailing space: same cleaned text, same translation
    assert tgt[3] is None and tgt[6] == ""  # null stays null, empty stays empty
    assert tgt[7] == "Is the triangle blue?"  # English rows are not translated
    assert out["translation_truncated"].to_list() == [False, False, False, False, False, True, False, False]
    assert (stats.requested, stats.empty, stats.distinct, stats.translated) == (5, 1, 4, 4)
    assert stats.dedup_factor == pytest.approx(1.25)
    assert stats.truncated == 1


def test_persistent_cache_translates_only_new_strings(engine, tmp_path):
    first = CountingEngine(engine)
    translator = CachingTranslator(first, TranslationCache(tmp_path, engine.cache_key()))
    a = translate_frame(_frame(), translator)
    # a new process (new cache connection, new engine wrapper) over the same text plus one new row
    second = CountingEngine(engine)
    again = CachingTranslator(second, TranslationCache(tmp_path, engine.cache_key()))
    more = pl.concat([_frame(), pl.DataFrame({"text_en": ["A new caption."], "lang_nllb": ["deu_Latn"]})])
    stats = TranslationStats()
    b = translate_frame(more, again, stats=stats)
    assert second.sent == [("A new caption.", "deu_Latn")]
    assert b["text_tgt"].to_list()[:-1] == a["text_tgt"].to_list()
    assert b["translation_truncated"].to_list()[:-1] == a["translation_truncated"].to_list()
    assert stats.cache_hits == 4 and stats.translated == 1 and stats.cache_hit_rate == pytest.approx(0.8)


def test_cache_key_covers_decoding_settings(tiny_model_dir, engine, tmp_path):
    other = load_translator(tiny_model_dir, EngineSettings(compute_type="int8", max_input_tokens=48, beam_size=2))
    assert other.cache_key() != engine.cache_key()
    cached = CachingTranslator(engine, TranslationCache(tmp_path, engine.cache_key()))
    cached.translate(["A red circle."], "eng_Latn", "deu_Latn")
    counting = CountingEngine(other)
    cached_other = CachingTranslator(counting, TranslationCache(tmp_path, other.cache_key()))
    cached_other.translate(["A red circle."], "eng_Latn", "deu_Latn")
    assert counting.sent == [("A red circle.", "deu_Latn")]


def test_stats_sidecars_sum(tmp_path):
    a = TranslationStats(requested=10, distinct=4, cache_hits=1, translated=3)
    b = TranslationStats(requested=6, distinct=2, cache_hits=2)
    write_stats_sidecar(tmp_path / "chunk-00000.parquet", a, {"de": {"kept": 3}})
    path = write_stats_sidecar(tmp_path / "chunk-00001.parquet", b)
    assert path.name == "chunk-00001.stats.json"
    data = json.loads((tmp_path / "chunk-00000.stats.json").read_text())
    assert data["translation"]["dedup_factor"] == 2.5 and data["templates"] == {"de": {"kept": 3}}
    from pipeline.outputs.stats import sum_sidecars

    chunks = [tmp_path / "chunk-00000.parquet", tmp_path / "chunk-00001.parquet", tmp_path / "missing.parquet"]
    summed = sum_sidecars(chunks)
    total = summed["translation"]
    assert (total["requested"], total["distinct"], total["cache_hits"]) == (16, 6, 3)
    assert total["cache_hit_rate"] == pytest.approx(0.5) and summed["chunks_without_sidecar"] == 1


def test_chunk_stage_writes_stats_sidecar_and_rerun_hits_the_cache(tiny_model_dir, demo_root, tmp_path):
    from pipeline.chunks import ACTION_PROCESS, ChunkJob, ChunkPlan, run_chunk
    from pipeline.filters.rules import FilterRules
    from pipeline.ingest import Vqav2Reader
    from pipeline.languages import resolve_languages
    from pipeline.process import ProcessSettings
    from pipeline.translate import stats_path
    from pipeline.demo.data import demo_paths

    paths = demo_paths(demo_root)
    reader = Vqav2Reader(paths.questions, paths.annotations)
    rows = next(iter(reader.iter_batches(30))).rows
    chunk = tmp_path / "chunk-00000.parquet"
    rows.write_parquet(chunk)
    settings = ProcessSettings(resolve_languages(["de", "fr"]), rules=FilterRules(min_bt_chrf=0.0))
    job = ChunkJob(model_dir=str(tiny_model_dir), engine=EngineSettings(compute_type="int8"), process=settings,
                   cache_dir=str(tmp_path / "cache"))
    first = run_chunk(ChunkPlan(str(chunk), str(tmp_path / "a" / chunk.name), ACTION_PROCESS), job)
    a = json.loads(stats_path(first).read_text())
    assert a["translation"]["requested"] >= a["translation"]["distinct"] > 0
    assert a["translation"]["dedup_factor"] > 1.0  # demo questions repeat
    assert set(a["templates"]) <= {"de", "fr"} and a["templates"]
    out = pl.read_parquet(first)
    assert out["prompt"].null_count() == 0
    assert out["answer_translated"].null_count() == 0
    second = run_chunk(ChunkPlan(str(chunk), str(tmp_path / "b" / chunk.name), ACTION_PROCESS), job)
    b = json.loads(stats_path(second).read_text())
    assert b["translation"]["cache_hit_rate"] == 1.0 and b["translation"]["translated"] == 0
    assert pl.read_parquet(second).equals(out)


def test_config_translation_knobs(tmp_path):
    from pipeline.config import load_config

    config_path = tmp_path / "run.yaml"
    config_path.write_text(
        "sources:\n  - {type: coco_captions, annotations: a.json, images: img}\n"
        "translation: {cache_dir: cache, beam_size: 2, no_repeat_ngram_size: 3, sampling_topk: 1}\n"
    )
    t = load_config(config_path).translation
    assert t.cache and t.cache_dir == (tmp_path / "cache").resolve()
    assert (t.beam_size, t.no_repeat_ngram_size, t.sampling_topk) == (2, 3, 1)
    config_path.write_text(
        "sources:\n  - {type: coco_captions, annotations: a.json, images: img}\ntranslation: {max_length_ratio: 0}\n"
    )
    with pytest.raises(ValueError, match="max_length_ratio"):
        load_config(config_path)
