"""The run summary shows VQA rows kept per language and kept VQA examples with question and answer."""

import json

import polars as pl

from pipeline.outputs.stats import STATS
from pipeline.summary import print_summary


def _row(lang, task, status, i, text_en, text_tgt, answer_en=None, answer_tgt=None, prompt=None):
    return {"example_id": f"{task}-{i}", "prompt": prompt, "lang": lang, "task": task, "status": status,
            "text_en": text_en,
            "text_tgt": text_tgt, "backtranslation_en": text_en, "answer_en": answer_en, "answer_tgt": answer_tgt,
            "answer_translated": answer_tgt is not None and answer_tgt != answer_en, "score_bt_chrf": 61.0,
            "reject_reason": None if status == "kept" else "low_bt_chrf"}


def test_summary_prints_vqa_keep_rates_and_kept_questions(tmp_path, capsys):
    rows = [
        _row("de", "caption", "kept", 0, "A red circle.", "Ein roter Kreis."),
        _row("de", "vqa", "kept", 1, "What color is the circle?", "Welche Farbe hat der Kreis?", "red", "rot",
             prompt="Welche Farbe hat der Kreis? Short German answer:"),
        _row("de", "vqa", "rejected", 2, "Is the square blue?", "Ein Mann sitzt auf einer Bank.", "no", "nein"),
        _row("fr", "vqa", "rejected", 3, "Is the square blue?", "Un homme.", "no", "non"),
    ]
    (tmp_path / "data").mkdir()
    pl.DataFrame(rows).write_parquet(tmp_path / "data" / "part.parquet")
    manifest = {"files": [{"path": "data/part.parquet", "split": "kept", "rows": len(rows)}], "model": {}}
    stats = {"totals": {"records": 4, "kept": 2, "rejected": 2, "quarantined": 0},
             "languages": {"de": {"assigned": 3, "kept": 2, "rejected": 1},
                           "fr": {"assigned": 1, "kept": 0, "rejected": 1}}}
    (tmp_path / STATS).write_text(json.dumps(stats))
    print_summary(tmp_path, manifest)
    out = capsys.readouterr().out
    assert "VQA rows kept: de 1/2 (50%), fr 0/1 (0%)" in out
    assert "[de] What color is the circle?  ->  Welche Farbe hat der Kreis?" in out
    assert "answer: red -> rot" in out
    assert "prompt: Welche Farbe hat der Kreis? Short German answer:" in out  # the instruction the row trains with
    assert "Ein Mann sitzt auf einer Bank." not in out.split("VQA rows kept")[1]


def _filtered_output(tmp_path, pairs: list[tuple[str, str, str, str]]):
    """Caption rows (example_id, lang, English, translation) decided by the real filter (no model),
    written as one output with the stats the summary reads."""
    from pipeline.filters.quality import apply_quality_filter
    from pipeline.languages import get_language

    frame = pl.DataFrame(pairs, schema=["example_id", "lang", "text_en", "text_tgt"], orient="row")
    frame = frame.with_columns(pl.col("lang").map_elements(lambda c: get_language(c).nllb, return_dtype=pl.String)
                               .alias("lang_nllb"), task=pl.lit("caption"), prompt=pl.lit(None, pl.String))
    out = apply_quality_filter(frame, None)
    (tmp_path / "data").mkdir()
    out.write_parquet(tmp_path / "data" / "part.parquet")
    languages = {}
    for (lang,), part in out.group_by(["lang"], maintain_order=True):
        rejected = part.filter(pl.col("status") == "rejected")
        languages[lang] = {"assigned": part.height, "kept": part.height - rejected.height, "rejected": rejected.height,
                           "reject_reasons": dict(rejected.group_by("reject_reason").len().iter_rows())}
    totals = {"records": out.height, "kept": int((out["status"] == "kept").sum()),
              "rejected": int((out["status"] == "rejected").sum()), "quarantined": 0}
    (tmp_path / STATS).write_text(json.dumps({"totals": totals, "languages": languages}))
    return {"files": [{"path": "data/part.parquet", "split": "kept", "rows": out.height}], "model": {}}


def _printed_examples(out: str) -> list[tuple[str, str]]:
    """(translation, status) of each caption example the summary printed."""
    lines = out.split("Examples, a random sample")[1].splitlines()
    return [(lines[i].strip()[3:], lines[i + 1].split("   (")[1].split(",")[0].rstrip(")"))
            for i in range(len(lines) - 1) if lines[i].strip().startswith("-> ")]


def test_summary_shows_a_seeded_random_sample_of_kept_and_rejected_rows_and_the_reasons(tmp_path, capsys):
    colours = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple", "brown", "grey"]
    french = ["rouge", "bleu", "vert", "jaune", "noir", "blanc", "orange", "violet", "marron", "gris"]
    # The demo printed the first row by id as kept: a decoder stutter, which the stutter rule now rejects.
    pairs = [("caption-000", "fr", "What is standing on the image?", "Whatatatatatatat se tient sur le image?")]
    pairs += [(f"caption-{i + 1:03d}", "fr", f"A {c} circle in the top left corner of the picture.",
               f"Un cercle {f} dans le coin supérieur gauche de l'image.")
              for i, (c, f) in enumerate(zip(colours, french))]
    pairs += [(f"caption-{i + 20:03d}", "fr", f"A {c} square with a thin black border in the middle of the picture.",
               f"Un carré {f} avec une fine bordure noire in the middle of the picture.")  # half left in English
              for i, (c, f) in enumerate(zip(colours, french))]
    manifest = _filtered_output(tmp_path, pairs)
    print_summary(tmp_path, manifest, examples=3)
    out = capsys.readouterr().out
    printed = _printed_examples(out)
    kept = [t for t, status in printed if status == "kept"]
    rejected = [t for t, status in printed if status == "rejected"]
    assert len(kept) == 3 and len(rejected) == 3
    assert not any("Whatatat" in t for t in kept)
    # A random sample, not the first ids: the first kept ids are caption-001..003 (rouge, bleu, vert).
    assert {t.split()[2] for t in kept} != {"rouge", "bleu", "vert"}
    assert "Reject reasons per language:" in out
    assert "  fr    english_leak 10, stutter 1" in out
    print_summary(tmp_path, manifest, examples=3)
    assert _printed_examples(capsys.readouterr().out) == printed  # seeded: the same rows every time
