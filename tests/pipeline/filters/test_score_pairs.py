import json

import polars as pl

from mblip.cli import main
from pipeline.filters.rules import FilterRules
from pipeline.filters.score_pairs import score_pairs_file, score_records
from pipeline.nllb.engine import load_translator

GOOD = {"src": "A man is sleeping in a green room on a couch.",
        "tgt": "Ein Mann schläft in einem grünen Raum auf einem Sofa.", "lang": "deu_Latn"}


def _write_jsonl(path, lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n")


def test_every_row_comes_back_in_order_with_a_reason(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    _write_jsonl(
        pairs,
        [
            {**GOOD, "id": 7},
            {**GOOD, "tgt": GOOD["src"]},
            "{not json",
            {"src": GOOD["src"], "lang": "deu_Latn"},
            {**GOOD, "lang": "klingon"},
            {**GOOD, "tgt": "   "},
            {**GOOD, "lang": "de"},  # project codes are accepted
            [1, 2],
            {**GOOD, "src": 3},
        ],
    )
    out = tmp_path / "scored.jsonl"
    counts = score_pairs_file(pairs, out, None)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reason"] for r in rows] == [
        None, "copy_of_source", "input:invalid_json", "input:missing_text_tgt", "input:unknown_lang",
        "input:empty_text_tgt", None, "input:not_an_object", "input:missing_text_en",
    ]
    assert [r["keep"] for r in rows] == [r["reason"] is None for r in rows]
    assert rows[0]["id"] == 7 and rows[0]["score_script_share"] == 1.0 and rows[0]["score_bt_chrf"] is None
    assert "score_langid_rank" in rows[1] and rows[1]["score_copy_overlap"] == 1.0
    assert counts["kept"] == 2 and sum(counts.values()) == 9


def test_parquet_input_and_cli(tmp_path):
    pairs = tmp_path / "pairs.parquet"
    pl.DataFrame([GOOD, {**GOOD, "tgt": "Ein Mann Mann Mann Mann Mann Mann schläft"}]).write_parquet(pairs)
    out = tmp_path / "scored.jsonl"
    assert main(["score", str(pairs), "--out", str(out), "--no-backtranslation"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reason"] for r in rows] == [None, "repetition"]
    assert main(["score", str(tmp_path / "missing.jsonl"), "--out", str(out), "--no-backtranslation"]) == 2


def test_the_source_margins_are_scored_as_a_run_scores_them(tiny_model_dir):
    translator = load_translator(tiny_model_dir)
    records = [dict(GOOD), {**GOOD, "src": "Two dogs run on the beach."}]

    def margins(rules, contrasts=None):
        return [r["score_fwd_margin"] for r in score_records([dict(x) for x in records], translator, rules,
                                                             contrasts=contrasts)]

    assert margins(FilterRules()) == [None, None]  # no margin rule on: no contrast pass
    assert None not in margins(FilterRules(min_fwd_margin=0.5))
    assert None not in margins(FilterRules(), contrasts=1)
