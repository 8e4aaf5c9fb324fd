import pytest

from pipeline.filters import signals


PAIRS = [
    ("Ein Mann schläft auf einem Sofa.", "A man sleeping on a couch."),
    ("A man sleeping on a couch.", "A man sleeping on a couch."),
    ("", "A man."),
    ("A man.", ""),
    ("(hi) there!! a a a", "hi there, a a"),
    ("一个男人在莫斯科。", "A man in Moscow."),
    ("x", "y"),
    ("Zwei Hunde laufen über 3 Felder", "Two dogs run across 3 fields"),
]


def test_chrf_matches_sacrebleu_sentence_chrf_plus_plus():
    from sacrebleu.metrics import CHRF

    metric = CHRF(word_order=2)
    hyps, refs = zip(*PAIRS)
    ours = signals.chrf_pp_batch(list(hyps), list(refs))
    theirs = [metric.sentence_score(h, [r]).score for h, r in PAIRS]
    assert ours == pytest.approx(theirs, abs=1e-9)
    assert ours[1] == pytest.approx(100.0)


def test_copy_overlap_separates_copies_from_translations_and_ignores_names_and_numbers():
    src = ["A man in a blue shirt walks in Paris.", "A man in a blue shirt walks in Paris.",
           "With Barack Obama in 2008", "3"]
    tgt = ["Ein Mann in einem blauen Hemd läuft in Paris.", "A man in a blue Hemd walks in Paris.",
           "Avec Barack Obama en 2008", "3"]
    human, near_copy, names_only, digits_only = signals.copy_overlap(src, tgt)
    assert human < 0.3
    assert near_copy > 0.8
    assert names_only == 0.0  # "with" and "in" are the ordinary words and neither is in the target
    assert digits_only is None


def test_repetition_signals_flag_loops_and_not_language():
    texts = ["cada vez cada vez cada vez", "Ein Mann schläft auf einem Sofa.", "一个男人男人男人男人男人",
             "very very good"]
    scripts = ["Latn", "Latn", "Hans", "Latn"]
    runs = signals.longest_repeat_run(texts, scripts)
    assert runs == [3, 1, 5, 2]
    shares = signals.repeated_ngram_share(texts, scripts)
    assert shares[0] >= 0.5 and shares[1] == 0.0 and shares[2] >= 0.5
    loop, normal = signals.compression_ratio(["Ein Mann " * 20, "Ein Mann schläft auf einem Sofa."])
    assert loop > 3 > normal


def test_length_ratio_uses_per_language_expectation():
    src = "A man in an orange shirt is taking a picture."
    translations = ["Muž v oranžovém triku fotí.", "Ein Mann in einem orangen Hemd fotografiert.",
                    "穿橙色衬衫的男人在拍照。"]
    cs, de, zh = signals.length_ratio([src] * 3, translations, ["ces_Latn", "deu_Latn", "zho_Hans"])
    assert 0.6 < cs < 0.8  # short, but Czech is expected short
    assert 0.8 < de < 1.1
    assert 0.5 < zh < 1.0
    assert signals.length_ratio([""], ["x"], ["deu_Latn"]) == [None]


def test_short_inputs_must_not_become_sentences():
    out = signals.short_input_inflated(
        ["yes", "yes", "2", "A man in a blue shirt walks."],
        ["Ja", "Ja, das ist richtig so und gut.", "zwei", "Ein Mann."],
        ["Latn"] * 4,
    )
    assert out == [False, True, False, None]


def test_char_stutter_counts_copies_of_a_unit_inside_and_across_words():
    texts = ["Der Mann zezezezeigt auf das Haus.", "Whatatatatatatat se tient sur le image?", "at at at at",
             "Mississippi", "Ein Couscous-Teller.", "Die Schifffahrt", "aaaaaa", "2000 Menschen...!!!!!!", ""]
    assert signals.char_stutter(texts) == [4, 7, 3, 2, 2, 1, 3, 1, 1]


def test_char_stutter_on_human_translations_stays_at_two():
    # Real Multi30k captions with the most back-to-back repeats of a short unit.
    human = ["Ein Mann spielt Bongos und Tamtam.", "Un homme mange du couscous à Mississippi.",
             "Dva psi si hrají s míčem na na trávníku."]
    assert max(signals.char_stutter(human)) <= 2


def test_english_leak_counts_words_left_in_english_but_not_borrowings_or_names():
    borrowed = {"deu_Latn": frozenset({"in", "jeans", "an"})}
    src = ["A man in a blue shirt is standing on the street.", "A man in a blue shirt is standing on the street.",
           "A woman in jeans plays baseball with Roger.", "Two dogs.", "A man in a blue shirt is standing."]
    tgt = ["Ein Mann in einem blauen Hemd steht auf der Straße.",
           "Ein Mann in einem blauen Hemd is standing on the street.",
           "Eine Frau in Jeans spielt Baseball mit Roger.", "Zwei Hunde.", "Un hombre in a blue shirt está de pie."]
    langs = ["deu_Latn", "deu_Latn", "deu_Latn", "deu_Latn", "spa_Latn"]
    human, half, borrowing, short, no_list = signals.english_leak(src, tgt, langs, borrowed=borrowed)
    assert human == 0.0
    assert half >= 0.5  # "is standing on the street" (function words count where the language has a list)
    # "jeans", "in" (borrowed) and "Roger" (a name) do not count: 1 ("baseball", not in this list) of a, woman,
    # plays, baseball, with
    assert borrowing == 0.2
    assert short is None  # fewer than 3 words count
    # Spanish has no list here: only content words count ("man", "blue", "shirt", "standing"); 2 of 4 leak.
    assert no_list == 0.5


def test_the_shipped_borrowed_lists_cover_the_multi30k_languages():
    lists = signals.borrowed_words()
    assert {"deu_Latn", "fra_Latn", "ces_Latn"} <= set(lists)
    assert "jeans" in lists["deu_Latn"] and "restaurant" in lists["fra_Latn"]
    assert "blue" not in lists["deu_Latn"] and "man" not in lists["ces_Latn"]


def test_split_sentences():
    assert signals.split_sentences("Ein Mann läuft. Ein Hund spielt!") == ["Ein Mann läuft.", "Ein Hund spielt!"]
    assert signals.split_sentences("Ein Mann läuft") == ["Ein Mann läuft"]
    assert signals.split_sentences("我很好。你呢？") == ["我很好。", "你呢？"]
    assert signals.split_sentences("Wow... ein Hund. 2.") == ["Wow... ein Hund. 2."]
