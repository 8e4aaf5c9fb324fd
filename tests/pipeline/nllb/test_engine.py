"""The CTranslate2 engine on a tiny real (random-weight) NLLB model: loading, compute types, bad input,
length caps, input order, language codes, out-of-memory retry."""

import logging

import pytest

from pipeline.languages import UnknownLanguageError, load_languages
from pipeline.nllb import engine as engine_mod
from pipeline.nllb.engine import (
    EngineSettings, NllbTranslator, clean_source, load_translator, read_vocabulary, resolve_compute_type,
    run_with_oom_retry,
)

EN, DE = "eng_Latn", "deu_Latn"


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return load_translator(tiny_model_dir, EngineSettings(compute_type="int8", max_input_tokens=16))


def test_load_translator_is_one_per_process_and_settings(tiny_model_dir):
    a = load_translator(tiny_model_dir, EngineSettings(compute_type="int8"))
    assert load_translator(str(tiny_model_dir), EngineSettings(compute_type="int8")) is a
    assert load_translator(tiny_model_dir, EngineSettings(compute_type="int8", beam_size=2)) is not a


def test_a_forked_worker_never_reuses_the_parents_translator(tiny_model_dir, monkeypatch):
    parent = load_translator(tiny_model_dir, EngineSettings(compute_type="int8"))
    # After a fork the pid differs: the per-process cache must load a fresh CT2 handle. (Forking a
    # process with live CT2 threads is itself unsafe, which is exactly why the pid is in the key.)
    monkeypatch.setattr(engine_mod.os, "getpid", lambda: -12345)
    child = load_translator(tiny_model_dir, EngineSettings(compute_type="int8"))
    assert child is not parent and child.compute_type == parent.compute_type


def test_half_precision_on_cpu_runs_as_float32_and_says_so(tiny_model_dir, caplog):
    with caplog.at_level(logging.INFO, logger="pipeline.nllb.engine"):
        t = NllbTranslator(tiny_model_dir, EngineSettings(device="cpu", compute_type="float16"))
    assert t.compute_type == "float32"
    assert any("effective float32" in r.getMessage() for r in caplog.records)
    assert t.translate(["A red circle."], EN, DE)[0].decoded_tokens > 0


def test_resolve_compute_type_fallbacks():
    cpu = {"int8", "int8_float32", "float32"}
    assert resolve_compute_type("auto", "cpu", cpu) == "int8"
    assert resolve_compute_type("bfloat16", "cpu", cpu) == "float32"
    assert resolve_compute_type("int8_float16", "cpu", cpu) == "int8"
    gpu = {"int8", "int8_float16", "float16", "float32", "int8_float32"}
    assert resolve_compute_type("auto", "cuda", gpu) == "int8_float16"
    assert resolve_compute_type("float16", "cuda", gpu) == "float16"


def test_settings_resolve_device_and_compute_type_without_a_model():
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        pytest.skip("auto resolves to CUDA on this machine")
    assert EngineSettings().resolve() == ("cpu", "int8")
    supported = set(ctranslate2.get_supported_compute_types("cpu"))
    # half precision on a CPU without fp16 kernels runs as float32 (the fallback table)
    assert EngineSettings(device="cpu", compute_type="float16").resolve() == \
        ("cpu", "float16" if "float16" in supported else "float32")
    assert EngineSettings(device="auto", compute_type="int8_float16").resolve() == \
        ("cpu", "int8_float16" if "int8_float16" in supported else "int8")
    with pytest.raises(ValueError, match="sees no CUDA device"):
        EngineSettings(device="cuda").resolve()


def test_settings_validate_knobs():
    with pytest.raises(ValueError, match="translation.device"):
        EngineSettings(device="tpu")
    with pytest.raises(ValueError, match="translation.compute_type"):
        EngineSettings(compute_type="int4")


def test_clean_source():
    assert clean_source("  a\tdog\n\n barks\x00\x07 ") == "a dog barks"
    assert clean_source("caf\u0065\u0301") == "caf\u00e9"  # NFC
    assert clean_source("bad \ud800surrogate") == "bad surrogate"
    assert clean_source(None) == "" and clean_source(" \n ") == ""


def test_bad_inputs_never_crash_and_keep_order(engine):
    long_text = "a red circle " * 40
    texts = ["", "   ", "A red\x00 circle.", "bad \udcff text", long_text, "A red circle."]
    out = engine.translate(texts, EN, DE)
    assert len(out) == len(texts)
    assert out[0].text == "" and out[1].text == "" and out[0].decoded_tokens == 0
    assert out[2].text == out[5].text  # control character removed: same input as the last one
    assert out[3].decoded_tokens > 0
    assert out[4].truncated and not out[5].truncated


