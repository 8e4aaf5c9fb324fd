"""``mblip bench translate --levers`` on the tiny shape (the numbers mean nothing; the bookkeeping does)."""

from pipeline.bench.levers import bench_levers, lever_settings, print_levers_report
from pipeline.nllb.engine import EngineSettings


def test_each_lever_changes_one_setting_of_the_default():
    base = EngineSettings(compute_type="int8", inter_threads=2, intra_threads=1)
    levers = lever_settings(base, threads=2)
    assert levers["default"] == base
    for name, settings in levers.items():
        changed = {k for k in base.__dataclass_fields__ if getattr(settings, k) != getattr(base, k)}
        # threads move between two knobs; the map also runs one batch at a time
        expected = 0 if name == "default" else 3 if "map" in name else 2 if "at a time" in name else 1
        assert len(changed) == expected, (name, changed)
    assert "1 batch at a time on 2 threads" in levers and len(lever_settings(base, threads=1)) == len(levers) - 1


def test_levers_decode_the_same_tokens_and_report_against_the_default(tmp_path, capsys):
    results = bench_levers(shape="tiny", strings=12, output_tokens=4, threads=2, vmap_entries=100,
                           cache_dir=tmp_path)
    assert [r.name for r in results][0] == "default" and len(results) == 8
    assert "one engine call per language (95)" in [r.name for r in results]
    assert {r.tokens for r in results} == {12 * 4} and all(r.seconds > 0 for r in results)
    fastest_is_default = print_levers_report(results, 12, 4)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"default_is_fastest: {fastest_is_default}")
