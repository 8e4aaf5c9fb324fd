"""Conversion (metadata, skip when up to date, every quantisation) and token-for-token agreement of
CTranslate2 greedy decoding with Hugging Face ``generate`` on the same tiny M2M100 checkpoint."""

import json

import pytest

from pipeline.languages import load_languages
from pipeline.nllb.shapes import NllbShape, build_random_nllb, train_sentencepiece
from pipeline.nllb.convert import METADATA_FILENAME, QUANTIZATIONS, convert_nllb, read_model_metadata
from pipeline.nllb.engine import EngineSettings, NllbTranslator, read_vocabulary

TEXTS = [
    "A red circle on a plain background.", "There is a blue square in the picture.",
    "What color is the square?", "Is the triangle blue?", "Two dogs run across 3 fields.", "yes", "no",
] * 10
INPUTS = [
    "A red circle.", "What color is the square?", "Two dogs run across 3 fields.", "yes", "There is a blue square",
]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf-m2m100")
    spm = train_sentencepiece(TEXTS, root / "spm" / "spm", vocab_size=100)
    return build_random_nllb(root / "hf", spm, shape=NllbShape(d_model=32, encoder_layers=2, decoder_layers=2), seed=3)


def test_convert_records_metadata_and_skips_when_up_to_date(hf_dir, tmp_path):
    out = convert_nllb(str(hf_dir), tmp_path / "ct2", quantization="int8")
    meta = read_model_metadata(out)
    assert meta["model_id"] == str(hf_dir) and meta["quantization"] == "int8" and meta["revision"] is None
    assert meta["source_fingerprint"] and meta["max_positions"] == 256
    stamp = (out / "model.bin").stat().st_mtime_ns
    convert_nllb(str(hf_dir), out, quantization="int8")
    assert (out / "model.bin").stat().st_mtime_ns == stamp  # skipped
    convert_nllb(str(hf_dir), out, quantization="float32")
    assert read_model_metadata(out)["quantization"] == "float32"  # a different request converts again
    assert (out / "model.bin").stat().st_mtime_ns != stamp


def test_convert_force_and_bad_quantization(hf_dir, tmp_path):
    out = convert_nllb(str(hf_dir), tmp_path / "ct2", quantization="int8")
    stamp = (out / "model.bin").stat().st_mtime_ns
    convert_nllb(str(hf_dir), out, quantization="int8", force=True)
    assert (out / "model.bin").stat().st_mtime_ns != stamp
    with pytest.raises(ValueError, match="int8_float16"):
        convert_nllb(str(hf_dir), tmp_path / "bad", quantization="int4")


@pytest.mark.parametrize("quantization", ["int8", "int8_float16", "int8_bfloat16", "float16", "bfloat16", "float32"])
def test_every_quantization_converts_and_loads(hf_dir, tmp_path, quantization):
    assert quantization in QUANTIZATIONS
    out = convert_nllb(str(hf_dir), tmp_path / quantization, quantization=quantization)
    assert json.loads((out / METADATA_FILENAME).read_text())["quantization"] == quantization
    engine = NllbTranslator(out, EngineSettings(device="cpu"))  # half types run as their CPU fallback
    assert engine.translate(["A red circle."], "eng_Latn", "fra_Latn")[0].decoded_tokens > 0


def test_ct2_float32_greedy_equals_hf_generate_token_for_token(hf_dir, tmp_path):
    import torch
    from transformers import AutoTokenizer, M2M100ForConditionalGeneration

    out = convert_nllb(str(hf_dir), tmp_path / "f32", quantization="float32")
    engine = NllbTranslator(out, EngineSettings(device="cpu", compute_type="float32"))
    assert engine.compute_type == "float32"
    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir), src_lang="eng_Latn")
    model = M2M100ForConditionalGeneration.from_pretrained(str(hf_dir)).eval()
    vocab = set(read_vocabulary(out))
    # all 96 language codes survive conversion
    assert not [lang.nllb for lang in load_languages() if lang.nllb not in vocab]

    source, _ = engine.encode(INPUTS, "eng_Latn")
    for tokens in source:
        # the same input ids on both sides: every piece of the engine's tokenisation is in the HF vocabulary
        assert tokens[0] == "eng_Latn" and tokens[-1] == "</s>"
        assert tokenizer.unk_token_id not in tokenizer.convert_tokens_to_ids(tokens)

    new_tokens = 12
    for tgt in ("deu_Latn", "zho_Hans"):
        ct2 = engine.translator.translate_batch(
            source, target_prefix=[[tgt]] * len(source), beam_size=1, max_decoding_length=new_tokens + 1,
        )
        for tokens, result in zip(source, ct2):
            ids = torch.tensor([tokenizer.convert_tokens_to_ids(tokens)])
            with torch.inference_mode():
                hf = model.generate(
                    input_ids=ids, forced_bos_token_id=tokenizer.convert_tokens_to_ids(tgt), num_beams=1,
                    do_sample=False, max_new_tokens=new_tokens + 1,
                )
            hf_tokens = tokenizer.convert_ids_to_tokens(hf[0].tolist())[1:]  # drop the decoder start </s>
            if "</s>" in hf_tokens:
                hf_tokens = hf_tokens[: hf_tokens.index("</s>")]
            assert result.hypotheses[0] == hf_tokens
