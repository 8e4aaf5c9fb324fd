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
