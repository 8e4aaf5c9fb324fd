"""A translation and a score are functions of their own input only, not of what they were batched
with: a cache filled by another run, a resumed chunk, or a regeneration of some languages must give
the rows of a fresh run. Padding made int8 results depend on the batch (a greedy choice flipped
about once in 150 strings, scores moved by up to 1e-3); batches now hold one length only."""

import json

import pytest

from pipeline.nllb.engine import EngineSettings, length_buckets, load_translator, padding_free_groups
from pipeline.nllb.shipped import shipped_model_dir

TARGETS = ("deu_Latn", "fra_Latn", "ces_Latn")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from pipeline.demo.data import generate_demo_data

    paths = generate_demo_data(tmp_path_factory.mktemp("demo"), n_images=600, seed=0)
    return json.loads(paths.captions.read_text())["annotations"], json.loads(paths.questions.read_text())["questions"]


@pytest.fixture(scope="module")
def texts(demo):
    captions, questions = demo
    return sorted({a["caption"] for a in captions[:400]} | {q["question"] for q in questions[:200]})


def test_a_chunk_translated_for_one_language_matches_each_string_alone(translator, demo):
    """The demo's second caption chunk, all German (as a run with ``languages: [de]`` sends it): with
    padding, one of its strings came out differently than alone or in a de/fr/cs run."""
    chunk = list(dict.fromkeys(a["caption"] for a in demo[0][1000:2000]))
    together = [r.text for r in translator.translate(chunk, "eng_Latn", "deu_Latn")]
    alone = [translator.translate([t], "eng_Latn", "deu_Latn")[0].text for t in chunk]
    assert together == alone


@pytest.fixture(scope="module")
def translator():
    return load_translator(shipped_model_dir(), EngineSettings(device="cpu", compute_type="int8", intra_threads=1))


def test_translation_alone_equals_translation_in_any_batch(translator, texts):
    targets = [TARGETS[i % 3] for i in range(len(texts))]
    alone = [translator.translate([t], "eng_Latn", g)[0].text for t, g in zip(texts, targets)]
    together = [r.text for r in translator.translate(texts, "eng_Latn", targets)]
    half = [r.text for r in translator.translate(texts[::2], "eng_Latn", targets[::2])]
    assert together == alone
    assert half == alone[::2]


def test_score_alone_equals_score_in_any_batch(translator, texts):
    hyps = [r.text for r in translator.translate(texts[:120], "eng_Latn", "deu_Latn")]
    together = translator.score(texts[:120], hyps, "eng_Latn", "deu_Latn")
    alone = [translator.score([s], [h], "eng_Latn", "deu_Latn")[0] for s, h in zip(texts[:120], hyps)]
    assert together == alone  # bit for bit


def test_buckets_hold_one_length_within_the_budget():
    lengths = [3, 4, 12, 3, 30, 4, 3]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    assert length_buckets(order, lengths, budget=1000) == [[0, 3, 6], [1, 5], [2], [4]]
    assert length_buckets(order, lengths, budget=6) == [[0, 3], [6], [1], [5], [2], [4]]
    shapes = [(3, 5), (3, 6), (3, 5)]
    assert padding_free_groups([0, 1, 2], shapes, [8, 9, 8], budget=100) == [[0, 2], [1]]


def test_padded_mode_is_a_knob_and_keys_the_cache(demo):
    padded = EngineSettings(device="cpu", compute_type="int8", intra_threads=1, batch_invariant=False)
    assert padded.decoding_key() != EngineSettings(compute_type="int8").decoding_key()
    translator = load_translator(shipped_model_dir(), padded)
    chunk = list(dict.fromkeys(a["caption"] for a in demo[0][1000:2000]))
    together = [r.text for r in translator.translate(chunk, "eng_Latn", "deu_Latn")]
    assert len(together) == len(chunk) and all(together)
