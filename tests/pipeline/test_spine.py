"""The stages end to end on a tiny real CT2 model: ingest → assign → translate → back-translate → filter →
shards + manifest (``pipeline.build.build_dataset``, in process), with the row invariant checked per source."""

import json

import polars as pl
import pytest

from pipeline.demo.data import demo_paths
from pipeline.io import sha256_file
from pipeline.languages import resolve_languages
from pipeline.nllb.engine import load_translator
import yaml

from pipeline.build import build_dataset
from pipeline.config import load_config
from pipeline.ingest import CocoCaptionsReader
from pipeline.process import ProcessSettings, process_rows
from pipeline.output_dir import MANIFEST

LANGS = resolve_languages(["de", "fr", "cs"])


@pytest.fixture(scope="module")
def translator(tiny_model_dir):
    return load_translator(tiny_model_dir)


@pytest.fixture()
def caption_rows(demo_root):
    reader = CocoCaptionsReader(demo_paths(demo_root).captions)
    return next(iter(reader.iter_batches(40))).rows


def test_process_rows_translates_backtranslates_and_decides(caption_rows, translator, only_bt_rule):
    from pipeline.filters.rules import FilterRules

    lenient = FilterRules(**only_bt_rule, min_bt_chrf=0.0)  # every row with a translation is kept
    out = process_rows(caption_rows, ProcessSettings(LANGS, seed=0, rules=lenient, reverse="decode"), translator)
    assert out.height == caption_rows.height
    assert set(out["lang"]) <= {"de", "fr", "cs"}
    assert out["text_tgt"].null_count() == 0
    translated = out.filter(pl.col("text_tgt") != "")
    empty = out.filter(pl.col("text_tgt") == "")
    assert translated.height > 0
    # rows with a translation are back-translated and scored; an empty translation is an input error
    assert translated["backtranslation_en"].null_count() == 0
    scores = translated["score_bt_chrf"]
    assert scores.null_count() == 0 and scores.min() >= 0 and scores.max() <= 100
    assert translated["status"].unique().to_list() == ["kept"]
    assert set(empty["reject_reason"]) <= {"input:empty_text_tgt"}
    assert (out["status"] == "rejected").sum() == empty.height

    strict_rules = lenient.model_copy(update={"min_bt_chrf": 99.0})
    strict = process_rows(caption_rows, ProcessSettings(LANGS, seed=0, rules=strict_rules, reverse="decode"),
                          translator)
    # a random-weight model never reproduces the source: all rejected, each with its reason and score
    assert strict["status"].unique().to_list() == ["rejected"]
    assert set(strict.filter(pl.col("text_tgt") != "")["reject_reason"]) == {"low_bt_chrf"}
    assert strict.filter(pl.col("text_tgt") != "")["score_bt_chrf"].to_list() == scores.to_list()


def test_same_inputs_give_identical_rows(caption_rows, translator):
    settings = ProcessSettings(LANGS, seed=0)
    a = process_rows(caption_rows, settings, translator)
    b = process_rows(caption_rows.sample(fraction=1.0, shuffle=True, seed=1), settings, translator)
    assert a.sort("example_id").equals(b.sort("example_id"))


def test_sources_to_shards_keep_every_record(tmp_path, demo_root, tiny_model_dir):
    paths = demo_paths(demo_root)
    # a copy of the captions file with two bad records added
    data = json.loads(paths.captions.read_text())
    data["annotations"] += [{"id": 999001, "image_id": 1, "caption": ""},
                            {"id": 999002, "image_id": 424242, "caption": "x"}]
    captions = tmp_path / "captions_train2014.json"
    captions.write_text(json.dumps(data))
    out = tmp_path / "out"
    config = {
        "sources": [
            {"type": "coco_captions", "annotations": str(captions), "images": str(paths.images / "train2014")},
            {"type": "vqav2", "questions": str(paths.questions), "annotations": str(paths.annotations),
             "images": str(paths.images)},
        ],
        "run": {"languages": ["de", "fr", "cs"], "chunk_rows": 25},
        "translation": {"model": str(tiny_model_dir), "compute_type": "int8"},
        "filter": {"min_bt_chrf": 1.0},
        "output": {"dir": str(out), "shard_rows": 40, "row_group_rows": 10},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    manifest = build_dataset(load_config(tmp_path / "run.yaml"))

    n_captions = len(data["annotations"])
    n_questions = len(json.loads(paths.questions.read_text())["questions"])
    stats = json.loads((out / "stats.json").read_text())
    assert stats["sources"]["coco_captions"]["records"] == n_captions
    assert stats["sources"]["coco_captions"]["quarantined"] == 2
    assert stats["sources"]["vqav2"]["records"] == n_questions
    for s in stats["sources"].values():
        assert s["records"] == s["kept"] + s["rejected"] + s["quarantined"]

    # every manifest entry is a real file with the recorded rows and checksum, written before the manifest
    assert json.loads((out / MANIFEST).read_text()) == manifest
    total = {"kept": 0, "rejected": 0, "quarantine": 0}
    for f in manifest["files"]:
        path = out / f["path"]
        assert pl.read_parquet(path).height == f["rows"]
        assert sha256_file(path) == f["sha256"]
        total[f["split"]] += f["rows"]
    assert total["kept"] == stats["totals"]["kept"] and total["quarantine"] == 2
    assert all(f["path"].startswith(f"data/{f['lang']}/part-") for f in manifest["files"] if f["split"] == "kept")
    quarantine = pl.read_parquet(out / "quarantine" / "part-00000.parquet")
    assert set(quarantine["reason"]) == {"empty text", "image 424242 is not listed in 'images'"}
