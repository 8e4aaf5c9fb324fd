"""A translation must not depend on what it is batched with: the cache and resumed runs rely on it."""

from pipeline.nllb.engine import EngineSettings, load_translator

TEXTS = [
    "A red circle on a plain background.",
    "yes",
    "Two dogs run across 3 fields while a very long sentence keeps going with many more words in it.",
    "What color is the square?",
]


def test_outputs_are_the_same_alone_and_in_a_mixed_batch(tiny_model_dir):
    # A random-weight model rarely stops by itself, so most outputs run into the length cap: the
    # case where a cap taken from the batch's longest source would leak into shorter ones.
    translator = load_translator(tiny_model_dir, EngineSettings(max_length_ratio=2.0, max_batch_tokens=4096))
    together = [t.text for t in translator.translate(TEXTS, "eng_Latn", "deu_Latn")]
    alone = [translator.translate([t], "eng_Latn", "deu_Latn")[0].text for t in TEXTS]
    assert together == alone
    lengths = [t.tokens for t in translator.translate(TEXTS, "eng_Latn", "deu_Latn")]
    assert lengths[1] < lengths[2]  # the short input really got the shorter cap


def test_auto_threads_run_one_batch_per_core_on_cpu_and_one_batch_on_a_gpu():
    auto = EngineSettings()
    assert auto.thread_split("cpu", cores=8) == (8, 1)
    assert EngineSettings(intra_threads=2).thread_split("cpu", cores=8) == (4, 2)
    assert EngineSettings(inter_threads=2).thread_split("cpu", cores=8) == (2, 4)
    assert EngineSettings(inter_threads=3, intra_threads=3).thread_split("cpu", cores=8) == (3, 3)
    assert auto.thread_split("cuda") == (1, 0)
    assert EngineSettings(use_vmap=True).thread_split("cpu", cores=8) == (1, 8)


def test_outputs_do_not_depend_on_how_threads_are_split(tiny_model_dir):
    texts = TEXTS * 6  # several buckets, so the replicas really decode batches side by side
    settings = dict(device="cpu", max_length_ratio=2.0, max_batch_tokens=32)
    replicas = load_translator(tiny_model_dir, EngineSettings(**settings, inter_threads=2, intra_threads=1))
    one_batch = load_translator(tiny_model_dir, EngineSettings(**settings, inter_threads=1, intra_threads=2))
    assert replicas.threads == (2, 1) and one_batch.threads == (1, 2)
    assert [t.text for t in replicas.translate(texts, "eng_Latn", "deu_Latn")] == \
        [t.text for t in one_batch.translate(texts, "eng_Latn", "deu_Latn")]
