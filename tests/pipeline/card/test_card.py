"""Dataset card: Hub metadata rules, numbers from stats, source cards, plots, loading with datasets."""

import json
import re

import polars as pl
import pytest
import yaml

from pipeline.card.metadata import (
    HUB_LICENSES, SOURCE_CARD_KEYS, SourceCardError, derive_license, iso639, load_source_card, size_category,
    split_front_matter, validate_metadata,
)
from pipeline.ingest.registry import SOURCE_TYPES
from pipeline.languages import load_languages
from pipeline.card.plots import render_plots
from pipeline.card.sections import margin_note
from pipeline.run_record import RunRecord
from pipeline.outputs.shards import ShardLayout
from pipeline.outputs.write import write_outputs

META = RunRecord(
    config_hash="abc123", pretty_name="Test multilingual captions",
    model={"model_id": "facebook/nllb-200-distilled-600M", "revision": "f8d333a", "quantization": "int8"},
    sources={"coco_captions": "coco_captions", "vqav2": "vqav2"},
    settings={"translation": {"beam_size": 1, "max_batch_tokens": 2048},
              "filter": {"min_bt_chrf": 35.0, "per_language": {"iw": {"min_bt_chrf": 25.0}}},
              "assignment": {"mode": "proportional", "seed": 0}},
)


@pytest.fixture(scope="module")
def output(tmp_path_factory, make_processed):
    tmp_path = tmp_path_factory.mktemp("card")
    paths, counts = make_processed(tmp_path / "_work", n_rows=90, langs=("de", "iw", "fil"))
    out = tmp_path / "out"
    manifest = write_outputs(out, paths, [], META, ingest_counts=counts, layout=ShardLayout(20, 0, 10))
    return out, manifest


def _card(out):
    return split_front_matter((out / "README.md").read_text(encoding="utf-8"))


def test_card_metadata_follows_hub_rules(output):
    out, manifest = output
    meta, body = _card(out)
    assert validate_metadata(meta) == []
    assert meta["language"] == ["en", "de", "he", "tl"]  # iw -> he, fil -> tl (NLLB serves Tagalog)
    assert meta["language_details"] == ["eng_Latn", "deu_Latn", "heb_Hebr", "tgl_Latn"]
    assert meta["license"] == "cc-by-4.0"  # both sources' annotations are CC BY 4.0
    assert meta["annotations_creators"] == ["machine-generated"]
    assert meta["task_categories"] == ["image-to-text", "visual-question-answering"]
    assert meta["size_categories"] == [size_category(manifest["totals"]["kept"])] == ["n<1K"]
    assert meta["source_datasets"] == ["extended|HuggingFaceM4/COCO", "extended|HuggingFaceM4/VQAv2"]
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == {"default", "de", "iw", "fil", "rejects"}
    assert configs["default"]["default"] is True
    assert configs["iw"]["data_files"] == [{"split": "train", "path": "data/iw/*.parquet"}]


def test_card_parses_with_huggingface_hub(output):
    from huggingface_hub import DatasetCard

    out, _ = output
    card = DatasetCard((out / "README.md").read_text(encoding="utf-8"))
    data = card.data.to_dict()
    meta, _ = _card(out)
    for key in ("language", "license", "task_categories", "configs", "pretty_name", "language_details"):
        assert data[key] == meta[key]


def test_validator_rejects_values_the_hub_does_not_accept(output):
    out, _ = output
    good, _ = _card(out)
    cases = {
        "language": ["en", "iw"], "license": "cc-by-4", "size_categories": ["1K-10K"],
        "multilinguality": ["many"], "annotations_creators": ["robots"], "task_categories": ["captioning"],
        "source_datasets": ["coco"], "language_details": ["deu-Latn"],
        "configs": [{"config_name": "a", "default": True, "data_files": "a/*.parquet"},
                    {"config_name": "a", "default": True, "data_files": "../b/*.parquet"}],
    }
    for key, bad in cases.items():
        assert validate_metadata({**good, key: bad}), key
    assert validate_metadata({k: v for k, v in good.items() if k != "pretty_name"}) == ["missing pretty_name"]
    assert validate_metadata({**good, "license": "other"})  # needs license_name and license_link


def test_every_language_maps_to_a_valid_hub_code():
    codes = [iso639(lang.code) for lang in load_languages()]
    meta = {"language": codes}
    errors = [e for e in validate_metadata(meta) if e.startswith("language ")]
    assert errors == []
    assert len(set(codes)) == len(codes)
    assert iso639("iw") == "he" and iso639("fil") == "tl" and iso639("jv") == "jv" and iso639("zh") == "zh"


