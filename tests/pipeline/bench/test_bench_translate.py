"""The benchmark code on a tiny random model (its numbers mean nothing; the code path is the real one)."""

import pytest

from pipeline.bench.corpus import caption_sentences, chunk_strings, vqa_stream
from pipeline.bench.translate import bench_chunk, bench_stage, print_chunk_report, print_stage_report


def test_corpus_is_deterministic_and_repetitive():
    assert caption_sentences(5, seed=1) == caption_sentences(5, seed=1)
    pairs = vqa_stream(2000, seed=0)
    assert pairs == vqa_stream(2000, seed=0)
    assert len({q for q, _ in pairs}) < len(pairs) / 3  # VQAv2-like repetition
    assert {"yes", "no"} <= {a for _, a in pairs}


def test_chunk_strings_are_distinct_with_caption_and_question_lengths():
    strings = chunk_strings(2000, seed=3)
    assert len(strings) == len(set(strings)) == 2000 and strings == chunk_strings(2000, seed=3)
    questions = [s for s in strings if s.endswith("?")]
    assert 0.25 < len(questions) / len(strings) < 0.45
    words = sorted(len(s.split()) for s in strings)
    assert words[0] <= 5 and words[-1] >= 14  # short questions to long captions: buckets of many lengths


def test_chunk_bench_times_both_batching_modes_and_the_reference(tmp_path, capsys):
    result = bench_chunk(shape="tiny", strings=40, output_tokens=5, reference_sentences=12, batch_sizes=(4, 8),
                         threads=1, cache_dir=tmp_path)
    assert set(result.modes) == {"padding-free", "padded"} and set(result.reference) == {4, 8}
    assert all(t.tokens == 40 * 5 for t in result.modes.values())
    assert all(t.tokens == 12 * 5 for t in result.reference.values())
    speedup = print_chunk_report(result)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"speedup_vs_transformers: {speedup:.2f}"
    best = max(result.reference.values(), key=lambda t: t.tokens_per_s)
    assert speedup == result.modes["padding-free"].tokens_per_s / best.tokens_per_s
    assert any(line.startswith("padding_free_cost: ") for line in lines)


@pytest.mark.slow
def test_stage_bench_runs_cold_and_warm(tmp_path, capsys):
    result = bench_stage(shape="tiny", rows=40, languages=("de", "fr"), batch_size=8, threads=1, cache_dir=tmp_path,
                         reference_rows=16)
    assert result["stats_warm"]["cache_hit_rate"] == 1.0 and result["stats_warm"]["translated"] == 0
    assert result["stats_cold"]["dedup_factor"] > 1.0
    assert result["ours_warm"].examples == 40 and result["reference"].examples == 16
    share = print_stage_report(result)
    out = capsys.readouterr().out
    assert "stage_speedup_warm" in out and f"model_time_share: {share:.3f}" in out
    assert 0 < share < 1 and result["model_seconds_warm"] < result["model_seconds_cold"]
