"""Training config: effective batch, precision combinations, quantisation knobs, the two-stage configs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from model.config import load_config

REPO = Path(__file__).resolve().parents[2]
MT0XL = REPO / "configs" / "train_mt0xl.yaml"


def test_accumulation_is_derived_from_the_global_batch_and_the_process_count():
    from model.config import accumulation_steps

    cfg = load_config(MT0XL)
    assert cfg.train.global_batch == 128 and cfg.train.batch_size == 8
    assert [accumulation_steps(cfg.train, n) for n in (1, 2, 4, 16)] == [16, 8, 4, 1]
    with pytest.raises(ValueError, match=r"global_batch=128 is not a multiple of train.batch_size=8 x 3 processes"):
        accumulation_steps(cfg.train, 3)
    with pytest.raises(ValidationError, match="not a multiple"):
        load_config(MT0XL, {"train": {"batch_size": 48}})
    with pytest.raises(ValidationError, match="train.grad_accum is no longer a knob"):
        load_config(MT0XL, {"train": {"grad_accum": 4}})
    bloomz = load_config(REPO / "configs" / "train_bloomz7b.yaml")
    assert (bloomz.train.global_batch, accumulation_steps(bloomz.train, 4)) == (128, 8)  # mBLIP: 4 x 4 GPUs x 8


@pytest.mark.parametrize(("gpus", "accum"), [(1, 16), (4, 4)])
def test_model_info_prints_the_effective_batch(gpus, accum, capsys):
    from mblip.cli import main

    assert main(["model-info", str(MT0XL), "--gpus", str(gpus)]) == 0
    line = f"effective batch: 128 (8 per device x accumulation {accum} x {gpus} processes)"
    assert re.search(rf"^{re.escape(line)}$", capsys.readouterr().out, re.M)
    assert main(["model-info", str(MT0XL), "--gpus", "3"]) != 0
    assert "not a multiple of train.batch_size=8 x 3 processes" in capsys.readouterr().err


def test_paper_precision_is_the_default_on_a_gpu():
    """mBLIP: frozen ViT in float32, vision side under fp16 autocast, LLM (bf16) under bf16 autocast."""
    from model.build import resolve_frozen_dtype
    from model.config import resolve_autocast

    cfg = load_config(MT0XL)
    cuda = torch.device("cuda")
    assert resolve_frozen_dtype(cfg.model.vision_dtype, cuda) == torch.float32
    assert resolve_frozen_dtype(cfg.model.llm_dtype, cuda) == torch.bfloat16
    assert resolve_autocast(cfg, "cuda") == ("fp16", "bf16")
    assert resolve_autocast(cfg, "cpu") == ("no", "no")
    half_vit = load_config(MT0XL, {"model": {"vision_dtype": "bfloat16"}})
    assert resolve_autocast(half_vit, "cpu") == ("bf16", "no")  # "auto" never produces a mismatch


@pytest.mark.parametrize(("overrides", "knobs"), [
    ({"model": {"vision_dtype": "bfloat16"}, "train": {"vision_autocast": "no"}},
     "model.vision_dtype=bfloat16 with train.vision_autocast=no"),
    ({"model": {"llm_dtype": "bfloat16"}, "train": {"llm_autocast": "no"}},
     "model.llm_dtype=bfloat16 with train.llm_autocast=no"),
    ({"model": {"llm_dtype": "float16"}, "train": {"llm_autocast": "bf16"}},
     "model.llm_dtype=float16 with train.llm_autocast=bf16"),
])
def test_mismatching_precision_fails_at_config_load_naming_the_knobs(overrides, knobs):
    with pytest.raises(ValidationError, match=re.escape(knobs)):
        load_config(MT0XL, overrides)


def test_four_bit_double_quantisation_is_a_knob_off_by_default():
    from model.build import bnb_config

    cfg = load_config(REPO / "configs" / "train_bloomz7b.yaml")
    assert cfg.model.llm_quantization == "4bit" and cfg.model.double_quantization is False
    nf4 = bnb_config("4bit", cfg.model.double_quantization)
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4" and nf4.bnb_4bit_use_double_quant is False
    assert bnb_config("4bit", True).bnb_4bit_use_double_quant is True
    assert load_config(MT0XL).model.double_quantization is False


def test_warm_up_stage_and_the_instruction_training_that_starts_from_it():
    """mBLIP's optional first stage: web captions only, projection only, 8,000 steps, lr 5e-3, batch 128."""
    warm = load_config(REPO / "configs" / "train_mt0xl_warmup.yaml")
    assert warm.train.stage == "projection" and warm.train.max_steps == 8000
    assert warm.optim.lr_projection_stage == 5e-3 and warm.train.global_batch == 128
    assert warm.data.tasks == ("caption",) and warm.data.sources == ("web_capfilt",)
    instruct = load_config(REPO / "configs" / "train_mt0xl_instruct.yaml")
    assert instruct.train.stage == "full" and instruct.data.tasks == () and instruct.data.sources == ()
    assert instruct.train.init_from == f"{warm.train.output_dir}/checkpoints/step-{warm.train.max_steps:07d}"
    assert instruct.train.output_dir != warm.train.output_dir
    assert (instruct.optim.lr_qformer, instruct.optim.lr_lora, instruct.train.global_batch) == (1e-5, 2e-4, 128)


def test_validation_holds_out_500_rows_by_default_as_the_reference():
    from model.config import DataConfig

    assert (DataConfig().val_rows, DataConfig().val_fraction) == (500, 0.0)
    for path in sorted((REPO / "configs").glob("train_*.yaml")):
        data = load_config(path).data
        assert (data.val_rows, data.val_fraction) == (500, 0.0), path.name
    images = load_config(MT0XL, {"data": {"val_rows": 0, "val_fraction": 0.005}}).data  # the former rule, a knob
    assert (images.val_rows, images.val_fraction) == (0, 0.005)
    with pytest.raises(ValidationError, match="data.val_rows=500 and data.val_fraction=0.005 both hold out"):
        load_config(MT0XL, {"data": {"val_fraction": 0.005}})
