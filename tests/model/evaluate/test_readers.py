"""The readers on files in each benchmark's official layout: items, prompts, references, and bad input."""

from __future__ import annotations

import json
import unicodedata

import pytest

from model.evaluate.readers import BenchmarkFormatError, read_benchmark


def read(name, files, **kwargs):
    data, images, languages = files(name)
    return read_benchmark(name, data, images, kwargs.pop("languages", languages), kwargs.pop("split", "test"), **kwargs)


def test_xm3600_one_item_per_image_and_language_with_the_paper_prompt(benchmark_files):
    data = read("xm3600", benchmark_files)
    assert len(data.items) == 2 * 5 and data.records == 10
    de = [i for i in data.items if i.lang == "de"][0]
    assert de.prompt == "Caption in German: " and de.references == ("ein Quadrat", "eine Form")
    assert de.images[0].name == "00a1b2c3d4e5f601.jpg"


def test_prompts_and_labels_of_the_question_benchmarks(benchmark_files):
    xgqa = read("xgqa", benchmark_files)
    assert [(i.key, i.lang) for i in xgqa.items] == [("1001", "en"), ("1002", "en"), ("1001", "de"), ("1002", "de")]
    assert xgqa.items[2].prompt == "Question: Welche Farbe hat das Quadrat? Short answer in English:"
    assert xgqa.items[2].references == ("red",) and xgqa.items[2].images[0].name == "n100.jpg"

    maxm = read("maxm", benchmark_files)
    assert maxm.items[1].prompt == "Question: איזה צבע? Short answer in Hebrew:" and maxm.items[1].references == (
        "ירוק",
    )

    xvnli = read("xvnli", benchmark_files)
    assert [i.references[0] for i in xvnli.items[:3]] == ["yes", "no", "maybe"]
    assert (
        xvnli.items[0].prompt == 'Is it guaranteed true that "The shape is red."? Yes, no, or maybe? Answer in English:'
    )
    assert xvnli.items[0].images[0].name == "1000092795.jpg"

    pope = read("pope", benchmark_files)
    assert [(i.lang, i.prompt, i.references) for i in pope.items[:2]] == [
        ("random", "Is there a square in the image?", ("yes",)),
        ("random", "Is there a dog in the image?", ("no",)),
    ]


def test_marvl_two_images_per_statement_with_nfkd_paths_and_nlvr2_for_english(benchmark_files):
    data = read("marvl", benchmark_files)
    en, first, second = data.items
    assert en.lang == "en" and [p.name for p in en.images] == ["test1-0-1-img0.png", "test1-0-1-img1.png"]
    assert (
        en.references == ("yes",)
        and en.prompt == 'Based on the two images, is it correct to say "Both images are red."? Yes or no?'
    )
    assert first.references == ("no",) and second.references == ("yes",)
    assert [p.name for p in first.images] == ["63-1.jpg", "63-2.jpg"]
    assert unicodedata.is_normalized("NFKD", str(first.images[0])) and all(p.is_file() for p in first.images)


def test_xflickrco_reads_sentences_and_image_paths(benchmark_files):
    data = read("xflickrco", benchmark_files)
    assert [i.lang for i in data.items] == ["en", "ja"] and data.items[1].prompt == "Caption in Japanese: "
    assert data.items[1].references == ("青い四角",) and data.items[1].images[0].name == "1007129816.jpg"


def test_limit_keeps_the_first_items_of_each_language(benchmark_files):
    data = read("xvnli", benchmark_files, limit=2)
    assert [i.key for i in data.items] == ["en-1", "en-2", "fr-1", "fr-2"]


def test_malformed_record_error_names_file_record_and_field(benchmark_files):
    data_dir, images, _ = benchmark_files("xvnli")
    path = data_dir / "annotations" / "fr" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    del rows[1]["sentence2"]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    with pytest.raises(BenchmarkFormatError, match=r"fr/test\.jsonl, line 2: field 'sentence2' missing"):
        read_benchmark("xvnli", data_dir, images, ["en", "fr"], "test")
    data = read_benchmark("xvnli", data_dir, images, ["en", "fr"], "test", skip_missing=True)
    assert len(data.items) == 5 and len(data.skipped) == 2 and data.records == 7
    assert "line 4: not valid JSON" in data.skipped[1]["source"] + ": " + data.skipped[1]["reason"]


