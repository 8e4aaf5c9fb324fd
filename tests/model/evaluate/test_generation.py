"""Generation from exports, checkpoints and training outputs; two-image inputs; batching and padding."""

from __future__ import annotations

import json

import pytest
import torch


def test_encode_prompts_puts_count_x_q_placeholders_first_and_pads_decoder_only_on_the_left(tiny_dirs):
    from transformers import AutoTokenizer

    from model.evaluate.generation import encode_prompts

    tok = AutoTokenizer.from_pretrained(tiny_dirs["bloom"])
    ids, mask = encode_prompts(tok, ["a red circle", "a"], [2, 1], 99, 3, decoder_only=True, pad_token_id=0)
    long, short = (
        tok("a red circle", add_special_tokens=False)["input_ids"],
        tok("a", add_special_tokens=False)["input_ids"],
    )
    assert ids[0].tolist() == [99] * 6 + long
    pad = ids.shape[1] - 3 - len(short)
    assert ids[1].tolist() == [0] * pad + [99] * 3 + short and mask[1].tolist() == [0] * pad + [1] * (3 + len(short))
    ids, mask = encode_prompts(tok, ["a red circle", "a"], [1, 1], 99, 3, decoder_only=False, pad_token_id=0)
    assert ids[1, : 3 + len(short)].tolist() == [99] * 3 + short and mask[1, 3 + len(short) :].sum() == 0


