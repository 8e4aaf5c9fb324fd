"""The demo config end to end with the shipped model: English rows at their share, prompts from the
one table that `mblip caption` / `mblip ask` use, and a card that states the recipe."""

import json
import math
import shutil

import polars as pl
import yaml

from model.templates import caption_prompt, vqa_prompt
from pipeline.demo import DEMO_CONFIG
from pipeline.template_table import TEMPLATES, TRANSLATED_TEMPLATES


def test_demo_has_english_at_its_share_and_inference_prompts(tmp_path, demo_root, capsys):
    from flows.generate import generate

    shutil.copytree(demo_root, tmp_path / "demo-data")
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config_path = tmp_path / "demo.yaml"
    config_path.write_text(yaml.safe_dump(config))
    manifest = generate(str(config_path))

    out = tmp_path / "dataset"
    files = [out / f["path"] for f in manifest["files"] if f["split"] in ("kept", "rejected")]
    rows = pl.concat([pl.read_parquet(p) for p in files])
    n = rows.height
    english = rows.filter(pl.col("lang") == "en")
    share = english.height / n
    assert abs(share - 0.4384) < 4.5 * math.sqrt(0.4384 * 0.5616 / n), share
    assert (english["text_tgt"] == english["text_en"]).all() and (english["status"] == "kept").all()

    stats = json.loads((out / "stats.json").read_text())
    kept_templates = stats["processing"]["template_texts"]
    for row in rows.iter_rows(named=True):
        lang, name = row["lang"], {"en": "English", "de": "German", "fr": "French", "cs": "Czech"}[row["lang"]]
        translated = set((kept_templates.get(lang, {}).get("kept") or {}).get("caption", []))
        if row["task"] == "caption" and lang == "en":  # English rows: the plain templates as they are
            assert row["prompt"] in TRANSLATED_TEMPLATES["caption"], row["prompt"]
        elif row["task"] == "caption":
            english_ones = {caption_prompt(lang, f"k{i}") for i in range(200)}
            assert english_ones == {t.format(lang=name) for t in TEMPLATES["caption"]}
            assert row["prompt"] in english_ones | translated, row["prompt"]
        else:  # VQA: English instructions, as `mblip ask`, naming the answer's language
            answer_lang = lang if row["answer_translated"] is not False else "en"
            options = {vqa_prompt(row["text_tgt"], lang, f"k{i}", english_answer=answer_lang == "en")
                       for i in range(200)}
            assert row["prompt"] in options, row["prompt"]
    prompts = set(rows["prompt"])
    assert caption_prompt("de") in prompts  # what `mblip caption` sends

    card = (out / "README.md").read_text()
    assert "## Recipe and differences from mBLIP" in card
    assert f"English: {100 * stats['languages']['en']['assigned_share']:.2f}% of the examples" in card
    assert "Translated instruction templates per language" in card

    # The summary's kept examples are ones the filter keeps: no decoder stutter ("Whatatatatat se tient ...").
    from pipeline.filters.signals import char_stutter
    from pipeline.summary import print_summary

    capsys.readouterr()
    print_summary(out, manifest, examples=5)
    printed = capsys.readouterr().out
    assert "Reject reasons per language:" in printed
    lines = printed.splitlines()
    kept = [line for line in lines if "  ->  " in line]  # kept VQA examples: question -> translation
    kept += [lines[i] for i in range(len(lines) - 1) if lines[i].strip().startswith("-> ")
             and "(kept" in lines[i + 1]]  # captions: the translation line above a kept status
    assert max(char_stutter(kept), default=1) <= 2, kept


def test_base_only_demo_has_no_web_sources(tmp_path):
    from flows.demo import prepare_demo
    from pipeline.config import load_config
    from pipeline.demo.web import WEB_IMAGES

    config_path, _ = prepare_demo(tmp_path, images=4, base_only=True, web=True)
    assert [s.type for s in load_config(config_path).sources] == ["coco_captions", "vqav2"]
    assert not (tmp_path / "demo-data" / WEB_IMAGES).exists()  # nothing served or fetched