def test_a_line_that_is_not_utf8_is_that_lines_error(benchmark_files):
    """A byte-order mark before line 1 is read past; a line with a byte that is not UTF-8 is a bad record of its
    own, and the lines after it are still read."""
    data_dir, images, _ = benchmark_files("xvnli")
    path = data_dir / "annotations" / "fr" / "test.jsonl"
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join([b"\xef\xbb\xbf" + lines[0], lines[1].replace(b"rouge", b"rouge \xff"), lines[2]]))
    with pytest.raises(BenchmarkFormatError, match=r"fr/test\.jsonl, line 2: byte 0xFF at column \d+ is not valid"):
        read_benchmark("xvnli", data_dir, images, ["en", "fr"], "test")
    data = read_benchmark("xvnli", data_dir, images, ["en", "fr"], "test", skip_missing=True)
    assert [i.key for i in data.items] == ["en-1", "en-2", "en-3", "fr-1", "fr-3"]
    assert [s["source"].rsplit(", ", 1)[1] for s in data.skipped] == ["line 2"]


def test_missing_image_raises_or_is_counted(benchmark_files):
    data_dir, images, _ = benchmark_files("xgqa")
    (images / "n200.jpg").unlink()
    with pytest.raises(BenchmarkFormatError, match=r"en/test\.json, question 1002: missing image .*n200\.jpg"):
        read_benchmark("xgqa", data_dir, images, ["en", "de"], "test")
    data = read_benchmark("xgqa", data_dir, images, ["en", "de"], "test", skip_missing=True)
    assert [i.key for i in data.items] == ["1001", "1001"] and len(data.skipped) == 2
    assert all("missing image" in s["reason"] for s in data.skipped)


def test_a_missing_language_file_names_what_was_looked_for(benchmark_files):
    data_dir, images, _ = benchmark_files("xgqa")
    with pytest.raises(FileNotFoundError, match=r"xGQA ko: none of .*ko/test\.json"):
        read_benchmark("xgqa", data_dir, images, ["ko"], "test")


def test_unknown_language_or_benchmark_is_refused():
    from model.evaluate.benchmarks import get_benchmark, resolve_languages

    with pytest.raises(ValueError, match="xvnli has no language de; it has en, ar, es, fr, ru"):
        resolve_languages(get_benchmark("xvnli"), ["de"])
    with pytest.raises(ValueError, match="unknown benchmark 'gqa'"):
        get_benchmark("gqa")


def test_prompt_language_names_are_corrected_with_a_knob_for_the_references_spelling(benchmark_files):
    """The reference's XM3600 prompts say "Ukranian" and "Portugese"; the project corrects both on purpose."""
    from model.evaluate.prompts import caption_prompt, maxm_prompt

    assert caption_prompt("uk") == "Caption in Ukrainian: " and caption_prompt("pt") == "Caption in Portuguese: "
    assert caption_prompt("uk", "reference") == "Caption in Ukranian: "
    assert caption_prompt("pt", "reference") == "Caption in Portugese: "
    assert maxm_prompt("Q?", "iw") == maxm_prompt("Q?", "iw", "reference") == "Question: Q? Short answer in Hebrew:"
    assert caption_prompt("fa", "reference") == caption_prompt("fa") == "Caption in Farsi: "
    data_dir, images, _ = benchmark_files("xm3600")
    path = data_dir / "captions.jsonl"
    rows = [json.loads(line) | {"pt": {"caption": ["um quadrado"]}} for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    by_names = {names: read_benchmark("xm3600", data_dir, images, ["pt"], "test", language_names=names)
            for names in ("project", "reference")}
    prompts = {names: {i.prompt for i in data.items} for names, data in by_names.items()}
    assert prompts == {"project": {"Caption in Portuguese: "}, "reference": {"Caption in Portugese: "}}
    with pytest.raises(ValueError, match="language_names='paper': choose one of project, reference"):
        read_benchmark("xm3600", data_dir, images, ["pt"], "test", language_names="paper")
