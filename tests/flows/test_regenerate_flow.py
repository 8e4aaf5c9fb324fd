"""The regenerate flow: threshold changes re-decide from stored scores, subsets recompute only their
rows, and only changed output files are rewritten."""

import json
import shutil

import polars as pl

from flows.generate import generate
from flows.regenerate import regenerate
from pipeline.config import load_config
from pipeline.io import sha256_file
from pipeline.nllb.engine import load_translator
from pipeline.summary import print_summary


def _rows(root):
    return pl.concat([pl.read_parquet(p) for p in sorted((root / "data").rglob("*.parquet"))
                      + sorted((root / "rejects").rglob("*.parquet"))], how="diagonal_relaxed")


def _mtimes(out):
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in (out / "data").rglob("*.parquet")}


def test_threshold_change_redecides_without_translating_and_matches_a_fresh_run(
        tmp_path, demo_config, tiny_model_dir, prefect_api, same_output, set_output_aside):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    config = demo_config(min_bt_chrf=0.0, translation={"model": str(model)})
    out = tmp_path / "dataset"
    first = generate(str(config))
    assert first["run"]["chunks"]["process"] > 0
    before = _mtimes(out)

    (model / "model.bin").rename(tmp_path / "model.bin.away")  # any translation attempt now fails
    manifest = regenerate(str(out), min_bt_chrf=10.0)
    chunks = manifest["run"]["chunks"]
    assert chunks["process"] == 0 and chunks["redecide"] == first["run"]["chunks"]["process"]
    (tmp_path / "model.bin.away").rename(model / "model.bin")

    # Files with the same bytes as before were left alone.
    after = _mtimes(out)
    old = {f["path"]: f["sha256"] for f in first["files"]}
    for f in manifest["files"]:
        if old.get(f["path"]) == f["sha256"] and f["path"] in before:
            assert after[f["path"]] == before[f["path"]], f["path"]
    saved = json.loads((out / "manifest.json").read_text())
    assert saved["settings"]["filter"]["min_bt_chrf"] == 10.0 and saved["run"]["flow"] == "regenerate"

    regenerated = set_output_aside(out, "regenerated")  # a fresh run at the same path gives the same bytes
    fresh = generate(str(demo_config(name="fresh.yaml", min_bt_chrf=10.0, translation={"model": str(model)})))
    # chunks on parallel threads race for the same cache entries: the engine's work counters may differ
    same_output(out, regenerated, work_differs=True)
    assert fresh["totals"] == manifest["totals"]
    assert manifest["totals"]["kept"] < first["totals"]["kept"]  # the change mattered


def test_regenerate_languages_recomputes_only_their_rows(tmp_path, demo_config, prefect_api, capsys):
    config = demo_config()
    out = tmp_path / "dataset"
    generate(str(config))
    processed = sorted((out / "_work" / "processed").rglob("*.parquet"))
    originals = {p: pl.read_parquet(p) for p in processed}
    for p, frame in originals.items():  # stand-in for rows produced by an older, buggy build
        frame.with_columns(pl.lit("stale").alias("text_tgt")).write_parquet(p)

    manifest = regenerate(str(out), languages=["fr"])
    print_summary(out, manifest)
    chunks = len(originals)
    assert f"chunks: fr recomputed in all {chunks} ({chunks} with the other languages' rows reused, 0 processed " \
           "whole)" in capsys.readouterr().out  # it said "N reused, 0 processed"

    for p, frame in originals.items():
        now = pl.read_parquet(p).sort("example_id")
        fr, other = now.filter(pl.col("lang") == "fr"), now.filter(pl.col("lang") != "fr")
        assert fr["text_tgt"].to_list() == frame.filter(pl.col("lang") == "fr").sort("example_id")["text_tgt"].to_list()
        assert set(other["text_tgt"].to_list()) <= {"stale"}
        assert now.height == frame.height


def test_a_grown_source_reprocesses_only_new_chunks(tmp_path, demo_config, prefect_api):
    config = demo_config(chunk_rows=25)
    out = tmp_path / "dataset"
    first = generate(str(config))
    processed = {p: p.stat().st_mtime_ns for p in (out / "_work" / "processed").rglob("*.parquet")}

    captions = tmp_path / "demo-data" / "annotations" / "captions_train2014.json"
    data = json.loads(captions.read_text())
    template = data["annotations"][0]
    data["annotations"] += [dict(template, id=50_000 + i, caption=f"One more caption {i}.") for i in range(3)]
    captions.write_text(json.dumps(data))

    grown = generate(str(config))
    assert grown["run"]["chunks"]["process"] == 1  # the last caption chunk (60 -> 63 rows, 25 per chunk)
    assert grown["totals"]["records"] == first["totals"]["records"] + 3
    assert all(p.stat().st_mtime_ns == t for p, t in processed.items() if p.exists())


