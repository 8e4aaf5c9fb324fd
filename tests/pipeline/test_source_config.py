"""Source configs are typed per source type: each type takes only its own fields, an unknown field is an
error naming it, and the same YAML keeps its config hash and ingest identity (the values pinned below
were computed when one flat class held every type's fields)."""

from pathlib import Path

import pytest
import yaml

from pipeline.config import PipelineConfig, load_config, resolved_config_text
from pipeline.ingest.registry import SOURCE_CLASSES, SOURCE_TYPES
from pipeline.ingest.stage import source_fingerprint

ALL_TYPES = """\
sources:
  - {type: coco_captions, annotations: /data/coco/captions_train2014.json, images: /data/coco/train2014}
  - {type: coco_karpathy, path: /data/coco/dataset_coco.json, images: /data/coco, splits: [train]}
  - {type: vqav2, questions: /data/vqa/q.json, annotations: /data/vqa/a.json, images: /data/coco}
  - {type: vqav2_vqg, questions: /data/vqa/q.json, annotations: /data/vqa/a.json, images: /data/coco}
  - {type: aokvqa, path: /data/aokvqa/train.json, images: /data/coco, translate: true}
  - {type: llava, path: /data/llava/detail_23k.json, images: /data/coco, max_sentences: 0}
  - {type: imagenet, images: /data/imagenet/train, classes: /data/imagenet/c.json, passes: 2, languages: [de]}
  - {type: tabular, path: /data/byo.jsonl, images: /data/byo, columns: {image: f, caption: c}}
  - {type: mblip_released, path: /data/task_mix_v2_mt.json, images: /data/coco, language: de}
  - {type: web_capfilt, path: /data/ccs.json, images: /data/web, sampling: {min_captions: 3}}
  - {type: web_match, path: /data/ccs.json, images: /data/web, check_images: false, matching: {k: 5}}
run: {languages: [en, de], chunk_rows: 100}
output: {dir: /data/out}
"""
# Changed on purpose with the answer, prompt and POPE knobs, filter.langid_max_rank_unscored and the
# input_checks section (a new setting changes every config's hash); aokvqa, llava (POPE, the
# detail/conversation sentence rule) and imagenet (label keys mapped as the reference) read their files again.
# And with translation.inter_threads' default 0 (auto: one batch per CPU core), which changes no output, and the
# stutter, English-leak and sentence-margin knobs of the filter, and filter.contrasts.
PINNED_HASH = "563bdd5e305ef34e"
PINNED_FINGERPRINTS = {
    "coco_captions": "4cb9d78597f44cc2", "coco_karpathy": "4d09c823c9cde957", "vqav2": "c9fdb1639a826ef2",
    "vqav2_vqg": "592e8ce0b2a4ea15", "aokvqa": "17163de3005db9d0", "llava": "7c203bf94c774dcb",
    "imagenet": "8e49bafc282c0ea6", "tabular": "04b0c91b03904948", "mblip_released": "ad67d9286d6fba30",
    "web_capfilt": "49c75481862bd2f2", "web_match": "53eaa2d8da3bd740",
}
# Two sources as an earlier config.resolved.yaml wrote them: every type's fields on each source.
LEGACY_SHARED = {
    "name": None, "questions": None, "classes": None, "labels": None, "synsets": None, "passes": 8, "seed": 0,
    "languages": [], "tasks": [], "translate": False, "max_sentences": 3, "columns": {}, "format": None,
    "language": "detect", "retranslate": False, "splits": ["train", "restval"],
    "sampling": {"spacy_model": "en_core_web_sm", "min_captions": 10, "max_captions": 30, "seed": 0, "n_process": -1},
}
LEGACY_SOURCES = [
    {**LEGACY_SHARED, "type": "coco_captions", "annotations": "/data/coco/captions_train2014.json", "path": None,
     "images": "/data/coco/train2014", "check_images": True,
     "matching": {"model": "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K", "device": "auto", "batch_size": 256,
                  "pool_offset": 1000, "pool_size": 600000, "k": 300, "exact_limit": 1000000, "seed": 0}},
    {**LEGACY_SHARED, "type": "web_match", "annotations": None, "path": "/data/ccs.json", "images": "/data/web",
     "check_images": False,
     "matching": {"model": "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K", "device": "auto", "batch_size": 256,
                  "pool_offset": 1000, "pool_size": 600000, "k": 5, "exact_limit": 1000000, "seed": 0}},
]


