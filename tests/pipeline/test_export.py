"""Training exports: the trainer view and the mBLIP JSON format, from a finished output."""

import json

import polars as pl
import pytest

from mblip.cli import main
from pipeline.export import EnglishTemplatePrompts, RowPrompts, export_dataset, row_target
from pipeline.outputs.shards import ShardLayout
from pipeline.outputs.write import write_outputs
from pipeline.run_record import RunRecord


@pytest.fixture(scope="module")
def output(tmp_path_factory, make_processed):
    tmp = tmp_path_factory.mktemp("export")
    paths, counts = make_processed(tmp / "_work", n_rows=48, langs=("de", "fr"))
    # half the rows carry a translated prompt (as the chunk stage writes), the rest predate prompts
    for p in paths:
        frame = pl.read_parquet(p)
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("Beschreibe das Bild.")).otherwise(None)
            .alias("prompt"))
        frame.write_parquet(p)
    out = tmp / "out"
    manifest = write_outputs(out, paths, [],
                             RunRecord(config_hash="t",
                                       image_roots={"coco_captions": "/data/coco", "vqav2": "/data/vqa"}),
                             ingest_counts=counts, layout=ShardLayout(10, 0, 5), card=False)
    return out, manifest


def test_trainer_view_has_prompt_target_image_language_task(output, tmp_path):
    out, manifest = output
    result = export_dataset(out, tmp_path / "exp", formats=("trainer",), english_answer_prob=0.0)
    kept = pl.read_parquet(out / "data/*/*.parquet")
    view = pl.read_parquet(tmp_path / "exp" / "trainer/*/*.parquet")
    assert view.height == kept.height == manifest["totals"]["kept"]
    assert view.columns == ["example_id", "source", "image_id", "image_path", "image", "lang", "task", "prompt",
                            "target"]
    assert view["prompt"].null_count() == 0 and view["target"].null_count() == 0
    joined = view.join(kept, on="example_id", suffix="_row")
    assert (joined["lang"] == joined["lang_row"]).all()
    with_prompt = joined.filter(pl.col("prompt_row").is_not_null())
    assert with_prompt.height and (with_prompt["prompt"] == with_prompt["prompt_row"]).all()
    without = joined.filter(pl.col("prompt_row").is_null() & (pl.col("task") == "caption") & (pl.col("lang") == "de"))
    assert without.height and without["prompt"].str.contains("German").all()  # English template names the language
    vqa = joined.filter(pl.col("task") == "vqa")
    assert (vqa["target"] == vqa["answer_tgt"]).all()
    caption = joined.filter(pl.col("task") == "caption")
    assert (caption["target"] == caption["text_tgt"]).all()
    coco = joined.filter(pl.col("source") == "coco_captions").row(0, named=True)
    assert coco["image"] == f"/data/coco/{coco['image_path']}"
    assert sorted(f["path"] for f in result["files"]) == sorted(
        f"trainer/{f['lang']}/{f['path'].rsplit('/', 1)[1]}" for f in manifest["files"] if f["split"] == "kept")


def test_mblip_json_format(output, tmp_path):
    out, manifest = output
    assert main(["export", str(out), "--dest", str(tmp_path / "exp"), "--format", "mblip", "--languages", "de"]) == 0
    records = json.loads((tmp_path / "exp" / "mblip" / "de.json").read_text())
    kept_de = sum(f["rows"] for f in manifest["files"] if f["split"] == "kept" and f["lang"] == "de")
    assert len(records) == kept_de
    assert all(set(r) == {"context", "label", "image_id"} and r["context"] and r["label"] for r in records)
    assert all(r["image_id"].startswith(("/data/coco/", "/data/vqa/")) for r in records)
    assert not (tmp_path / "exp" / "mblip" / "fr.json").exists()
    assert not list((tmp_path / "exp").rglob(".*tmp-*"))


def test_the_answer_language_is_the_trainers_coin_flip_and_one_merged_file(output, tmp_path):
    from pathlib import Path

    from model.data import row_to_example

    out, manifest = output
    assert main(["export", str(out), "--dest", str(tmp_path / "exp"), "--format", "trainer", "mblip", "merged"]) == 0
    view = pl.read_parquet(tmp_path / "exp" / "trainer/*/*.parquet")
    kept = {r["example_id"]: r for r in pl.read_parquet(out / "data/*/*.parquet").iter_rows(named=True)}
    roots = {name: Path(root) for name, root in manifest["image_roots"].items()}
    flipped = 0
    for r in view.filter(pl.col("task") == "vqa").iter_rows(named=True):
        row = kept[r["example_id"]]
        example = row_to_example(row, roots, english_answer_prob=0.5)  # what the trainer trains on
        assert (r["prompt"], r["target"]) == (example.prompt, example.target)
        if r["target"] == row["answer_en"] != row["answer_tgt"]:
            flipped += 1
            assert "English" in r["prompt"] and row["text_tgt"] in r["prompt"]
    n_vqa = view.filter(pl.col("task") == "vqa").height
    assert 0 < flipped < n_vqa  # the reference's 50%: both answer languages occur
    per_lang = [json.loads(p.read_text()) for p in sorted((tmp_path / "exp" / "mblip").glob("??.json"))]
    merged = json.loads((tmp_path / "exp" / "mblip" / "task_mix_mt.json").read_text())
    assert merged == [record for records in per_lang for record in records]  # languages in code order
    assert len(merged) == manifest["totals"]["kept"]
    exported = json.loads((tmp_path / "exp" / "export_manifest.json").read_text())
    assert exported["english_answer_prob"] == 0.5
    assert [f for f in exported["files"] if f["format"] == "merged"][0]["rows"] == len(merged)


def test_prompt_sources_are_pluggable():
    row = {"example_id": "x1", "task": "vqa", "lang": "fr", "text_en": "What color?", "text_tgt": "Quelle couleur ?",
           "answer_en": "red", "answer_tgt": "rouge", "prompt": None}
    english = EnglishTemplatePrompts().prompt(row)
    assert "French" in english and "Quelle couleur ?" in english
    assert RowPrompts().prompt({**row, "prompt": "Réponds : Quelle couleur ?"}) == "Réponds : Quelle couleur ?"
    assert RowPrompts().prompt(row) == english
    assert "English" in EnglishTemplatePrompts().prompt({**row, "answer_translated": False})
    assert row_target(row) == "rouge" and row_target({**row, "answer_tgt": None}) == "red"


def test_export_needs_a_finished_output(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        export_dataset(tmp_path)
