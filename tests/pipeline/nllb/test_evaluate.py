"""Scoring helpers of pipeline.nllb.evaluate, on the shipped validation split."""

from __future__ import annotations

import gzip

import pytest

from pipeline.nllb.evaluate import read_lines, score_corpus, split_path
from pipeline.nllb.shipped import shipped_val_dir


def test_shipped_val_split_is_aligned():
    lengths = {lang: len(read_lines(shipped_val_dir() / f"val.{lang}.gz")) for lang in ("en", "de", "fr", "cs")}
    assert set(lengths.values()) == {1014}


def test_read_lines_plain_and_gzipped(tmp_path):
    (tmp_path / "val.en").write_text("a b\nc d\n\ne f\n", encoding="utf-8")
    with gzip.open(tmp_path / "val.de.gz", "wt", encoding="utf-8") as f:
        f.write("x\ny\n")
    assert read_lines(split_path(tmp_path, "val", "en")) == ["a b", "c d", "", "e f"]
    assert read_lines(split_path(tmp_path, "val", "en"), limit=2) == ["a b", "c d"]
    assert read_lines(split_path(tmp_path, "val", "de")) == ["x", "y"]
    with pytest.raises(FileNotFoundError, match="val.fr"):
        split_path(tmp_path, "val", "fr")


def test_scores_separate_right_from_wrong_references():
    refs = read_lines(shipped_val_dir() / "val.de.gz", limit=50)
    perfect = score_corpus(refs, refs)
    assert perfect == (pytest.approx(100.0), pytest.approx(100.0))
    shifted_chrf, shifted_bleu = score_corpus(refs[1:] + refs[:1], refs)  # every sentence paired wrongly
    assert shifted_chrf < 30 and shifted_bleu < 10