def test_unknown_language_lists_valid_codes(engine):
    with pytest.raises(UnknownLanguageError, match="deu_Latn") as e:
        engine.translate(["x"], EN, "xxx_Yyyy")
    assert "xxx_Yyyy" in str(e.value)
    # project codes are accepted and mean the same language
    assert [t.text for t in engine.translate(["A red circle."], "en", "de")] == \
        [t.text for t in engine.translate(["A red circle."], EN, DE)]


def test_all_96_language_codes_in_vocabulary(tiny_model_dir):
    vocab = set(read_vocabulary(tiny_model_dir))
    codes = [lang.nllb for lang in load_languages()]
    assert len(codes) == 96
    assert not [c for c in codes if c not in vocab]


def test_forced_output_lengths(engine):
    out = engine.translate(["A red circle.", "Is the triangle blue? " * 3], EN, DE, min_decoding_length=7,
                           max_decoding_length=7)
    assert [r.decoded_tokens for r in out] == [7, 7]


def test_output_is_capped_relative_to_input_length(tiny_model_dir):
    # a token budget smaller than one input: every length bucket is decoded on its own
    t = NllbTranslator(tiny_model_dir, EngineSettings(compute_type="int8", max_length_ratio=1.0, max_batch_tokens=4))
    short, long = "red", "A simple drawing of a green triangle. " * 2
    n_short = len(t.encode([short], EN)[0][0])
    n_long = len(t.encode([long], EN)[0][0])
    assert n_short <= 8 < n_long
    # enough short inputs to fill a batch of their own (budget = at least the longest input)
    out = t.translate([short] * n_long + [long], EN, DE)
    # cap = ratio * (longest source in the bucket) + 10 decoded tokens, the language token included
    assert max(r.decoded_tokens for r in out[:-1]) <= 1.0 * 8 + 10
    assert out[-1].decoded_tokens <= 1.0 * (n_long + 8) + 10
    assert out[-1].decoded_tokens > 8 + 10  # a random model runs to its cap: the long input got a longer one


def test_results_follow_input_order(engine):
    texts = ["A red circle.", "Is the triangle blue?", "yes", "Two dogs run across 3 fields.",
             "What shape is shown in the image?"]
    forward = [r.text for r in engine.translate(texts, EN, DE)]
    backward = [r.text for r in engine.translate(texts[::-1], EN, DE)]
    assert backward == forward[::-1]


def test_one_call_with_a_target_language_per_text(engine):
    texts = ["A red circle.", "Is the triangle blue?", "yes", "A red circle."]
    targets = [DE, "zho_Hans", DE, "fr"]
    mixed = engine.translate(texts, EN, targets)
    for text, target, result in zip(texts, targets, mixed):
        assert result.text == engine.translate([text], EN, target)[0].text
    with pytest.raises(ValueError, match="target languages"):
        engine.translate(texts, EN, targets[:2])


def test_score_gives_finite_mean_log_probs(engine):
    scores = engine.score(["A red circle.", "yes"], ["Ein roter Kreis.", "ja"], EN, DE)
    assert len(scores) == 2 and all(s < 0 for s in scores)


def _fake_run(limit, calls):
    def run(items, budget):
        calls.append((tuple(items), budget))
        if budget > limit:
            raise RuntimeError("CUDA failed with error out of memory")
        return [f"r{i}" for i in items]
    return run


def test_oom_retries_with_smaller_budget_in_order():
    calls = []
    lengths = [10] * 8
    out = run_with_oom_retry(_fake_run(300, calls), list(range(8)), 1024, lengths)
    assert out == [f"r{i}" for i in range(8)]
    assert [b for _, b in calls][:3] == [1024, 512, 256]


def test_oom_gives_up_when_nothing_fits_and_other_errors_propagate():
    with pytest.raises(RuntimeError, match="out of memory"):
        run_with_oom_retry(_fake_run(10, []), [0, 1], 1024, [100, 100])

    def broken(items, budget):
        raise RuntimeError("some other failure")

    with pytest.raises(RuntimeError, match="other failure"):
        run_with_oom_retry(broken, [0], 1024, [5])


@pytest.mark.gpu
def test_cuda_half_precision_and_every_gpu(tiny_model_dir):
    import ctranslate2

    n = ctranslate2.get_cuda_device_count()
    if n == 0:
        pytest.skip("no CUDA device")
    t = NllbTranslator(tiny_model_dir,
                       EngineSettings(device="cuda", device_index=tuple(range(n)), compute_type="float16"))
    assert t.device == "cuda" and t.compute_type == "float16"
    texts = ["A red circle.", "Is the triangle blue?"] * 50
    on_gpu = t.translate(texts, EN, [DE, "fr"] * 50)
    assert len(on_gpu) == 100 and all(r.decoded_tokens > 0 for r in on_gpu)
