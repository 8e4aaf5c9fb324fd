"""The two-image training path (NLVR2 for MaRVL): both images reach the loss, left then right, as the MaRVL
evaluation feeds them; a tiny fine-tune whose label only the right image decides learns it."""

from __future__ import annotations

import pytest
import torch

from model.build import build_model, unwrap_blip2
from model.checkpoint import build_from_checkpoint
from model.data import Example, load_image, read_manifest
from model.evaluate.prompts import marvl_prompt
from model.finetune.prepare import prepare_task_data
from model.finetune.samples import NLVR2_SENTENCE, write_training_samples
from model.loader import ExampleStream, StreamSettings, TokenSpec, encode_examples
from model.task_loss import per_example_loss
from model.train import train


def _spec(assembled) -> TokenSpec:
    tokenizer = assembled.processor.tokenizer
    return TokenSpec(image_token_index=assembled.image_token_index,
                     num_query_tokens=unwrap_blip2(assembled.model).config.num_query_tokens, max_length=32,
                     decoder_only=assembled.decoder_only, pad_token_id=tokenizer.pad_token_id,
                     eos_token_id=tokenizer.eos_token_id, max_target_length=8)


@pytest.fixture()
def nlvr2(tmp_path):
    """Pairs with the same grey left image and sentence; the right image is red (True) or blue (False)."""
    train_file = write_training_samples("marvl", tmp_path / "train.json", tmp_path / "images", 8)
    return prepare_task_data("marvl", train_file, tmp_path / "images", tmp_path / "data")


def test_the_second_image_reaches_the_loss(nlvr2, make_config):
    cfg = make_config()
    assembled = build_model(cfg.model, cfg.lora, "full", torch.device("cpu"))
    spec = _spec(assembled)
    stream = ExampleStream(read_manifest(nlvr2.root), assembled.processor, spec,
                           StreamSettings(batch_size=8, image_size=32, train=False))
    batch = next(iter(stream))
    ids = batch["example_ids"]
    red, blue = ids.index("nlvr2:train-0-0-0"), ids.index("nlvr2:train-1-0-0")
    pixels = batch["pixel_values"]
    assert pixels.shape[0] == 2 * len(ids)  # left and right image of every pair, in pair order
    placeholders = (batch["input_ids"] == spec.image_token_index).sum(dim=1)
    assert placeholders.tolist() == [2 * spec.num_query_tokens] * len(ids)
    assert torch.equal(pixels[2 * red], pixels[2 * blue]) and not torch.equal(pixels[2 * red + 1], pixels[2 * blue + 1])

    # The two pairs differ only in their right image: same prompt, same left image, the same target here.
    model = assembled.model.eval()
    rows = [red, blue]
    pixel_values = torch.cat([pixels[2 * i : 2 * i + 2] for i in rows]).requires_grad_(True)
    labels = batch["labels"][[red, red]]
    outputs = model(pixel_values=pixel_values, input_ids=batch["input_ids"][rows],
                    attention_mask=batch["attention_mask"][rows], labels=labels)
    assert not torch.allclose(outputs.logits[0], outputs.logits[1])
    outputs.loss.backward()
    right_images = pixel_values.grad[1::2]
    assert right_images.abs().sum(dim=(1, 2, 3)).gt(0).all()  # the gradient reaches both right images


def _label_losses(assembled, root, pair: int) -> dict[str, float]:
    """Loss of "yes" and of "no" for one pair (grey left image, coloured right image)."""
    left, right = (root / str(pair % 2) / f"train-{pair}-0-img{side}.png" for side in (0, 1))
    examples = [Example(example_id=f"probe-{label}", image_path=left, extra_image_paths=(right,),
                        prompt=marvl_prompt(NLVR2_SENTENCE), target=label) for label in ("yes", "no")]
    batch = encode_examples(assembled.processor.tokenizer, examples, _spec(assembled))
    images = [load_image(path) for example in examples for path in example.image_paths]
    pixel_values = assembled.processor.image_processor(images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        outputs = assembled.model.eval()(pixel_values=pixel_values, input_ids=batch["input_ids"],
                                         attention_mask=batch["attention_mask"], labels=batch["labels"])
    losses = per_example_loss(outputs.logits, batch["labels"], assembled.decoder_only).tolist()
    return dict(zip(("yes", "no"), losses))


def test_a_label_only_the_right_image_decides_is_learned(nlvr2, make_config, tmp_path):
    cfg = make_config(data={"manifest": str(nlvr2.root), "val_rows": 0, "val_fraction": 0.0, "crop_scale": [1.0, 1.0],
                            "hflip": False, "max_target_length": 8},
                      train={"batch_size": 8, "global_batch": 8, "max_steps": 30},
                      optim={"warmup_steps": 0, "lr_qformer": 3e-3, "lr_lora": 3e-3})
    result = train(cfg)
    trained = build_from_checkpoint(result.checkpoint, torch.device("cpu"))
    root = tmp_path / "images"
    red, blue = _label_losses(trained, root, 0), _label_losses(trained, root, 1)
    assert red["yes"] < red["no"] and blue["no"] < blue["yes"], (red, blue)
