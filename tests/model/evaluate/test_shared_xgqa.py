"""The published xGQA files (few-shot train_48 split, 8 languages) parse, and `mblip eval xgqa` reports
all 8 languages on them with generated placeholder images. Skipped when the files are not there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
XGQA = Path(os.environ.get("MBLIP_XGQA_DIR", REPO.parent / "shared" / "data" / "xgqa"))
LANGUAGES = ["en", "bn", "de", "id", "ko", "pt", "ru", "zh"]

pytestmark = pytest.mark.skipif(not (XGQA / "train_48.en.json.gz").is_file(), reason=f"no xGQA files in {XGQA}")


@pytest.fixture(scope="module")
def placeholder_images(tmp_path_factory) -> Path:
    from PIL import Image

    from model.evaluate.readers import read_json, xgqa_file

    root = tmp_path_factory.mktemp("xgqa-images")
    ids = {q["imageId"] for lang in LANGUAGES for q in read_json(xgqa_file(XGQA, lang, "train_48")).values()}
    for i, image_id in enumerate(sorted(ids)):
        Image.new("RGB", (32, 32), (i * 5 % 256, 80, 160)).save(root / f"{image_id}.jpg")
    return root


def test_all_8_languages_parse(placeholder_images):
    from model.evaluate.readers import read_benchmark

    data = read_benchmark("xgqa", XGQA, placeholder_images, LANGUAGES, "train_48")
    per_lang = {lang: [i for i in data.items if i.lang == lang] for lang in LANGUAGES}
    assert {lang: len(items) for lang, items in per_lang.items()} == {lang: 1490 for lang in LANGUAGES}
    assert not data.skipped
    # Same question ids and images in every language; the answers are English in every file.
    for lang in LANGUAGES[1:]:
        assert [(i.key, i.images, i.references) for i in per_lang[lang]] == [
            (i.key, i.images, i.references) for i in per_lang["en"]
        ]
    assert per_lang["de"][0].prompt.startswith("Question: ") and per_lang["de"][0].prompt.endswith(
        " Short answer in English:"
    )


def test_mblip_eval_xgqa_reports_8_languages(placeholder_images, tiny_run, tmp_path, capsys):
    from mblip.cli import main

    out = tmp_path / "xgqa.json"
    assert (
        main(
            [
                "eval",
                "xgqa",
                "--data",
                str(XGQA),
                "--images",
                str(placeholder_images),
                "--model",
                str(tiny_run["export"]),
                "--split",
                "train_48",
                "--limit",
                "4",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert list(result["languages"]) == LANGUAGES and all(row["n"] == 4 for row in result["languages"].values())
    assert result["mean_over"] == LANGUAGES[1:]
    table = capsys.readouterr().out
    assert all(f"\n{lang} " in table for lang in LANGUAGES)
