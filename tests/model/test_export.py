"""Export: the merged model loads with plain transformers, computes the trained model's loss, generates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.mark.parametrize("llm", ["mt5", "bloom"])
def test_export_loads_with_plain_transformers_and_generates(make_config, tmp_path, llm):
    from PIL import Image
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    from model.build import build_model
    from model.checkpoint import TRAINABLE_FILE, load_trainable
    from model.data import Example
    from model.export import export_checkpoint
    from model.infer import generate
    from model.loader import TokenSpec, encode_examples
    from model.train import train

    cfg = make_config(llm=llm, train={"max_steps": 3}, optim={"warmup_steps": 1})
    checkpoint = train(cfg).checkpoint
    out = export_checkpoint(checkpoint, tmp_path / "export")

    model = Blip2ForConditionalGeneration.from_pretrained(out).eval()
    processor = Blip2Processor.from_pretrained(out)
    assert not any("lora" in name for name, _ in model.named_parameters())

    # Same loss as the (unmerged) trained model on the same batch.
    trained = build_model(cfg.model, cfg.lora, "full", torch.device("cpu"))
    load_trainable(trained.model, checkpoint / TRAINABLE_FILE)
    trained.model.eval()
    tok = processor.tokenizer
    spec = TokenSpec(model.config.image_token_index, model.config.num_query_tokens, 32, trained.decoder_only,
                     tok.pad_token_id, tok.eos_token_id)
    question = Example("a", Path("x"), "Answer in English: What shape is shown in the image?", "circle")
    batch = encode_examples(tok, [question], spec)
    images = [Image.new("RGB", (96, 96), (220, 30, 30))]
    batch["pixel_values"] = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        merged_loss = model(**batch).loss
        trained_loss = trained.model(**batch).loss
    assert merged_loss.item() == pytest.approx(trained_loss.item(), rel=1e-4)

    texts = generate(model, processor, images, ["Caption the image in English."], num_beams=2, max_new_tokens=5)
    assert len(texts) == 1 and isinstance(texts[0], str)
    inputs = processor(images=images, text=["Caption the image in English."], return_tensors="pt")
    ids = model.generate(**inputs, num_beams=2, min_new_tokens=3, max_new_tokens=5)
    new = ids if not trained.decoder_only else ids[:, inputs["input_ids"].shape[1]:]
    # at least the 3 forced new tokens (an encoder-decoder's output starts with its decoder start token), and
    # they decode: which tokens a 4-step tiny model picks (text or special pieces) is not what this checks
    assert new.shape[1] >= 3 + (not trained.decoder_only)
    assert processor.batch_decode(new, skip_special_tokens=False)[0].strip()
