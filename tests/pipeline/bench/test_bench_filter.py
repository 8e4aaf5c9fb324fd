"""``mblip bench filter``, the vmap bench and the prepared GPU script, on small inputs (numbers mean nothing)."""

import json

from pipeline.bench.filter import HEURISTICS, SIDES, bench_filter, bench_filter_cost, print_cost_report, print_report
from pipeline.bench.translate import bench_vmap, print_vmap_report
from pipeline.nllb.engine import EngineSettings


def test_filter_bench_runs_both_sides_on_the_same_rows(capsys):
    result = bench_filter(limit=12, threads=1)
    decode, score = result["stage"]["decode"], result["stage"]["score"]
    assert decode.rows == score.rows == 36
    # Back-translation decodes every translation a second time; the reverse score decodes nothing more.
    assert decode.decoded_inputs > score.decoded_inputs > 0
    assert score.scored > decode.scored > 0  # the reverse pass on top of forward and margin passes
    assert set(result["quality"]) == {HEURISTICS, *SIDES.values()}
    labels = [r.label for r in result["quality"][SIDES["score"]]]
    assert labels[0] == "human" and {"unrelated", "stutter", "english_leak", "run_on"} <= set(labels)
    print_report(result)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("speedup_vs_backtranslation: ") and float(out[-1].split(": ")[1]) > 0
    assert any(line.startswith("unrelated") for line in out) and any(line.startswith("run_on") for line in out)


def test_vmap_bench_counts_equal_tokens(tmp_path, capsys):
    full, vmap, entries = bench_vmap(shape="tiny", sentences=6, output_tokens=5, vmap_entries=100, threads=1,
                                     cache_dir=tmp_path)
    assert full.tokens == vmap.tokens == 30 and entries >= 100
    print_vmap_report(full, vmap, entries)
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("vmap_speedup: ")


def test_gpu_script_runs_on_cpu_with_the_tiny_shape(tmp_path):
    from pipeline.bench.gpu import main

    out = tmp_path / "report.json"
    assert main(["--device", "cpu", "--shape", "tiny", "--compute-types", "int8", "--sentences", "4", "--tokens", "3",
                 "--lines", "5", "--repeats", "1", "--cache-dir", str(tmp_path / "models"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    run = report["runs"]["int8"]
    assert run["translate"]["speedup_vs_transformers"] > 0 and run["translate"]["vmap_speedup"] > 0
    assert run["filter"]["rows"] == 15 and run["filter"]["speedup_vs_backtranslation"] > 0
    assert run["filter"]["decode"]["decoded_inputs"] > run["filter"]["score"]["decoded_inputs"]


def test_filter_cost_at_a_model_shape_times_each_mode_against_one_translation(tmp_path, capsys):
    cost = bench_filter_cost("tiny", strings=30, threads=1, cache_dir=tmp_path)
    assert cost.rows == 30 and cost.translation > 0 and set(cost.filter) == {"decode", "score"}
    # decoding the back-translation is a second decode on top of the forward and margin scores; the reverse
    # score decodes nothing (counted, not timed: on the tiny model the seconds are too close to order)
    assert cost.decoded["decode"] > 0 and cost.decoded["score"] == 0
    assert cost.filter["decode"] > 0 and cost.filter["score"] > 0
    ratio = print_cost_report(cost)
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(f"model_cost_vs_second_translation: {ratio:.3f}")


def test_the_cost_bench_decodes_as_long_as_a_trained_model_would(tmp_path):
    from pipeline.bench.filter import FORWARD_LENGTH_RATIO, RealLengthTranslator
    from pipeline.bench.models import ensure_ct2_model

    engine = RealLengthTranslator(ensure_ct2_model("tiny", "int8", tmp_path), EngineSettings(device="cpu"))
    texts = ["A red circle.", "Two dogs run across three wide fields under a blue sky near the old town."]
    pieces = [len(p) for p in engine.sp.encode(texts, out_type=str)]
    out = engine.translate(texts, "eng_Latn", "deu_Latn")
    assert [r.decoded_tokens for r in out] == [max(1, round(FORWARD_LENGTH_RATIO * n)) for n in pieces]
    # the text stands for a trained model's output: it tokenizes back to about the decoded length, one sentence
    # (a random model's own tokens are made-up entries that re-encode to ten times as many pieces)
    again = [len(p) for p in engine.sp.encode([r.text for r in out], out_type=str)]
    assert all(abs(a - r.decoded_tokens) <= 0.2 * r.decoded_tokens + 1 for a, r in zip(again, out)), again
    assert not any(mark in r.text for r in out for mark in ".?!")
    back = engine.translate([r.text for r in out], "deu_Latn", "eng_Latn")
    assert [r.decoded_tokens for r in back] == [max(1, round(n / FORWARD_LENGTH_RATIO)) for n in again]


def test_fewer_contrast_sources_score_fewer_pairs_and_the_cli_default_is_the_runs(tmp_path):
    import argparse

    from mblip.bench import add_parsers

    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers())
    assert parser.parse_args(["bench", "filter"]).contrasts is None  # as a run: filter.contrasts null (auto)
    auto = bench_filter_cost("tiny", strings=12, threads=1, cache_dir=tmp_path)
    one = bench_filter_cost("tiny", strings=12, threads=1, cache_dir=tmp_path, contrasts=1)
    four = bench_filter_cost("tiny", strings=12, threads=1, cache_dir=tmp_path, contrasts=4)
    # per row: the reverse score (score mode) plus one forced pass per contrast; forward scores come free
    assert four.scored["score"] - one.scored["score"] == 3 * one.rows
    assert one.own_scores == four.own_scores == one.rows
    # the default filter settings have no margin rule on: no contrast is scored, only the reverse score
    assert auto.contrasts == 0 and auto.scored["score"] == one.scored["score"] - one.rows == auto.rows
