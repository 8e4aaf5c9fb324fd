"""``run_chunk_plan``, action by action, on a tiny real CT2 model: what each plan writes, and which plans
may load or use the model."""

import polars as pl
import pytest

from pipeline.chunks import (
    ACTION_DONE, ACTION_PROCESS, ACTION_REDECIDE, ACTION_RESCORE, ChunkJob, ChunkPlan, run_chunk_plan,
)
from pipeline.filters.rules import FilterRules
from pipeline.ingest import Vqav2Reader
from pipeline.languages import resolve_languages
from pipeline.nllb.engine import EngineSettings, load_translator
from pipeline.process import ProcessSettings
from pipeline.translate import stats_path
from pipeline.demo.data import demo_paths

TEXT_COLUMNS = ["example_id", "lang", "text_tgt", "answer_tgt", "backtranslation_en", "score_bt_chrf"]


class CountingEngine:
    """The real engine, with its translate calls counted."""

    def __init__(self, engine):
        self.engine, self.translate_calls = engine, 0

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def translate(self, *args, **kwargs):
        self.translate_calls += 1
        return self.engine.translate(*args, **kwargs)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return load_translator(tiny_model_dir, EngineSettings(compute_type="int8"))


@pytest.fixture(scope="module")
def chunk(tmp_path_factory, demo_root):
    paths = demo_paths(demo_root)
    reader = Vqav2Reader(paths.questions, paths.annotations)
    path = tmp_path_factory.mktemp("chunks") / "chunk-00000.parquet"
    next(iter(reader.iter_batches(30))).rows.write_parquet(path)
    return str(path)


def job(tiny_model_dir, rules: FilterRules | None = None, only_languages: tuple[str, ...] = (), **kw) -> ChunkJob:
    rules = rules or FilterRules(min_bt_chrf=1.0)
    settings = ProcessSettings(resolve_languages(["de", "fr", "cs"]), rules=rules, **kw)
    return ChunkJob(model_dir=str(tiny_model_dir), engine=EngineSettings(compute_type="int8"), process=settings,
                    only_languages=only_languages)


def no_model():
    raise AssertionError("this plan must not load a model")


def test_process_writes_rows_and_their_sidecar(tmp_path, chunk, engine, tiny_model_dir):
    out = run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "p" / "chunk-00000.parquet"), ACTION_PROCESS),
                         job(tiny_model_dir), lambda: engine)
    frame = pl.read_parquet(out)
    assert frame.height == pl.read_parquet(chunk).height
    assert set(frame["lang"]) <= {"de", "fr", "cs"} and frame["status"].null_count() == 0
    assert stats_path(out).is_file()


def test_redecide_uses_stored_scores_and_never_loads_the_model(tmp_path, chunk, engine, tiny_model_dir,
                                                               only_bt_rule):
    lenient = run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "a" / "chunk-00000.parquet"), ACTION_PROCESS),
                             job(tiny_model_dir, FilterRules(**only_bt_rule, min_bt_chrf=0.0)), lambda: engine)
    strict = job(tiny_model_dir, FilterRules(**only_bt_rule, min_bt_chrf=99.0))
    redecided = run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "b" / "chunk-00000.parquet"), ACTION_REDECIDE,
                                         redecide_from=str(lenient)), strict, no_model)
    fresh = run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "c" / "chunk-00000.parquet"), ACTION_PROCESS), strict,
                           lambda: engine)
    assert pl.read_parquet(redecided).equals(pl.read_parquet(fresh))  # what a fresh run with the new rules writes
    before, after = pl.read_parquet(lenient), pl.read_parquet(redecided)
    assert (before["status"] == "kept").sum() > 0 and (after["status"] == "kept").sum() == 0
    assert stats_path(redecided).read_bytes() == stats_path(lenient).read_bytes()  # nothing was translated again


def test_rescore_adds_the_reverse_score_without_translating(tmp_path, chunk, engine, tiny_model_dir):
    decoded = run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "a" / "chunk-00000.parquet"), ACTION_PROCESS),
                             job(tiny_model_dir, reverse="decode"), lambda: engine)
    counting = CountingEngine(engine)
    rescored = run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "b" / "chunk-00000.parquet"), ACTION_RESCORE,
                                        redecide_from=str(decoded)), job(tiny_model_dir, reverse="score"),
                              lambda: counting)
    assert counting.translate_calls == 0
    fresh = run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "c" / "chunk-00000.parquet"), ACTION_PROCESS),
                           job(tiny_model_dir, reverse="score"), lambda: engine)
    assert pl.read_parquet(rescored).sort("example_id").equals(pl.read_parquet(fresh).sort("example_id"))