def test_a_new_reverse_mode_rescores_stored_outputs_without_translating(
        tmp_path, demo_config, prefect_api, same_output, set_output_aside):
    config = demo_config(min_bt_chrf=0.0, filter={"reverse": "decode", "min_bt_logprob": -5.0})
    out = tmp_path / "dataset"
    first = generate(str(config))
    n_chunks = first["run"]["chunks"]["process"]
    assert n_chunks > 0
    stored = _rows(out)
    assert stored["score_bt_logprob"].is_null().all() and stored["score_bt_chrf"].is_not_null().any()

    settings = load_config(config).translation.engine_settings()
    engine = load_translator(load_config(config).translation.model, settings)  # the flow's per-process engine
    before = dict(engine.usage)
    manifest = regenerate(str(out), reverse="score")
    chunks = manifest["run"]["chunks"]
    assert chunks["rescore"] == n_chunks and chunks["process"] == 0
    assert engine.usage["translate"] == before["translate"]  # nothing was translated again
    assert engine.usage["score"] > before["score"]  # only the reverse score was computed
    sidecars = list((out / "_work" / "processed").rglob("*.stats.json"))
    rescored = [json.loads(p.read_text())["translation"] for p in sidecars if "score_requested" in p.read_text()]
    assert rescored and all(s["scored"] + s["score_cache_hits"] > 0 for s in rescored if s["score_requested"])

    new = _rows(out)
    valid = new.filter(pl.col("sig_input_error").is_null())
    assert valid["score_bt_logprob"].is_not_null().any() and new["score_bt_chrf"].is_null().all()
    # The same outputs as a run made in the new mode from the start.
    rescored = set_output_aside(out, "rescored")
    fresh = generate(str(demo_config(name="fresh.yaml", min_bt_chrf=0.0,
                                     filter={"reverse": "score", "min_bt_logprob": -5.0})))
    assert fresh["totals"] == manifest["totals"]
    same_output(out, rescored, work_differs=True)  # the rescore counted its own scoring work


def test_margins_for_calibration_are_added_with_every_text_from_the_translation_cache(
        tmp_path, demo_config, prefect_api, same_output, set_output_aside):
    config = demo_config(min_bt_chrf=0.0)
    out = tmp_path / "dataset"
    first = generate(str(config))
    assert _rows(out)["score_fwd_margin"].is_null().all()  # no margin rule on: no contrast pass was paid

    engine = load_translator(load_config(config).translation.model, load_config(config).translation.engine_settings())
    before = dict(engine.usage)
    manifest = regenerate(str(out), contrasts=2)
    assert manifest["run"]["chunks"]["process"] == first["run"]["chunks"]["process"]
    assert engine.usage["translate"] == before["translate"]  # translations and back-translations: cache hits
    assert engine.usage["score"] > before["score"]  # the margins' contrast passes
    valid = _rows(out).filter(pl.col("sig_input_error").is_null() & (pl.col("lang") != "en"))
    assert valid["score_fwd_margin"].is_not_null().any()
    assert json.loads((out / "manifest.json").read_text())["settings"]["filter"]["contrasts"] == 2
    regenerated = set_output_aside(out, "regenerated")  # the same outputs as a run made with them from the start
    generate(str(demo_config(name="fresh.yaml", min_bt_chrf=0.0, filter={"contrasts": 2})))
    same_output(out, regenerated, work_differs=True)


def test_a_rules_file_redecides_exactly_its_rows_without_translating(
        tmp_path, demo_config, tiny_model_dir, prefect_api):
    from pipeline.calibrate import calibrate_output, write_rules

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    config = demo_config(min_bt_chrf=0.0, translation={"model": str(model)})
    out = tmp_path / "dataset"
    first = generate(str(config))
    before = _rows(out)
    # per-language cuts at each language's own 30th percentile of its back-translation chrF++
    calibration = calibrate_output(out, noisy_share=0.3, min_rows=1)
    rules_file = write_rules(calibration, tmp_path / "rules.yaml")
    cuts = {lang: o["min_bt_chrf"] for lang, o in calibration.rules.per_language.items()}
    assert set(cuts) == set(before.filter(pl.col("score_bt_chrf").is_not_null() & (pl.col("lang") != "en"))["lang"])

    settings = load_config(config).translation.engine_settings()
    engine = load_translator(str(model), settings)  # the flow's per-process engine
    usage = dict(engine.usage)
    (model / "model.bin").rename(tmp_path / "model.bin.away")  # any translation attempt now fails
    manifest = regenerate(str(out), rules=str(rules_file))
    (tmp_path / "model.bin.away").rename(model / "model.bin")
    chunks = manifest["run"]["chunks"]
    assert chunks["process"] == chunks["rescore"] == 0 and chunks["redecide"] == first["run"]["chunks"]["process"]
    assert engine.usage == usage  # nothing translated or scored

    after = _rows(out)
    joined = before.join(after, on="example_id", suffix="_new")
    assert joined.height == before.height == after.height
    assert (joined["text_tgt"] == joined["text_tgt_new"]).all()
    cut = pl.col("lang").replace_strict(cuts, default=None, return_dtype=pl.Float64)
    newly = (pl.col("status") == "kept") & (pl.col("score_bt_chrf") < cut).fill_null(False)
    expected = joined.with_columns(
        pl.when(newly).then(pl.lit("rejected")).otherwise(pl.col("status")).alias("want_status"),
        pl.when(newly).then(pl.lit("low_bt_chrf")).otherwise(pl.col("reject_reason")).alias("want_reason"))
    assert expected.filter(newly).height > 0 and expected.filter(pl.col("status") == "kept").height > \
        expected.filter(newly).height  # some rows change, not all
    assert expected["status_new"].to_list() == expected["want_status"].to_list()
    assert expected["reject_reason_new"].to_list() == expected["want_reason"].to_list()

    saved = json.loads((out / "manifest.json").read_text())
    assert saved["run"]["rules"] == {"file": str(rules_file.resolve()), "sha256": sha256_file(rules_file)}
    assert saved["settings"]["filter"]["per_language"] == calibration.rules.per_language
    card = (out / "README.md").read_text()
    assert "## Per-language thresholds" in card and "`rules.yaml`" in card
    assert (out / "plots" / "thresholds_bt_chrf.png").read_bytes()[:4] == b"\x89PNG"
