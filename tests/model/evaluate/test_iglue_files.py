"""The readers and `mblip eval` on real IGLUE files: copies of the published few-shot splits of XVNLI, MaRVL and
xFlickrCO and a Flickr30k excerpt (tests/data/iglue, MIT), with generated placeholder images. The test splits
have the same formats, so what reads these reads them."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import pytest

from model.demo.benchmarks import write_placeholders
from model.evaluate.readers import read_benchmark

IGLUE = Path(__file__).resolve().parents[2] / "data" / "iglue"
XVNLI_LANGUAGES = ["en", "ar", "es", "fr", "ru"]
MARVL_LANGUAGES = ["id", "tr", "zh"]  # the few-shot files published here
XFLICKRCO_LANGUAGES = ["en", "de", "es", "id", "ja", "ru", "tr", "zh"]


def iglue_datasets(root: Path) -> Path:
    """IGLUE's ``datasets/`` layout holding a test split: xFlickrCO's seven languages (the real few-shot
    records, which have the test split's format) and Flickr30k's ``test_ann.jsonl`` beside it (the real
    excerpt). A decoy ``annotations/en/test.jsonl`` must not be read: the reference scores English on
    Flickr30k. Returns the xFlickrCO folder (``--data``)."""
    xflickrco = root / "datasets" / "xFlickrCO"
    for lang in XFLICKRCO_LANGUAGES[1:]:
        target = xflickrco / "annotations" / lang / "test.jsonl"
        target.parent.mkdir(parents=True)
        shutil.copyfile(IGLUE / "xflickrco" / "annotations" / lang / "train_10.jsonl", target)
    flickr = root / "datasets" / "flickr30k" / "annotations"
    flickr.mkdir(parents=True)
    shutil.copyfile(IGLUE / "flickr30k" / "valid_ann-first20.jsonl", flickr / "test_ann.jsonl")
    decoy = xflickrco / "annotations" / "en" / "test.jsonl"
    decoy.parent.mkdir(parents=True)
    decoy.write_text(json.dumps({"sentences": ["decoy"], "id": "1", "img_path": "decoy.jpg"}) + "\n")
    return xflickrco


def test_xvnli_pairs_without_a_gold_label_are_skipped_and_counted_in_every_language(tmp_path):
    data_dir, images = IGLUE / "xvnli", tmp_path / "images"
    assert write_placeholders("xvnli", data_dir, images, "train_5") == 5  # five Flickr30k images
    data = read_benchmark("xvnli", data_dir, images, XVNLI_LANGUAGES, "train_5")
    per_lang = {lang: [i for i in data.items if i.lang == lang] for lang in XVNLI_LANGUAGES}
    assert {lang: len(items) for lang, items in per_lang.items()} == dict.fromkeys(XVNLI_LANGUAGES, 17)
    assert data.records == 5 * 18 and len(data.skipped) == 5
    assert {s["lang"] for s in data.skipped} == set(XVNLI_LANGUAGES)
    assert {s["kind"] for s in data.skipped} == {"no gold label"}
    assert all("train_5.jsonl, line" in s["source"] and "#" in s["source"] for s in data.skipped)  # file, line, pair
    # Same pairs and labels in every language; the hypotheses are the language's own.
    for lang in XVNLI_LANGUAGES[1:]:
        assert [(i.key, i.references) for i in per_lang[lang]] == [(i.key, i.references) for i in per_lang["en"]]
    assert per_lang["fr"][0].prompt.startswith('Is it guaranteed true that "') and per_lang["fr"][0].images[0].is_file()


def test_marvl_few_shot_files_and_their_concept_image_paths(tmp_path):
    data_dir, images = IGLUE / "marvl", tmp_path / "images"
    assert write_placeholders("marvl", data_dir, images, "train2", tuple(MARVL_LANGUAGES)) == 48
    data = read_benchmark("marvl", data_dir, images, MARVL_LANGUAGES, "train2")
    assert [sum(i.lang == lang for i in data.items) for lang in MARVL_LANGUAGES] == [8, 8, 8] and not data.skipped
    first = data.items[0]
    assert first.key == "id-0" and first.references == ("yes",)
    assert first.images == (images / "id/images/39-Panci/39-n-5.jpg", images / "id/images/39-Panci/39-n-2.jpg")
    turkish = next(i for i in data.items if i.lang == "tr")
    expected = unicodedata.normalize("NFKD", "tr/images/80-Tükenmez_kalem/80-n-3.jpg")
    assert turkish.images[0] == images / expected and turkish.references == ("no",)


def test_xflickrco_english_is_flickr30k_test_ann(tmp_path):
    data_dir = iglue_datasets(tmp_path)
    data = read_benchmark("xflickrco", data_dir, tmp_path / "images", XFLICKRCO_LANGUAGES, "test", check_images=False)
    english = [i for i in data.items if i.lang == "en"]
    assert len(english) == 20 and english[0].key == "1018148011" and len(english[0].references) == 5
    assert english[0].prompt == "Caption in English: " and english[0].images[0].name == "1018148011.jpg"
    assert [sum(i.lang == lang for i in data.items) for lang in XFLICKRCO_LANGUAGES[1:]] == [10] * 7
    # The dev split of English is Flickr30k's valid_ann.jsonl.
    flickr = tmp_path / "datasets" / "flickr30k" / "annotations"
    (flickr / "test_ann.jsonl").rename(flickr / "valid_ann.jsonl")
    assert len(read_benchmark("xflickrco", data_dir, tmp_path, ["en"], "dev", check_images=False).items) == 20
    with pytest.raises(FileNotFoundError, match=r"xFlickrCO en \(Flickr30k\): none of .*test_ann\.jsonl"):
        read_benchmark("xflickrco", data_dir, tmp_path, ["en"], "test", check_images=False)


def _eval(benchmark, data, images, model, out, split, languages, limit):
    from mblip.cli import main

    argv = ["eval", benchmark, "--data", str(data), "--images", str(images), "--model", str(model), "--out", str(out),
            "--split", split, "--languages", *languages, "--batch-size", "8", "--no-progress"]
    argv += ["--limit", str(limit)] if limit else []
    assert main(argv) == 0
    return json.loads(out.read_text())


def test_mblip_eval_scores_every_language_of_the_real_files(tiny_run, tmp_path, capsys):
    images = tmp_path / "images"
    runs = [("xvnli", IGLUE / "xvnli", "train_5", XVNLI_LANGUAGES, None),
            ("marvl", IGLUE / "marvl", "train2", MARVL_LANGUAGES, None)]
    if shutil.which("java") is not None:  # CIDEr's tokenizer; 3 captions per language keep it short
        runs.append(("xflickrco", iglue_datasets(tmp_path), "test", XFLICKRCO_LANGUAGES, 3))
    results = {}
    for benchmark, data, split, languages, limit in runs:
        write_placeholders(benchmark, data, images, split, tuple(languages))
        out = tmp_path / f"{benchmark}.json"
        result = _eval(benchmark, data, images, tiny_run["export"], out, split, languages, limit)
        assert list(result["languages"]) == languages
        assert all(row["score"] is not None and row["n"] > 0 for row in result["languages"].values()), benchmark
        assert result["mean"] is not None and result["scored"] == sum(r["n"] for r in result["languages"].values())
        results[benchmark] = result
    xvnli = results["xvnli"]
    if xvnli["numerics"]["llm"] == "fp32":  # CPU (on a GPU the reference's: 8-bit LLM, fp16 vision side)
        assert xvnli["numerics"] == {"llm": "fp32", "vision_autocast": "no", "llm_autocast": "no"}
    assert xvnli["scored"] == 85 and xvnli["skipped"] == 5 and xvnli["records"] == 90
    assert xvnli["skipped_by_reason"] == {"no gold label": 5}
    assert all(row["skipped"] == 1 for row in xvnli["languages"].values())
    assert "skipped: 5 {'no gold label': 5}" in capsys.readouterr().out
    assert [row["n"] for row in results["marvl"]["languages"].values()] == [8, 8, 8]
    if "xflickrco" in results:
        assert [row["n"] for row in results["xflickrco"]["languages"].values()] == [3] * 8