def test_without_contrast_sources_the_margins_stay_null_and_nothing_else_changes(tmp_path, chunk, engine,
                                                                                   tiny_model_dir):
    # no margin rule on (the run default): filter.contrasts resolves to 0 and no contrast pass is paid
    none = pl.read_parquet(run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "a" / "c.parquet"), ACTION_PROCESS),
                                          job(tiny_model_dir, contrasts=0), lambda: engine)).sort("example_id")
    four = pl.read_parquet(run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "b" / "c.parquet"), ACTION_PROCESS),
                                          job(tiny_model_dir, contrasts=4), lambda: engine)).sort("example_id")
    margins = ["score_fwd_margin", "score_sentence_margin"]
    assert four["score_fwd_margin"].null_count() < four.height
    assert all(none[c].null_count() == none.height for c in margins)
    assert none.drop(margins).equals(four.drop(margins))  # translations, other scores, decisions


def test_an_output_with_four_contrast_margins_is_rescored_without_margins_and_without_translating(
        tmp_path, chunk, engine, tiny_model_dir):
    # every output made before filter.contrasts has four-contrast margins; a run without a margin rule now
    # starts from it (rescore_keys) and only drops the margins
    old = run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "a" / "c.parquet"), ACTION_PROCESS),
                         job(tiny_model_dir, contrasts=4), lambda: engine)
    counting = CountingEngine(engine)
    plan = ChunkPlan(chunk, str(tmp_path / "b" / "c.parquet"), ACTION_RESCORE, redecide_from=str(old))
    rescored = run_chunk_plan(plan, job(tiny_model_dir, contrasts=0), lambda: counting)
    assert counting.translate_calls == 0
    fresh = run_chunk_plan(ChunkPlan(chunk, str(tmp_path / "c" / "c.parquet"), ACTION_PROCESS),
                           job(tiny_model_dir, contrasts=0), lambda: engine)
    assert pl.read_parquet(rescored).sort("example_id").equals(pl.read_parquet(fresh).sort("example_id"))


def test_only_languages_recomputes_just_their_rows(tmp_path, chunk, engine, tiny_model_dir):
    out = tmp_path / "p" / "chunk-00000.parquet"
    plan = ChunkPlan(chunk, str(out), ACTION_PROCESS)
    original = pl.read_parquet(run_chunk_plan(plan, job(tiny_model_dir), lambda: engine))
    assert {"de", "fr"} <= set(original["lang"])
    # stale rows in every language; only German is recomputed, the others stay as they are on disk
    original.with_columns(pl.lit("stale").alias("text_tgt")).write_parquet(out)
    done = ChunkPlan(chunk, str(out), ACTION_DONE)
    merged = pl.read_parquet(run_chunk_plan(done, job(tiny_model_dir, only_languages=("de",)), lambda: engine))
    assert merged.height == original.height
    german = merged.filter(pl.col("lang") == "de").sort("example_id")
    expected = original.filter(pl.col("lang") == "de").sort("example_id")
    assert german.select(TEXT_COLUMNS).equals(expected.select(TEXT_COLUMNS))
    assert set(merged.filter(pl.col("lang") != "de")["text_tgt"]) == {"stale"}


def _keys_with(compute_type: str, *, cuda_devices: int = 0, monkeypatch=None):
    import ctranslate2

    from pipeline.chunks import run_keys
    from pipeline.config import PipelineConfig

    if monkeypatch is not None:  # what CTranslate2 reports on a machine with a GPU
        monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: cuda_devices)
        real = ctranslate2.get_supported_compute_types
        monkeypatch.setattr(ctranslate2, "get_supported_compute_types",
                            lambda device, index=0: ({"float32", "float16", "bfloat16", "int8", "int8_float16"}
                                                     if device == "cuda" else real(device, index)))
    config = PipelineConfig.model_validate({
        "sources": [{"type": "coco_captions", "annotations": "/nonexistent/captions.json",
                     "images": "/nonexistent/images"}],
        "translation": {"compute_type": compute_type}})
    return run_keys(config, {"model_id": "m"}, config.translation.engine_settings(), {}).translation


