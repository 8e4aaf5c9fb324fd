"""A row's scores and decision depend on that row only: changing only ``run.chunk_rows`` (which rows are
processed together) changes no score and no decision, the source margin's included."""

import polars as pl
import yaml

from pipeline.build import build_dataset
from pipeline.config import load_config
from pipeline.demo.data import demo_paths
from pipeline.filters.rules import FilterRules
from pipeline.ingest import CocoCaptionsReader
from pipeline.languages import resolve_languages
from pipeline.nllb.engine import load_translator
from pipeline.process import ProcessSettings, process_rows

COMPARED = ["example_id", "lang", "text_tgt", "score_fwd_logprob", "score_fwd_margin", "score_bt_logprob",
            "status", "reject_reason"]


def test_splitting_a_chunk_changes_no_score_and_no_decision(demo_root, tiny_model_dir, only_bt_rule):
    rows = next(iter(CocoCaptionsReader(demo_paths(demo_root).captions).iter_batches(60))).rows
    # The margin rule on (as with the shipped model's calibration), reverse scoring: no decoding of
    # back-translations, so the test stays fast; the margin is computed the same way in every mode.
    rules = FilterRules(**only_bt_rule).model_copy(update={"min_bt_chrf": None, "min_bt_logprob": None,
                                                           "min_fwd_margin": 0.0})
    settings = ProcessSettings(resolve_languages(["de", "fr"]), rules=rules, reverse="score")
    translator = load_translator(tiny_model_dir)
    whole = process_rows(rows, settings, translator).sort("example_id")
    parts = pl.concat([process_rows(rows[:17], settings, translator),
                       process_rows(rows[17:], settings, translator)]).sort("example_id")
    assert whole["score_fwd_margin"].null_count() == 0
    assert whole["status"].n_unique() == 2  # the margin rule decides some rows both ways
    assert parts.select(COMPARED).equals(whole.select(COMPARED))


def test_a_run_with_another_chunk_size_gives_the_same_rows(tmp_path, demo_root, tiny_model_dir, only_bt_rule):
    paths = demo_paths(demo_root)
    rules = {**only_bt_rule, "min_bt_chrf": None, "min_bt_logprob": None, "min_fwd_margin": 0.0}

    def run(name: str, rows: int) -> pl.DataFrame:
        config = {
            "sources": [{"type": "coco_captions", "annotations": str(paths.captions),
                         "images": str(paths.images / "train2014")}],
            "run": {"languages": ["de", "fr"], "chunk_rows": rows},
            "translation": {"model": str(tiny_model_dir), "compute_type": "int8"},
            "filter": {**rules, "reverse": "score"},
            "prompts": {"translated_tasks": []},
            "output": {"dir": str(tmp_path / name)},
        }
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
        build_dataset(load_config(tmp_path / f"{name}.yaml"))
        files = sorted((tmp_path / name).glob("data/*/*.parquet")) + sorted((tmp_path / name).glob("rejects/*/*"))
        return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed").sort("example_id")

    default, other = run("default", 60), run("other", 7)
    assert default.height == other.height == 60
    assert default["score_fwd_margin"].null_count() == 0 and default["status"].n_unique() == 2
    assert other.select(COMPARED).equals(default.select(COMPARED))
