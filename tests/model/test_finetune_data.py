"""Task fine-tuning data: each recipe's published training format read into trainer rows, bad records set aside
naming file, record and field, the prepared data's reuse, and the recipe config (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from model.data import known_tasks, read_manifest, row_to_example
from model.finetune.config import load_finetune_config
from model.finetune.prepare import QUARANTINE_FILE, prepare_task_data
from model.finetune.readers import RECIPES
from model.finetune.samples import NLVR2_SENTENCE, write_training_samples

TRAIN_FILES = {"xgqa": "train_balanced_questions.json", "xvnli": "snli_ve_train.jsonl", "marvl": "train.json",
               "xflickrco": "dataset_flickr30k.json"}


def _rows(prepared) -> list[dict]:
    data = read_manifest(prepared.root)
    return sorted((row for f in data.files for row in pq.read_table(f.path).to_pylist()),
                  key=lambda row: row["example_id"])


def _prepare(tmp_path: Path, recipe: str, n: int = 4, **kwargs):
    train_file = write_training_samples(recipe, tmp_path / "src" / TRAIN_FILES[recipe], tmp_path / "images", n)
    return prepare_task_data(recipe, train_file, tmp_path / "images", tmp_path / "data", **kwargs)


def test_gqa_rows_take_the_xgqa_prompt_and_the_answer(tmp_path):
    prepared = _prepare(tmp_path, "xgqa")
    rows = _rows(prepared)
    assert prepared.counts == {"records": 4, "rows": 4, "quarantined": 0, "skipped": {}}
    first = rows[0]
    assert first["prompt"] == "Question: What colour is the square? Short answer in English:"
    assert (first["target"], first["image_path"], first["task"], first["lang"]) == ("red", "g0.jpg", "gqa", "en")
    example = row_to_example(first, read_manifest(prepared.root).image_roots)
    assert example.image_path == (tmp_path / "images" / "g0.jpg").resolve() and example.extra_image_paths == ()


def test_snli_ve_labels_become_the_xvnli_words_and_dash_labels_are_counted(tmp_path):
    train_file = write_training_samples("xvnli", tmp_path / "snli_ve_train.jsonl", tmp_path / "images", 3)
    with train_file.open("a") as handle:
        handle.write(json.dumps({"Flickr30K_ID": "4000", "sentence2": "Who knows.", "gold_label": "-",
                                 "pairID": "4000.jpg#0r9"}) + "\n")
    prepared = prepare_task_data("xvnli", train_file, tmp_path / "images", tmp_path / "data")
    rows = _rows(prepared)
    assert sorted(row["target"] for row in rows) == ["maybe", "no", "yes"]
    assert rows[0]["prompt"].startswith('Is it guaranteed true that "The square is ')
    assert prepared.counts["records"] == 4 and prepared.counts["quarantined"] == 0
    assert sum(prepared.counts["skipped"].values()) == 1


def test_nlvr2_rows_carry_both_images_from_the_directory_folders(tmp_path):
    prepared = _prepare(tmp_path, "marvl")
    rows = {row["example_id"]: row for row in _rows(prepared)}
    row = rows["nlvr2:train-1-0-0"]
    assert (row["image_path"], row["extra_images"]) == ("1/train-1-0-img0.png", ["1/train-1-0-img1.png"])
    assert row["prompt"] == f'Based on the two images, is it correct to say "{NLVR2_SENTENCE}"? Yes or no?'
    assert [rows[f"nlvr2:train-{i}-0-0"]["target"] for i in range(4)] == ["yes", "no", "yes", "no"]
    example = row_to_example(row, read_manifest(prepared.root).image_roots)
    root = (tmp_path / "images").resolve()
    assert example.image_paths == (root / "1" / "train-1-0-img0.png", root / "1" / "train-1-0-img1.png")


def test_karpathy_captions_of_the_train_split_one_row_per_caption(tmp_path):
    prepared = _prepare(tmp_path, "xflickrco", n=3)  # 3 train images + 1 test image, 2 captions each
    rows = _rows(prepared)
    assert len(rows) == 6 and {row["prompt"] for row in rows} == {"Caption in English: "}
    assert {row["image_path"] for row in rows} == {"6000.jpg", "6001.jpg", "6002.jpg"}
    assert prepared.counts["records"] == 4 and sum(prepared.counts["skipped"].values()) == 1


def test_bad_records_are_quarantined_naming_file_record_and_field(tmp_path):
    train_file = write_training_samples("marvl", tmp_path / "train.json", tmp_path / "images", 2)
    with train_file.open("a") as handle:
        handle.write(json.dumps({"identifier": "train-0-0-1", "label": "True"}) + "\n")  # no sentence
        handle.write("{not json\n")
        handle.write(json.dumps({"identifier": "train-9-0-0", "sentence": "x", "label": "True"}) + "\n")  # no images
        bad_label = {"identifier": "train-1-0-1", "sentence": "x", "label": "maybe", "directory": 1}
        handle.write(json.dumps(bad_label) + "\n")
    prepared = prepare_task_data("marvl", train_file, tmp_path / "images", tmp_path / "data")
    bad = [json.loads(line) for line in (prepared.root / QUARANTINE_FILE).read_text().splitlines()]
    assert [(b["record_index"], b["field"]) for b in bad] == [(2, "sentence"), (3, "(line)"), (4, "identifier"),
                                                               (5, "label")]
    assert {b["source_file"] for b in bad} == {str(train_file)} and bad[0]["record_id"] == "train-0-0-1"
    assert "missing image" in bad[2]["reason"] and "train-9-0-img0.png" in bad[2]["reason"]
    counts = prepared.counts
    assert counts["records"] == counts["rows"] + counts["quarantined"] == 6

    with pytest.raises(ValueError, match=r"train\.json, record 2 \(train-0-0-1\), field 'sentence'"):
        prepare_task_data("marvl", train_file, tmp_path / "images", tmp_path / "strict", on_bad_record="error")


def test_a_line_that_is_not_utf8_is_quarantined_with_its_line_index(tmp_path):
    train_file = write_training_samples("xvnli", tmp_path / "snli_ve_train.jsonl", tmp_path / "images", 3)
    lines = train_file.read_bytes().splitlines()
    train_file.write_bytes(b"\n".join([lines[0], lines[1].replace(b"The", b"The \xff"), lines[2]]) + b"\n")
    prepared = prepare_task_data("xvnli", train_file, tmp_path / "images", tmp_path / "data")
    [bad] = [json.loads(line) for line in (prepared.root / QUARANTINE_FILE).read_text().splitlines()]
    assert (bad["record_index"], bad["record_id"], bad["field"]) == (1, "line-1", "(line)")
    assert "byte 0xFF at column" in bad["reason"] and "not valid UTF-8" in bad["reason"]
    assert prepared.counts["rows"] == 2


def test_a_karpathy_file_without_images_says_what_it_holds(tmp_path):
    """COCO's captions file in place of Karpathy's split file: an error naming the file, not a source of 0 rows."""
    train_file = tmp_path / "dataset_flickr30k.json"
    train_file.write_text(json.dumps({"info": {}, "annotations": [{"image_id": 1, "caption": "A cat."}]}))
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match=r"dataset_flickr30k\.json: no top-level 'images' list \(top-level keys: "
                                         r"'info', 'annotations'\); is this Karpathy's split file"):
        prepare_task_data("xflickrco", train_file, tmp_path / "images", tmp_path / "data")


def test_prepared_data_is_reused_until_its_file_changes(tmp_path):
    first = _prepare(tmp_path, "xgqa")
    manifest = (first.root / "manifest.json").read_text()
    again = prepare_task_data("xgqa", tmp_path / "src" / TRAIN_FILES["xgqa"], tmp_path / "images", first.root)
    assert again.reused and (first.root / "manifest.json").read_text() == manifest
    write_training_samples("xgqa", tmp_path / "src" / TRAIN_FILES["xgqa"], tmp_path / "images", 6)
    changed = prepare_task_data("xgqa", tmp_path / "src" / TRAIN_FILES["xgqa"], tmp_path / "images", first.root)
    assert not changed.reused and changed.counts["rows"] == 6
    assert not list(tmp_path.glob(".tmp-*"))


def test_every_recipe_trains_a_task_the_trainer_knows():
    assert set(RECIPES.values()) <= known_tasks()


def _checkpoint(tmp_path: Path, make_config) -> Path:
    """A checkpoint folder as the trainer writes it, enough for the config (its weights are not read here)."""
    from model.config import config_to_yaml

    checkpoint = tmp_path / "realign" / "checkpoints" / "step-0000004"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.yaml").write_text(config_to_yaml(make_config(lora={"rank": 4})))
    (checkpoint / "trainable.safetensors").write_bytes(b"")
    (checkpoint / "state.json").write_text(json.dumps({"step": 4}))
    return checkpoint


def _finetune_yaml(tmp_path: Path, **sections) -> Path:
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "finetune" / "marvl.yaml").read_text())
    raw["train"]["output_dir"] = str(tmp_path / "ft")
    raw.update(sections)
    path = tmp_path / "marvl.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_config_takes_model_and_lora_from_the_checkpoint(tmp_path, make_config):
    checkpoint = _checkpoint(tmp_path, make_config)
    run = load_finetune_config(_finetune_yaml(tmp_path), checkpoint=str(tmp_path / "realign"), max_steps=3)
    assert run.checkpoint == checkpoint and run.train.train.init_from == str(checkpoint)
    assert run.train.lora.rank == 4 and run.train.model.llm == make_config().model.llm
    assert run.train.data.manifest == str(tmp_path / "ft" / "data") and run.train.train.max_steps == 3
    assert (run.train.data.hflip, run.train.data.crop_scale) == (False, (1.0, 1.0))  # the recipe's own knobs
    assert run.settings.recipe == "marvl" and run.evaluate.data == "data/marvl"


@pytest.mark.parametrize(("sections", "message"), [
    ({"lora": {"rank": 16}}, "LoRA's shape comes from the checkpoint"),
    ({"data": {"manifest": "out/x"}}, "data.manifest is set by the recipe"),
    ({"evaluate": {"languages": ["de"]}}, "marvl has no language de"),
])
def test_the_config_refuses_what_the_recipe_decides(tmp_path, make_config, sections, message):
    _checkpoint(tmp_path, make_config)
    with pytest.raises(ValueError, match=message):
        load_finetune_config(_finetune_yaml(tmp_path, **sections), checkpoint=str(tmp_path / "realign"))


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="finetune.checkpoint: .*nowhere"):
        load_finetune_config(_finetune_yaml(tmp_path), checkpoint=str(tmp_path / "nowhere"))


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_shipped_recipe_config_loads_with_the_trainer_rules(tmp_path, make_config, recipe):
    from model.config import accumulation_steps

    _checkpoint(tmp_path, make_config)
    path = Path(__file__).resolve().parents[2] / "configs" / "finetune" / f"{recipe}.yaml"
    run = load_finetune_config(path, checkpoint=str(tmp_path / "realign"))
    assert run.settings.recipe == recipe and run.evaluate.enabled and run.evaluate.data
    assert (run.train.train.global_batch, accumulation_steps(run.train.train, 1)) == (128, 16)
    assert run.train.train.output_dir == f"runs/mt0xl-{recipe}" and run.train.train.stage == "full"
