"""Vocabulary map (CTranslate2 use_vmap): the whole vocabulary changes nothing; a small map restricts."""

import shutil

import pytest

from pipeline.nllb.engine import EngineSettings, NllbTranslator, read_vocabulary
from pipeline.nllb.vmap import VMAP_FILENAME, build_vmap, main

EN, DE = "eng_Latn", "deu_Latn"
SOURCES = ["A red circle.", "Is the triangle blue?", "Two dogs run across 3 fields.", "yes", "What shape is shown?"]


@pytest.fixture()
def model_copy(tiny_model_dir, tmp_path):
    return shutil.copytree(tiny_model_dir, tmp_path / "model")


def _translate(model_dir, use_vmap: bool, **options):
    engine = NllbTranslator(model_dir, EngineSettings(device="cpu", use_vmap=use_vmap, **options))
    return [(t.text, t.log_prob) for t in engine.translate(SOURCES, EN, DE)]


@pytest.mark.parametrize("options", [{}, {"beam_size": 2}])
def test_a_map_of_the_whole_vocabulary_gives_identical_outputs(model_copy, options):
    plain = _translate(model_copy, False, **options)
    build_vmap(model_copy, [], copy_source=False, extra=read_vocabulary(model_copy))
    restricted = _translate(model_copy, True, **options)
    assert [t for t, _ in restricted] == [t for t, _ in plain]
    assert [s for _, s in restricted] == pytest.approx([s for _, s in plain], abs=1e-5)


def test_a_small_map_restricts_the_output_to_its_pieces_and_the_source(model_copy):
    import sentencepiece as spm

    allowed_text = ["ein roter Kreis", "blau"]
    build_vmap(model_copy, allowed_text, copy_source=True)
    sp = spm.SentencePieceProcessor(model_file=str(model_copy / "sentencepiece.bpe.model"))
    engine = NllbTranslator(model_copy, EngineSettings(device="cpu", use_vmap=True))
    allowed = {p for pieces in sp.encode(allowed_text + SOURCES, out_type=str) for p in pieces}
    for source, result in zip(SOURCES, engine.translate(SOURCES, EN, DE)):
        assert set(sp.encode(result.text, out_type=str)) <= allowed | {"▁"}
    # Off (the default) decodes over the whole vocabulary, so a random model strays outside the map.
    free = NllbTranslator(model_copy, EngineSettings(device="cpu")).translate(SOURCES * 4, EN, DE)
    assert any(not set(sp.encode(r.text, out_type=str)) <= allowed | {"▁"} for r in free)


def test_use_vmap_without_a_map_names_the_fix(tiny_model_dir, tmp_path):
    model = shutil.copytree(tiny_model_dir, tmp_path / "nomap")
    (model / VMAP_FILENAME).unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match="pipeline.nllb.vmap"):
        NllbTranslator(model, EngineSettings(device="cpu", use_vmap=True))


def test_the_build_command_reads_text_files(model_copy, tmp_path, capsys):
    text = tmp_path / "de.txt"
    text.write_text("ein roter Kreis\nzwei Hunde\n", encoding="utf-8")
    assert main([str(model_copy), str(text), "--no-copy-source"]) == 0
    lines = (model_copy / VMAP_FILENAME).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and lines[0].startswith("\t") and "deu_Latn" in lines[0].split()
    assert "always-candidate entries" in capsys.readouterr().out


def test_the_knob_is_part_of_the_cache_key_only_when_on():
    assert "vmap" not in EngineSettings().decoding_key()
    assert "vmap" in EngineSettings(use_vmap=True).decoding_key()
