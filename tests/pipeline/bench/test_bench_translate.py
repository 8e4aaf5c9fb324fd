"""The benchmark code on a tiny random model (its numbers mean nothing; the code path is the real one)."""

import pytest

from pipeline.bench.corpus import caption_sentences, vqa_stream
from pipeline.bench.translate import bench_engine, bench_stage, print_engine_report, print_stage_report


def test_corpus_is_deterministic_and_repetitive():
    assert caption_sentences(5, seed=1) == caption_sentences(5, seed=1)
    pairs = vqa_stream(2000, seed=0)
    assert pairs == vqa_stream(2000, seed=0)
    assert len({q for q, _ in pairs}) < len(pairs) / 3  # VQAv2-like repetition
    assert {"yes", "no"} <= {a for _, a in pairs}


def test_engine_bench_forces_equal_output_lengths(tmp_path, capsys):
    hf, ct2 = bench_engine(shape="tiny", sentences=6, output_tokens=5, batch_size=3, repeats=1, threads=1,
                           cache_dir=tmp_path)
    assert hf.tokens == ct2.tokens == 6 * 5
    print_engine_report(hf, ct2)
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("speedup_vs_transformers: ")


@pytest.mark.slow
def test_stage_bench_runs_cold_and_warm(tmp_path, capsys):
    result = bench_stage(shape="tiny", rows=40, languages=("de", "fr"), batch_size=8, threads=1, cache_dir=tmp_path,
                         reference_rows=16)
    assert result["stats_warm"]["cache_hit_rate"] == 1.0 and result["stats_warm"]["translated"] == 0
    assert result["stats_cold"]["dedup_factor"] > 1.0
    assert result["ours_warm"].examples == 40 and result["reference"].examples == 16
    print_stage_report(result)
    assert "stage_speedup_warm" in capsys.readouterr().out