@pytest.fixture()
def all_types(tmp_path) -> Path:
    path = tmp_path / "all.yaml"
    path.write_text(ALL_TYPES)
    return path


def test_every_type_is_parsed_into_its_own_class_and_keeps_its_hash_and_ingest_identity(all_types):
    config = load_config(all_types)
    assert [s.type for s in config.sources] == list(SOURCE_TYPES)
    assert [type(s) for s in config.sources] == list(SOURCE_CLASSES)
    assert config.config_hash() == PINNED_HASH
    fingerprints = {s.source_name: source_fingerprint({**s.ingest_params(config.work_dir),
                                                       "check_images_under": s.image_root or ""}, 100)
                    for s in config.sources}
    assert fingerprints == PINNED_FINGERPRINTS


def test_resolved_config_lists_each_sources_own_fields_and_loads_back(all_types, tmp_path):
    config = load_config(all_types)
    resolved = yaml.safe_load(resolved_config_text(config))
    coco = resolved["sources"][0]
    assert set(coco) == {"type", "name", "images", "check_images", "annotations"}
    assert "matching" in resolved["sources"][10] and "matching" not in resolved["sources"][9]
    again = tmp_path / "config.resolved.yaml"
    again.write_text(resolved_config_text(config))
    assert load_config(again) == config


def test_an_older_resolved_config_with_every_types_fields_still_loads(tmp_path):
    path = tmp_path / "config.resolved.yaml"
    path.write_text(yaml.safe_dump({"sources": LEGACY_SOURCES, "output": {"dir": "/data/out"}}))
    config = load_config(path)
    assert [type(s).__name__ for s in config.sources] == ["CocoCaptionsSource", "WebMatchSource"]
    assert config.sources[1].matching.k == 5 and config.sources[1].check_images is False
    written = tmp_path / "new.yaml"
    written.write_text(yaml.safe_dump({"sources": [
        {"type": "coco_captions", "annotations": "/data/coco/captions_train2014.json",
         "images": "/data/coco/train2014"},
        {"type": "web_match", "path": "/data/ccs.json", "images": "/data/web", "check_images": False,
         "matching": {"k": 5}}], "output": {"dir": "/data/out"}}))
    assert config.config_hash() == load_config(written).config_hash()


@pytest.mark.parametrize("source, field", [
    ({"type": "coco_captions", "annotations": "a.json", "images": ".", "seed": 3}, "seed"),
    ({"type": "vqav2", "questions": "q.json", "annotations": "a.json", "images": ".", "splits": ["train"]}, "splits"),
    ({"type": "web_capfilt", "path": "c.json", "images": ".", "matching": {"k": 3}}, "matching"),
])
def test_a_field_that_is_not_the_types_is_an_error_naming_it(source, field):
    with pytest.raises(ValueError, match=f"{source['type']}.{field}\n.*Extra inputs are not permitted"):
        PipelineConfig.model_validate({"sources": [source]})


def test_required_files_and_unknown_types_are_errors():
    with pytest.raises(ValueError, match="tabular.columns\n.*Field required"):
        PipelineConfig.model_validate({"sources": [{"type": "tabular", "path": "t.csv", "images": "."}]})
    with pytest.raises(ValueError, match="vqav2.annotations\n.*Field required"):
        PipelineConfig.model_validate({"sources": [{"type": "vqav2", "questions": "q.json", "images": "."}]})
    with pytest.raises(ValueError, match="does not match any of the expected tags"):
        PipelineConfig.model_validate({"sources": [{"type": "coco", "path": "c.json", "images": "."}]})


def test_shipped_configs_load():
    repo = Path(__file__).resolve().parents[2]
    shipped = [p for p in sorted((repo / "configs").glob("*.yaml")) if "sources" in yaml.safe_load(p.read_text())]
    shipped += sorted((repo / "pipeline" / "demo").glob("demo*.yaml"))
    assert len(shipped) >= 5
    for path in shipped:
        assert load_config(path).sources, path
