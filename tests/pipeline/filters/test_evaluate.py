import gzip

import polars as pl
import pytest

from pipeline.filters import evaluate
from pipeline.filters.evaluate import HUMAN, MODES, build_labelled_set, read_multi30k, run_evaluation

SENTENCES = {
    "en": ["Two men are loading cotton onto a truck.", "A man sleeping in a green room on a couch.",
           "A boy wearing headphones sits on a woman's shoulders.", "Three dogs run across a field."],
    "de": ["Zwei Männer laden Baumwolle auf einen Lastwagen.", "Ein Mann schläft in einem grünen Raum auf einem Sofa.",
           "Ein Junge mit Kopfhörern sitzt auf den Schultern einer Frau.", "Drei Hunde rennen über ein Feld."],
    "fr": ["Deux hommes chargent du coton sur un camion.", "Un homme dort dans une chambre verte sur un canapé.",
           "Un garçon avec des écouteurs est assis sur les épaules d'une femme.",
           "Trois chiens courent dans un champ."],
    "cs": ["Dva muži nakládají bavlnu na náklaďák.", "Muž spí na gauči v zeleném pokoji.",
           "Chlapec se sluchátky sedí ženě na ramenou.", "Tři psi běží přes pole."],
}


@pytest.fixture()
def data_dir(tmp_path):
    for lang, lines in SENTENCES.items():
        with gzip.open(tmp_path / f"val.{lang}.gz", "wt", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return tmp_path


def test_labelled_set_has_every_mode_and_is_deterministic(data_dir):
    data = read_multi30k(data_dir, "val")
    first = build_labelled_set(data)
    assert first.equals(build_labelled_set(data))
    assert not first.equals(build_labelled_set(data, seed=1))
    counts = dict(first.group_by("label").len().iter_rows())
    assert counts[HUMAN] == 12
    assert set(counts) == {HUMAN, *MODES}
    assert counts["numbers"] == 6  # the two sentences with a number, in each language
    de = first.filter(pl.col("lang") == "de")
    by_label = {label: group["text_tgt"].to_list() for (label,), group in de.group_by(["label"])}
    assert all(t in SENTENCES["fr"] + SENTENCES["cs"] for t in by_label["wrong_language"])
    assert all(t in SENTENCES["de"] and t not in by_label[HUMAN][i : i + 1]
               for i, t in enumerate(by_label["unrelated"]))
    assert all(len(t.split()) < 5 for t in by_label["truncated"])


def test_corruptions():
    import random

    assert evaluate.corrupt_script("Ein Mann", random.Random(0)).isascii() is False
    loop = evaluate.corrupt_repetition("Ein Mann schläft auf dem Sofa", random.Random(3))
    assert len(loop) > len("Ein Mann schläft auf dem Sofa")
    changed = evaluate.corrupt_numbers("Two men.", "Zwei Männer.", "de", random.Random(0))
    assert changed != "Zwei Männer." and changed is not None
    assert evaluate.corrupt_numbers("A man.", "Ein Mann.", "de", random.Random(0)) is None


def test_corruptions_modelled_on_mt_output():
    import random

    from pipeline.filters.signals import char_stutter

    stutters = [evaluate.corrupt_stutter("Der Mann zeigt auf ein Haus.", random.Random(seed)) for seed in range(20)]
    assert all(3 <= char_stutter([s])[0] <= 7 for s in stutters), stutters
    assert len(set(stutters)) > 10  # the word, the unit and the copies vary with the seed
    assert evaluate.corrupt_stutter("A b c", random.Random(0)) is None
    en, de = "A man sleeping on a green couch.", "Ein Mann schläft auf einem grünen Sofa."
    leaks = {evaluate.corrupt_english_leak(en, de, random.Random(seed)) for seed in range(10)}
    assert leaks == {"Ein Mann schläft on a green couch.", "A man sleeping auf einem grünen Sofa."}
    assert evaluate.corrupt_english_leak("Two dogs.", "Zwei Hunde.", random.Random(0)) is None
    assert evaluate.corrupt_run_on("Ein Mann.", "Ein Hund rennt.") == "Ein Mann. Ein Hund rennt."


def test_run_on_appends_another_line_of_the_same_language(data_dir):
    labelled = build_labelled_set(read_multi30k(data_dir, "val"))
    for row in labelled.filter(pl.col("label") == "run_on").iter_rows(named=True):
        own = SENTENCES[row["lang"]][row["pair"]]
        assert row["text_tgt"].startswith(own + " ")
        assert row["text_tgt"][len(own) + 1 :] in SENTENCES[row["lang"]]


def test_unaligned_files_are_reported(data_dir):
    with gzip.open(data_dir / "val.cs.gz", "wt") as f:
        f.write("jedna\n")
    with pytest.raises(ValueError, match="not aligned"):
        read_multi30k(data_dir, "val")
    with pytest.raises(FileNotFoundError, match="--data"):
        read_multi30k(data_dir, "test")


def test_filter_catches_every_heuristic_mode_on_real_human_translations():
    data_dir = evaluate.default_data_dir("val")
    if not (data_dir / "val.en.gz").exists():
        pytest.skip(f"multi30k val split not found in {data_dir}")
    results, _ = run_evaluation(data_dir, "val", limit=80, seed=3)
    rates = {r.label: r.rate for r in results["heuristics"]}
    assert rates[HUMAN] >= 0.95
    for mode in MODES:
        if mode not in ("unrelated", "run_on"):  # need the model's signals
            assert rates[mode] >= 0.9, mode
    # A run-on output is caught by its length alone when no model scored it (max_length_ratio_unscored).
    assert rates["run_on"] >= 0.7


def test_eval_filter_cli_prints_and_writes_rates(data_dir, tmp_path, capsys):
    import json

    from mblip.cli import main

    out = tmp_path / "rates.json"
    assert main(["eval-filter", "--data", str(data_dir), "--no-backtranslation", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "copy_source" in printed and "kept" in printed
    rates = {r["label"]: r for r in json.loads(out.read_text())["heuristics"]}
    assert rates["human"]["n"] == 12 and rates["copy_source"]["rate"] == 1.0


def _shipped_model_rates(limit: int | None, reverse: str) -> tuple[dict, dict]:
    """Rates on the shipped val split: heuristics alone, and with the shipped model's signals (``reverse``)."""
    from pipeline.filters.rules import load_rules
    from pipeline.nllb.engine import load_translator

    try:
        from pipeline.nllb.shipped import shipped_model_dir

        model_dir = shipped_model_dir()
    except (ImportError, FileNotFoundError):
        pytest.skip("no shipped model in this checkout")
    data_dir = evaluate.default_data_dir("val")
    if not (data_dir / "val.en.gz").exists():
        pytest.skip(f"multi30k val split not found in {data_dir}")
    results, _ = run_evaluation(
        data_dir, "val", limit=limit, seed=0, rules=load_rules(None, shipped_model=True),
        translator=load_translator(model_dir), reverse=reverse,
    )
    heuristics = {r.label: r.rate for r in results["heuristics"]}
    with_model = {r.label: r.rate for r in next(v for k, v in results.items() if k != "heuristics")}
    return heuristics, with_model


@pytest.mark.parametrize("reverse", ["decode", "score"])
def test_shipped_model_signals_on_a_sample_of_val(reverse):
    """The fast form of the quality check below (60 val lines, 180 human pairs, ~5 s a mode): the model
    signals keep human pairs and catch what the heuristics miss (unrelated sentences)."""
    heuristics, with_model = _shipped_model_rates(60, reverse)
    assert with_model[HUMAN] >= 0.95
    assert all(with_model[mode] >= 0.95 for mode in MODES), with_model
    assert heuristics["unrelated"] < 0.6  # most unrelated sentences pass every heuristic


@pytest.mark.slow
@pytest.mark.parametrize("reverse", ["decode", "score"])
def test_shipped_model_signals_on_the_whole_val_split(reverse):
    """docs/filter.md's table: on all 3 x 1014 val pairs, >= 95% of human pairs kept and of every
    corruption kind rejected, in both reverse modes."""
    heuristics, with_model = _shipped_model_rates(None, reverse)
    assert with_model[HUMAN] >= 0.95
    assert all(with_model[mode] >= 0.95 for mode in MODES), with_model
    assert heuristics["unrelated"] < 0.5
