"""A CTranslate2 model turned back into an HF checkpoint is the same model: same int8 weights, same output."""

import pytest

from dev.mt.from_ct2 import RECOVERED_MARKER, read_ct2_variables, recover_checkpoint, roundtrip_mismatches
from pipeline.nllb.convert import convert_nllb
from pipeline.nllb.engine import EngineSettings, NllbTranslator
from pipeline.nllb.shapes import NllbShape, build_random_nllb, train_sentencepiece

TEXTS = ["A red circle on a plain background.", "What color is the square?", "Is the triangle blue?",
         "Ein roter Kreis.", "Welche Farbe hat das Quadrat?", "yes", "no"] * 10


@pytest.fixture(scope="module")
def ct2_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("from-ct2")
    spm = train_sentencepiece(TEXTS, root / "spm" / "spm", vocab_size=90)
    shape = NllbShape(d_model=32, encoder_layers=2, decoder_layers=1, attention_heads=4, ffn_dim=48)
    hf = build_random_nllb(root / "hf", spm, shape=shape, seed=5)
    return convert_nllb(str(hf), root / "ct2", quantization="int8")


def test_recovered_checkpoint_converts_back_to_the_same_int8_weights(ct2_dir, tmp_path):
    hf = recover_checkpoint(ct2_dir, tmp_path / "hf")
    assert (hf / RECOVERED_MARKER).exists()
    assert roundtrip_mismatches(ct2_dir, hf, tmp_path / "again") == []
    original = NllbTranslator(ct2_dir, EngineSettings(device="cpu", intra_threads=1))
    again = NllbTranslator(tmp_path / "again", EngineSettings(device="cpu", intra_threads=1))
    inputs = ["What color is the square?", "A red circle."]
    assert [t.text for t in again.translate(inputs, "eng_Latn", "deu_Latn")] == \
        [t.text for t in original.translate(inputs, "eng_Latn", "deu_Latn")]


def test_a_changed_weight_is_a_mismatch(ct2_dir, tmp_path):
    import torch
    from transformers import M2M100ForConditionalGeneration

    hf = recover_checkpoint(ct2_dir, tmp_path / "hf")
    model = M2M100ForConditionalGeneration.from_pretrained(hf)
    with torch.no_grad():
        model.model.decoder.layers[0].fc1.weight[0, 0] += 0.5
    model.save_pretrained(hf)
    bad = roundtrip_mismatches(ct2_dir, hf, tmp_path / "again")
    assert bad and all(name.startswith("decoder/layer_0/ffn/linear_0/") for name in bad), bad


def test_reader_rejects_an_unknown_binary_version(tmp_path):
    (tmp_path / "model.bin").write_bytes((2).to_bytes(4, "little") + b"\0" * 8)
    with pytest.raises(ValueError, match="binary version 2"):
        read_ct2_variables(tmp_path / "model.bin")