def test_two_images_give_left_then_right_query_outputs_before_the_prompt(tiny_run):
    """MaRVL as the reference: each image through ViT + Q-Former on its own, 2 x Q visual tokens, left first."""
    from PIL import Image

    from model.evaluate.benchmarks import ANSWER_GENERATION
    from model.evaluate.generation import generate_batch, load_for_eval

    em = load_for_eval(tiny_run["export"], "cpu")
    left, right = Image.new("RGB", (40, 40), (220, 30, 30)), Image.new("RGB", (40, 40), (30, 30, 220))
    seen = {}

    def record(module, args, kwargs):
        seen.setdefault("embeds", kwargs["inputs_embeds"])

    encoder = em.model.language_model.get_encoder()
    handle = encoder.register_forward_pre_hook(record, with_kwargs=True)
    try:
        generate_batch(em, [[left, right]], ["Yes or no?"], ANSWER_GENERATION)
    finally:
        handle.remove()
    q = em.model.config.num_query_tokens
    pixels = em.processor.image_processor([left, right], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        features = em.model.get_image_features(pixel_values=pixels).pooler_output  # (2, Q, D)
    embeds = seen["embeds"][0]  # first beam of the only item
    assert torch.allclose(embeds[:q], features[0], atol=1e-5) and torch.allclose(
        embeds[q : 2 * q], features[1], atol=1e-5
    )
    assert not torch.allclose(features[0], features[1], atol=1e-3)


def test_checkpoint_training_output_and_export_give_the_same_predictions(tiny_run, benchmark_files, tmp_path):
    from model.evaluate.runner import run_evaluation

    data, images, languages = benchmark_files("xvnli")
    predictions = {}
    for kind in ("export", "checkpoint", "run"):
        result = run_evaluation(
            "xvnli", data, images, tiny_run[kind], tmp_path / f"{kind}.json", languages, progress=False
        )
        predictions[kind] = [json.loads(line)["prediction"] for line in open(result["predictions"], encoding="utf-8")]
        assert result["model_source"] == ("export" if kind == "export" else f"checkpoint {tiny_run['checkpoint']}")
    assert predictions["export"] == predictions["checkpoint"] == predictions["run"] and len(predictions["export"]) == 6


@pytest.mark.parametrize("llm", ["mt5", "bloom"])
def test_batched_predictions_equal_one_at_a_time(llm, make_config, benchmark_files, tmp_path):
    """Padding (right for mT5, left for BLOOM) must not change what is generated."""
    from model.evaluate.runner import run_evaluation
    from model.train import train

    checkpoint = train(make_config(llm=llm, train={"max_steps": 1})).checkpoint
    data, images, languages = benchmark_files("xgqa")
    runs = []
    for batch_size in (1, 4):
        result = run_evaluation(
            "xgqa",
            data,
            images,
            checkpoint,
            tmp_path / f"b{batch_size}.json",
            languages,
            batch_size=batch_size,
            progress=False,
        )
        runs.append([json.loads(line) for line in open(result["predictions"], encoding="utf-8")])
    assert [r["prediction"] for r in runs[0]] == [r["prediction"] for r in runs[1]]
    # Decoder-only output is stripped of the prompt: no prediction repeats the question.
    assert not any("Question:" in r["prediction"] for r in runs[1])


def test_unreadable_image_is_an_error_naming_it_or_skipped_and_counted(tiny_run, benchmark_files, tmp_path, capsys):
    from mblip.cli import main

    data, images, languages = benchmark_files("xvnli")
    (images / "1000092795.jpg").write_bytes(b"not a jpeg")
    argv = [
        "eval",
        "xvnli",
        "--data",
        str(data),
        "--images",
        str(images),
        "--model",
        str(tiny_run["export"]),
        "--out",
        str(tmp_path / "r.json"),
        "--languages",
        *languages,
        "--no-progress",
    ]
    assert main(argv) == 2
    assert "en/test.jsonl, line 1: cannot open image" in capsys.readouterr().err
    assert main(argv + ["--skip-missing"]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["skipped"] == 6 and result["scored"] == 0 and result["records"] == 6
    assert result["skipped_by_reason"] == {"unreadable image": 6}


def test_numerics_resolve_to_the_references_on_a_gpu_and_to_float32_on_cpu():
    from model.evaluate.generation import EvalNumerics, resolve_numerics

    # GPU: the reference's evaluation (vision fp16, LLM bf16 autocast; an export's LLM in 8-bit, a checkpoint's
    # as trained).
    assert resolve_numerics("cuda") == EvalNumerics("8bit", "fp16", "bf16")
    assert resolve_numerics("cuda", trained="4bit") == EvalNumerics("4bit", "fp16", "bf16")
    assert resolve_numerics("cuda", trained="none") == EvalNumerics("bf16", "fp16", "bf16")
    assert resolve_numerics("cuda", "bf16") == resolve_numerics("cuda", "none") == EvalNumerics("bf16", "fp16", "bf16")
    assert resolve_numerics("cuda", "fp32", "fp32") == EvalNumerics("fp32", "no", "no")
    assert resolve_numerics("cuda", "4bit", "bf16") == EvalNumerics("4bit", "bf16", "bf16")
    # CPU: bitsandbytes cannot run, so float32 throughout, whatever the checkpoint was trained with.
    assert resolve_numerics("cpu") == resolve_numerics("cpu", trained="8bit") == EvalNumerics("fp32", "no", "no")
    assert resolve_numerics("cpu", "none") == EvalNumerics("fp32", "no", "no")
    assert resolve_numerics("cpu", "bf16", "bf16") == EvalNumerics("bf16", "bf16", "bf16")
    with pytest.raises(ValueError, match="quantization=8bit needs a CUDA GPU .*on CPU use auto, bf16 or fp32"):
        resolve_numerics("cpu", "8bit")
    with pytest.raises(ValueError, match="quantization='int8': choose one of auto, 8bit, 4bit, bf16, fp32, none"):
        resolve_numerics("cuda", "int8")
    with pytest.raises(ValueError, match="vision precision 'fp8'"):
        resolve_numerics("cuda", vision="fp8")


def test_cpu_defaults_are_float32_and_the_knobs_set_weights_and_autocast(tiny_run):
    from PIL import Image

    from model.evaluate.benchmarks import ANSWER_GENERATION
    from model.evaluate.generation import EvalNumerics, generate_batch, load_for_eval

    em = load_for_eval(tiny_run["export"], "cpu")
    assert em.numerics == EvalNumerics("fp32", "no", "no")
    assert {p.dtype for p in em.model.parameters()} == {torch.float32}
    seen = {}

    def record(name):
        def hook(module, args, output):
            seen.setdefault(name, output.dtype)

        return hook

    em = load_for_eval(tiny_run["export"], "cpu", quantization="bf16", vision="bf16")
    for name in ("vision_model", "qformer"):  # a matmul inside each (their outputs are layer norms, float32)
        linear = next(m for m in getattr(em.model, name).modules() if isinstance(m, torch.nn.Linear))
        linear.register_forward_hook(record(name))
    assert {p.dtype for p in em.model.language_model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in em.model.vision_model.parameters()} == {torch.float32}  # weights as stored
    texts = generate_batch(em, [[Image.new("RGB", (40, 40), (220, 30, 30))]], ["Yes or no?"], ANSWER_GENERATION)
    assert len(texts) == 1 and seen == {"vision_model": torch.bfloat16, "qformer": torch.bfloat16}  # autocast
    checkpoint = load_for_eval(tiny_run["checkpoint"], "cpu", quantization="bf16")
    frozen = [p for n, p in checkpoint.model.language_model.named_parameters() if "lora_" not in n]
    assert frozen and {p.dtype for p in frozen} == {torch.bfloat16}
    with pytest.raises(ValueError, match="quantization=8bit needs a CUDA GPU"):
        load_for_eval(tiny_run["export"], "cpu", quantization="8bit")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_8bit_and_bf16_exports_and_8bit_checkpoint_predict_like_cpu(tiny_run, benchmark_files, tmp_path):
    """On a GPU: the export in 8-bit (the default, as the reference), in bf16 (the knob) and the checkpoint
    with its LLM in 8-bit all run with the vision side under fp16; bf16 answers mostly agree with the float32
    CPU answers."""
    from model.evaluate.runner import run_evaluation

    data, images, languages = benchmark_files("xgqa")
    runs = {}
    for name, model, device, quantization in (
        ("cpu", tiny_run["export"], "cpu", "auto"),
        ("export-8bit", tiny_run["export"], "cuda", "auto"),
        ("bf16", tiny_run["export"], "cuda", "bf16"),
        ("8bit", tiny_run["checkpoint"], "cuda", "8bit"),
    ):
        result = run_evaluation(
            "xgqa",
            data,
            images,
            model,
            tmp_path / f"{name}.json",
            languages,
            device=device,
            quantization=quantization,
            progress=False,
        )
        runs[name] = [json.loads(line)["prediction"] for line in open(result["predictions"], encoding="utf-8")]
        assert result["numerics"]["vision_autocast"] == ("no" if device == "cpu" else "fp16")
    assert len(runs["bf16"]) == len(runs["8bit"]) == len(runs["export-8bit"]) == len(runs["cpu"]) == 4
    assert sum(a == b for a, b in zip(runs["cpu"], runs["bf16"])) >= 2
