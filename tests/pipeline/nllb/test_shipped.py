"""The shipped Multi30k model really translates, through the same engine as NLLB-200."""

from __future__ import annotations

import pytest

from pipeline.nllb import shipped
from pipeline.nllb.engine import EngineSettings, load_translator
from pipeline.nllb.evaluate import evaluate_directions, read_lines
from pipeline.nllb.shipped import SHIPPED_DIRECTIONS, shipped_model_dir, shipped_val_dir

# chrF++ on the first 50 validation lines, measured for the shipped int8 model with
# `mblip eval-mt --limit 50` (50.8, 57.6, 41.4, 50.3, 52.3, 45.8), minus 5 for CPU/CTranslate2 differences.
# A model that ignores its source (a caption language model) scores about 11-14 here.
CHRF_FLOOR = {"eng_Latn-deu_Latn": 45, "eng_Latn-fra_Latn": 52, "eng_Latn-ces_Latn": 36,
              "deu_Latn-eng_Latn": 45, "fra_Latn-eng_Latn": 47, "ces_Latn-eng_Latn": 40}


@pytest.fixture(scope="module")
def translator():
    return load_translator(shipped_model_dir(), EngineSettings(device="cpu", intra_threads=1))


def test_shipped_model_is_small_and_int8():
    from pipeline.nllb.convert import read_model_metadata

    size = sum(f.stat().st_size for f in shipped_model_dir().iterdir())
    assert size < 30 * 2**20
    assert read_model_metadata(shipped_model_dir())["quantization"] == "int8"


def test_every_shipped_direction_beats_its_floor(translator):
    codes = {"eng_Latn": "en", "deu_Latn": "de", "fra_Latn": "fr", "ces_Latn": "cs"}
    directions = tuple((codes[s], codes[t]) for s, t in SHIPPED_DIRECTIONS)
    scores = evaluate_directions(translator, shipped_val_dir(), directions, limit=50)
    got = {f"{s.src}-{s.tgt}": s.chrf_pp for s in scores}
    assert all(got[d] >= CHRF_FLOOR[d] for d in CHRF_FLOOR), got


def test_target_language_is_forced(translator):
    en = read_lines(shipped_val_dir() / "val.en.gz", limit=5)
    de = [t.text for t in translator.translate(en, "eng_Latn", "deu_Latn")]
    fr = [t.text for t in translator.translate(en, "eng_Latn", "fra_Latn")]
    assert de != fr and de != en
    assert translator.translate(["", en[0]], "eng_Latn", "deu_Latn")[0].text == ""


def test_missing_model_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(shipped, "_asset", lambda name: tmp_path / name)
    with pytest.raises(FileNotFoundError, match="convert-nllb"):
        shipped.shipped_model_dir()
