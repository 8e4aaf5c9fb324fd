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