def test_chunk_key_records_the_effective_compute_type_not_the_requested_one(monkeypatch):
    # on a CPU "auto" runs int8, so the two requests translate alike and share their chunks
    monkeypatch.setattr("ctranslate2.get_cuda_device_count", lambda: 0)
    assert _keys_with("auto") == _keys_with("int8")
    assert _keys_with("auto") != _keys_with("float32")
    cpu_auto = _keys_with("auto")
    # the same config resumed on a GPU runs int8_float16 on CUDA: its chunks must not be reused
    gpu_auto = _keys_with("auto", cuda_devices=1, monkeypatch=monkeypatch)
    assert gpu_auto != cpu_auto
    assert gpu_auto == _keys_with("int8_float16", cuda_devices=1, monkeypatch=monkeypatch)


def test_a_chunk_job_carries_the_configs_typed_settings_and_pickles():
    import pickle

    from pipeline.config import PipelineConfig

    config = PipelineConfig.model_validate({
        "sources": [{"type": "coco_captions", "annotations": "/nonexistent/captions.json", "images": "/nonexistent"}],
        "run": {"languages": ["de", "fr"]}, "assignment": {"seed": 4, "english_share": 0.3},
        "filter": {"min_bt_chrf": 12.0, "reverse": "score", "per_language": {"de": {"min_bt_chrf": 20.0}}},
        "prompts": {"translated_tasks": ["caption", "vqa"]}, "mix": {"seed": 3},
        "translation": {"compute_type": "int8", "beam_size": 2}})
    job = ChunkJob.from_config(config, "/models/m", {"caption": [0.5]}, ("de",), "/cache")
    assert pickle.loads(pickle.dumps(job)) == job  # travels to Dask workers as it is
    s = job.process
    assert [lang.code for lang in s.languages] == ["de", "fr"] and (s.seed, s.english_share) == (4, 0.3)
    assert s.rules == config.filter.rules() and s.rules.per_language and s.reverse == "score"
    assert s.prompts == config.prompts.settings() and (s.mix, s.mix_seed) == ({"caption": [0.5]}, 3)
    assert job.engine == config.translation.engine_settings() and job.engine.beam_size == 2
    assert (job.model_dir, job.only_languages, job.cache_dir) == ("/models/m", ("de",), "/cache")
    assert s.contrasts == 0  # no margin rule on: filter.contrasts (null) resolves to no margin
    margin = config.model_copy(update={"filter": config.filter.model_copy(update={"min_fwd_margin": 0.5})})
    assert ChunkJob.from_config(margin, "/models/m", {}).process.contrasts == 4


def _keys_with_filter(**filt):
    from pipeline.chunks import run_keys
    from pipeline.config import PipelineConfig

    config = PipelineConfig.model_validate({
        "sources": [{"type": "coco_captions", "annotations": "/nonexistent/captions.json", "images": "/nonexistent"}],
        "translation": {"compute_type": "int8"}, "filter": filt})
    return run_keys(config, {"model_id": "m"}, config.translation.engine_settings(), {})


def _key_with_filter(**filt) -> str:
    return _keys_with_filter(**filt).translation


def test_the_margins_contrast_sources_are_in_the_chunk_key_only_when_they_change_what_is_scored():
    from pipeline.chunks import translation_key

    default = _key_with_filter()  # no margin rule on: no margin computed
    # turning a margin rule on computes margins: processed again (the translation cache answers the texts)
    assert _key_with_filter(min_fwd_margin=0.5) != default
    # a new margin threshold is re-decided from the stored margins
    assert _key_with_filter(min_fwd_margin=0.5) == _key_with_filter(min_fwd_margin=0.9) == _key_with_filter(contrasts=4)
    assert _key_with_filter(contrasts=1) not in {default, _key_with_filter(contrasts=4)}
    # without model signals there is no margin to count
    assert _key_with_filter(backtranslate=False) == _key_with_filter(backtranslate=False, contrasts=2)
    # a run without margins may start from an output with them (the margins are dropped), not the other way
    assert _key_with_filter(contrasts=4) in _keys_with_filter().rescore_from
    assert default not in _keys_with_filter(contrasts=4).rescore_from
    # outputs made before the knob existed (four contrasts) keep their keys
    parts = ({"model_id": "m"}, "greedy", ["de"], 0, "proportional", True)
    assert translation_key(*parts) == translation_key(*parts, contrasts=4) != translation_key(*parts, contrasts=0)
