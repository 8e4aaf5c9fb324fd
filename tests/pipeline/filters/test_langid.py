from pipeline.filters.langid import langid_label, rank_language


def test_rank_of_the_target_language():
    texts = ["Ein Mann schläft in einem grünen Raum auf einem Sofa.",
             "Un homme dort dans une chambre verte sur un canapé."]
    top, ranks, probs = rank_language(texts, ["de", "de"])
    assert top == ["de", "fr"]
    assert ranks[0] == 1 and ranks[1] > 3
    assert probs[0] > 0.9 > probs[1]


def test_uncovered_languages_and_texts_without_letters_are_not_ranked():
    assert langid_label("iw") == "he" and langid_label("fil") == "tl"
    assert langid_label("ceb") is None
    top, ranks, probs = rank_language(["Ein Mann.", "42 !"], [None, "de"])
    assert top[0] == "de" and ranks[0] is None and probs[0] is None
    assert top[1] is None and ranks[1] is None