def test_card_numbers_come_from_stats(output):
    out, manifest = output
    stats = json.loads((out / "stats.json").read_text())
    _, body = _card(out)
    for code, s in stats["languages"].items():
        row = next(line for line in body.splitlines() if line.startswith(f"| {code} | {iso639(code)} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[4:7] == [f"{s['assigned']:,}", f"{s['kept']:,}", f"{s['rejected']:,}"]
        assert f"low_bt_chrf {s['reject_reasons']['low_bt_chrf']:,}" in cells[8]
    assert "facebook/nllb-200-distilled-600M" in body and "f8d333a" in body and "int8" in body
    assert "`per_language.iw.min_bt_chrf` | 25.0" in body
    assert "@inproceedings{goyal2017vqav2" in body and "@inproceedings{lin2014coco" in body
    assert "@inproceedings{geigle2024mblip" in body
    for rel in re.findall(r"\]\((plots/[^)]+\.png)\)", body):
        assert (out / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {f["path"] for f in manifest["meta_files"]} >= {
        "README.md", "stats.json", "plots/keep_rate.png", "plots/language_distribution.png", "plots/scores_bt_chrf.png"}


def test_plots_are_generic_over_score_columns_and_deterministic(output):
    out, _ = output
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats["scores"]) == {"score_bt_chrf", "score_length_ratio"}  # only columns with values
    stats["scores"]["score_new_signal"] = {"de": {"count": 3, "mean": 0.5, "min": 0.1, "p05": 0.1, "p25": 0.3,
                                                  "p50": 0.5, "p75": 0.7, "p95": 0.9, "max": 0.9}}
    plots = render_plots(stats)
    assert "plots/scores_new_signal.png" in plots
    assert render_plots(stats) == plots


def test_every_source_type_has_a_complete_source_card():
    types = SOURCE_TYPES
    assert types
    for source_type in types:
        card = load_source_card(source_type)
        assert all(card[k] for k in SOURCE_CARD_KEYS)
        assert card["license"] in HUB_LICENSES and "@" in card["citation"]
        assert all({"path", "config_key", "format"} <= set(f) for f in card["expected_files"])


def test_missing_source_card_names_the_file_to_add(tmp_path):
    with pytest.raises(SourceCardError, match="no_such_source.md"):
        load_source_card("no_such_source", tmp_path)


def test_license_derivation():
    assert derive_license([{"license": "cc-by-4.0"}, {"license": "cc-by-4.0"}]) == {"license": "cc-by-4.0"}
    assert derive_license([{"license": "cc-by-4.0"}, {"license": "cc-by-sa-4.0"}]) == {
        "license": ["cc-by-4.0", "cc-by-sa-4.0"]}
    odd = derive_license([{"license": "cc-by-4.0"}, {"license": "flickr-terms", "license_url": "https://x/terms"}])
    assert odd["license"] == "other" and odd["license_link"] == "https://x/terms"


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 99_999, 100_000, 2_500_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M"]


def test_datasets_polars_and_pyarrow_load_every_config(output, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets
    import pyarrow.dataset as pads

    out, manifest = output
    meta, _ = _card(out)
    rows = {"default": 0, "rejects": 0}
    for f in manifest["files"]:
        if f["split"] == "kept":
            rows[f["lang"]] = rows.get(f["lang"], 0) + f["rows"]
            rows["default"] += f["rows"]
        elif f["split"] == "rejected":
            rows["rejects"] += f["rows"]
    assert {c["config_name"] for c in meta["configs"]} == set(rows)
    for name, n in rows.items():
        ds = datasets.load_dataset(str(out), name, split="train", cache_dir=str(tmp_path / "hf-cache"))
        assert ds.num_rows == n, name
    default = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert default.num_rows == manifest["totals"]["kept"]
    assert pl.scan_parquet(out / "data/*/*.parquet").select(pl.len()).collect().item() == manifest["totals"]["kept"]
    assert pads.dataset(out / "data", format="parquet").count_rows() == manifest["totals"]["kept"]
    assert yaml.safe_load((out / "README.md").read_text().split("---")[1])["configs"] == meta["configs"]


def test_card_shows_engine_counters_from_sidecars(tmp_path, make_processed):
    from pipeline.translate import TranslationStats, write_stats_sidecar

    paths, counts = make_processed(tmp_path / "_work", n_rows=30, langs=("de",))
    for p in paths:
        write_stats_sidecar(p, TranslationStats(requested=30, distinct=10, cache_hits=4, translated=6),
                            {"de": {"kept": 9, "dropped_contains_english": 1}})
    write_outputs(tmp_path / "out", paths, [], META, ingest_counts=counts, layout=ShardLayout(100, 0, 10))
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    _, body = split_front_matter((tmp_path / "out" / "README.md").read_text())
    t = stats["processing"]["translation"]
    assert t["requested"] == 30 * len(paths) and t["dedup_factor"] == 3.0
    assert f"| requested | {t['requested']:,} |" in body and "| dedup_factor | 3.0 |" in body
    assert "| de | 1 | 9 |" in body  # columns sorted: dropped_contains_english, kept


def test_filter_thresholds_are_drawn_on_their_score_plot(output):
    from pipeline.card.plots import thresholds_from_filter

    out, _ = output
    stats = json.loads((out / "stats.json").read_text())
    assert thresholds_from_filter({"min_bt_chrf": 35.0, "max_length_ratio": 2.0, "backtranslate": True}) == {
        "score_bt_chrf": [("min_bt_chrf", 35.0)], "score_length_ratio": [("max_length_ratio", 2.0)]}
    nested = {"rules": {"min_script_share": 0.8, "per_language": {"sw": {"min_bt_chrf": 25}}}}
    assert thresholds_from_filter(nested) == {"score_script_share": [("min_script_share", 0.8)]}
    with_line = render_plots(stats, {"min_bt_chrf": 35.0})["plots/scores_bt_chrf.png"]
    assert with_line != render_plots(stats)["plots/scores_bt_chrf.png"]


def test_same_run_gives_the_same_card_and_plots(output, tmp_path):
    out, manifest = output
    work = out.parent / "_work"
    paths = sorted(work.rglob("chunk-*.parquet"))
    stats = json.loads((out / "stats.json").read_text())
    counts = {name: {"rows": s["rows"], "quarantined": s["quarantined"]} for name, s in stats["sources"].items()}
    again = write_outputs(tmp_path / "again", paths, [], META, ingest_counts=counts, layout=ShardLayout(20, 0, 10))
    assert again["meta_files"] == manifest["meta_files"]


def test_per_language_thresholds_show_each_languages_histogram_and_cut(output):
    from pipeline.card.thresholds import render_threshold_plots

    out, manifest = output
    _, body = _card(out)
    section = body.split("## Per-language thresholds\n")[1].split("\n## ")[0]
    assert "Decided by the run config's `filter` section" in section
    assert "| iw | `min_bt_chrf` | 25.0 | 35.0 |" in section  # the override and the global value
    figures = re.findall(r"\]\((plots/thresholds_[^)]+\.png)\)", section)
    assert figures == ["plots/thresholds_bt_chrf.png", "plots/thresholds_length_ratio.png"]
    for rel in figures:
        assert (out / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert rel not in body.split("## Plots\n")[1]  # not listed twice
    stats = json.loads((out / "stats.json").read_text())
    rows = pl.concat([pl.read_parquet(out / f["path"]) for f in manifest["files"] if f["split"] != "quarantine"])
    for lang, counts in stats["score_histograms"]["score_bt_chrf"]["languages"].items():
        assert sum(counts) == rows.filter(pl.col("lang") == lang)["score_bt_chrf"].count()  # kept and rejected
    # the cut drawn is each language's: another override for iw changes its figure, and only that one
    same = render_threshold_plots(stats, META.settings["filter"])
    other = render_threshold_plots(stats, {"min_bt_chrf": 35.0, "per_language": {"iw": {"min_bt_chrf": 10.0}}})
    assert same["plots/thresholds_bt_chrf.png"] == (out / "plots" / "thresholds_bt_chrf.png").read_bytes()
    assert other["plots/thresholds_bt_chrf.png"] != same["plots/thresholds_bt_chrf.png"]
    assert other["plots/thresholds_length_ratio.png"] == same["plots/thresholds_length_ratio.png"]


def test_the_card_says_whether_the_source_margins_were_computed_and_against_how_many_sources():
    # the run defaults: no margin rule on, so no contrast pass was paid and the margins are null
    assert "were not computed" in margin_note({"min_bt_chrf": 30.0, "backtranslate": True, "contrasts": None})
    # a margin rule on (the shipped model's calibration) with filter.contrasts null: four contrast sources
    assert "best of 4 other English sources" in margin_note({"min_fwd_margin": 0.5, "contrasts": None})
    assert "best of 4 other" in margin_note({"per_language": {"de": {"min_sentence_margin": 1.0}}})
    assert "best of 2 other" in margin_note({"contrasts": 2})
    assert margin_note({"no_such_knob_of_an_old_run": 1}) == ""
