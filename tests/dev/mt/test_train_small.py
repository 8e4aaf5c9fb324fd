"""Mechanics of the small-model trainer on a tiny slice of Multi30k: NLLB token conventions, batching,
and that an interrupted run resumes to exactly the weights of an uninterrupted one."""

from __future__ import annotations

import json

import pytest

from dev.mt.train_small import TrainConfig, collate, encode_pairs, make_batches, prepare_model_dir, train
from pipeline.nllb.evaluate import read_lines


def test_pairs_follow_nllb_conventions(tiny_corpus, tiny_cfg, tmp_path):
    from transformers import AutoTokenizer

    init_dir = prepare_model_dir(tiny_corpus, tmp_path, tiny_cfg)
    tok = AutoTokenizer.from_pretrained(init_dir)
    pairs = encode_pairs(tiny_corpus, init_dir, "train", tiny_cfg)
    assert len(pairs) == 6 * 100  # every caption in all six directions
    code_ids = {tok.convert_tokens_to_ids(c) for c in ("eng_Latn", "deu_Latn", "fra_Latn", "ces_Latn")}
    for src, labels in pairs:
        assert src[0] in code_ids and labels[0] in code_ids and src[0] != labels[0]
        assert src[-1] == labels[-1] == tok.eos_token_id
    # English -> German first: source text round-trips through the tokenizer's own vocabulary.
    src, labels = pairs[0]
    assert tok.convert_ids_to_tokens(src[0]) == "eng_Latn" and tok.convert_ids_to_tokens(labels[0]) == "deu_Latn"
    first_en = read_lines(tiny_corpus / "train.en.gz", limit=1)[0]
    assert tok.convert_tokens_to_string(tok.convert_ids_to_tokens(src[1:-1])).strip() == first_en

    input_ids, mask, decoder_input_ids, label_ids = collate(pairs, [0, 1], tok.pad_token_id, tok.eos_token_id)
    assert decoder_input_ids[0, 0] == tok.eos_token_id  # NLLB: decoding starts from </s>
    assert decoder_input_ids[0, 1:len(labels)].tolist() == labels[:-1]
    assert label_ids[0, : len(labels)].tolist() == labels
    assert int(mask[0].sum()) == len(src)


def test_batches_cover_every_pair_once_within_budget(tiny_corpus, tiny_cfg, tmp_path):
    init_dir = prepare_model_dir(tiny_corpus, tmp_path, tiny_cfg)
    pairs = encode_pairs(tiny_corpus, init_dir, "train", tiny_cfg)
    batches = make_batches(pairs, 400, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(len(pairs)))
    for b in batches:
        longest = max(max(len(pairs[i][0]), len(pairs[i][1])) for i in b)
        assert len(b) == 1 or longest * len(b) <= 400
    assert make_batches(pairs, 400, seed=3) == batches
    assert make_batches(pairs, 400, seed=4) != batches


def test_interrupted_run_resumes_to_identical_weights(tiny_corpus, tiny_cfg, tmp_path):
    import torch

    whole = tmp_path / "whole"
    train(tiny_corpus, whole, tiny_cfg)
    interrupted = tmp_path / "interrupted"
    train(tiny_corpus, interrupted, tiny_cfg, max_minutes=0)  # stops (and checkpoints) after one step
    assert torch.load(interrupted / "checkpoint.pt", weights_only=False)["step"] == 1
    summary = train(tiny_corpus, interrupted, tiny_cfg)
    assert summary["steps"] == tiny_cfg.max_steps

    a = torch.load(whole / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(interrupted / "checkpoint.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The kept model is a complete HF checkpoint that was scored through CTranslate2.
    selection = json.loads((whole / "best" / "selection.json").read_text())
    assert selection["step"] == tiny_cfg.max_steps and len(selection["eval_chrf_pp"]) == 6


def test_changed_settings_refuse_to_resume(tiny_corpus, tiny_cfg, tmp_path):
    train(tiny_corpus, tmp_path, tiny_cfg, max_minutes=0)
    with pytest.raises(ValueError, match="lr"):
        train(tiny_corpus, tmp_path, TrainConfig(**{**tiny_cfg.__dict__, "lr": 1e-4}))


def test_max_steps_may_change_only_during_warmup(tiny_corpus, tiny_cfg, tmp_path):
    import torch

    cfg = TrainConfig(**{**tiny_cfg.__dict__, "warmup_steps": 3})
    train(tiny_corpus, tmp_path, cfg, max_minutes=0)  # checkpoint at step 1, inside the warm-up
    longer = TrainConfig(**{**cfg.__dict__, "max_steps": 8, "eval_every": 4})
    assert train(tiny_corpus, tmp_path, longer)["steps"] == 8
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 8
    with pytest.raises(ValueError, match="max_steps"):
        train(tiny_corpus, tmp_path, TrainConfig(**{**longer.__dict__, "max_steps": 10}))


def test_continuing_from_a_trained_checkpoint_starts_from_its_weights(tiny_corpus, tiny_cfg, tmp_path):
    import torch
    from safetensors.torch import load_file

    first = tmp_path / "first"
    train(tiny_corpus, first, tiny_cfg)
    second = tmp_path / "second"
    cfg = TrainConfig(**{**tiny_cfg.__dict__, "init_from": str(first / "best"), "max_steps": 1, "lr": 0.0})
    train(tiny_corpus, second, cfg)
    # lr 0: the second run's weights are exactly the first run's, with the first run's vocabulary.
    a, b = load_file(first / "best" / "model.safetensors"), load_file(second / "best" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    spm = "sentencepiece.bpe.model"
    assert (second / "init" / spm).read_bytes() == (first / "best" / spm).read_bytes()

    wider = TrainConfig(**{**cfg.__dict__, "d_model": tiny_cfg.d_model * 2})
    with pytest.raises(ValueError, match="d_model"):
        train(tiny_corpus, tmp_path / "third", wider)


def test_stop_step_ends_early_on_the_unchanged_schedule(tiny_corpus, tiny_cfg, tmp_path):
    summary = train(tiny_corpus, tmp_path / "run", tiny_cfg, stop_step=3)
    assert summary["steps"] == 3 < tiny_cfg.max_steps
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "eval_mean" in r] == [3]
    assert (tmp_path / "run" / "best" / "config.json").exists()


def test_select_min_keeps_only_a_checkpoint_meeting_every_floor(tiny_corpus, tiny_cfg, tmp_path):
    cfg = TrainConfig(**{**tiny_cfg.__dict__, "eval_every": 2, "max_steps": 4})
    reachable = TrainConfig(**{**cfg.__dict__, "select_min": "eng_Latn-deu_Latn=0"})
    train(tiny_corpus, tmp_path / "reachable", reachable)
    records = [json.loads(line) for line in (tmp_path / "reachable" / "metrics.jsonl").read_text().splitlines()]
    assert [r["meets_select_min"] for r in records if "eval_mean" in r] == [True, True]
    assert (tmp_path / "reachable" / "best" / "config.json").exists()

    unreachable = TrainConfig(**{**cfg.__dict__, "select_min": "eng_Latn-deu_Latn=0,deu_Latn-eng_Latn=101"})
    summary = train(tiny_corpus, tmp_path / "unreachable", unreachable)
    assert not (tmp_path / "unreachable" / "best").exists() and summary["best_eval_mean_chrf_pp"] < 0
    with pytest.raises(ValueError, match="xgqa:eng_Latn-deu_Latn"):
        train(tiny_corpus, tmp_path / "unknown",
              TrainConfig(**{**cfg.__dict__, "select_min": "xgqa:eng_Latn-deu_Latn=1"}))
    with pytest.raises(ValueError, match="KEY=VALUE"):
        train(tiny_corpus, tmp_path / "malformed", TrainConfig(**{**cfg.__dict__, "select_min": "48.3"}))


def test_weight_average_is_the_mean_of_the_averaged_steps_and_survives_a_resume(tiny_corpus, tiny_cfg, tmp_path):
    import torch
    from safetensors.torch import load_file

    # lr 0 after warm-up would freeze the weights; a plain run of 6 steps saves every step's weights instead
    steps = {}
    for n in (4, 5, 6):
        run = tmp_path / f"stop{n}"
        train(tiny_corpus, run, tiny_cfg, stop_step=n)
        steps[n] = torch.load(run / "checkpoint.pt", weights_only=False)["model"]

    cfg = TrainConfig(**{**tiny_cfg.__dict__, "average_every": 1, "average_from": 4})
    whole = tmp_path / "whole"
    train(tiny_corpus, whole, cfg)
    evals = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines() if "eval_mean" in line]
    assert [(e["step"], e["weights"]) for e in evals] == [(6, "last"), (6, "average of 3")]
    average = load_file(whole / "average" / "model.safetensors")
    for name, value in average.items():
        expected = (steps[4][name] + steps[5][name] + steps[6][name]) / 3
        assert torch.allclose(value, expected, atol=1e-6), name
    assert not torch.equal(average["model.shared.weight"], steps[6]["model.shared.weight"])
    # the best of both candidates is kept, and says which weights it is
    selection = json.loads((whole / "best" / "selection.json").read_text())
    assert selection["eval_mean"] == max(e["eval_mean"] for e in evals) and selection["weights"] in ("last",
                                                                                                      "average of 3")

    interrupted = tmp_path / "interrupted"
    train(tiny_corpus, interrupted, cfg, stop_step=5)  # checkpoint holds a running average of steps 4 and 5
    train(tiny_corpus, interrupted, cfg)
    resumed = load_file(interrupted / "average" / "model.safetensors")
    assert all(torch.equal(resumed[k], average[k]) for k in average)


def test_direction_repeat_adds_copies_of_one_direction_only(tiny_corpus, tiny_cfg, tmp_path):
    from dev.mt.train_small import parse_direction_repeat

    init_dir = prepare_model_dir(tiny_corpus, tmp_path, tiny_cfg)
    plain = encode_pairs(tiny_corpus, init_dir, "train", tiny_cfg)
    cfg = TrainConfig(**{**tiny_cfg.__dict__, "direction_repeat": "en-de=3"})
    weighted = encode_pairs(tiny_corpus, init_dir, "train", cfg)
    en_de = plain[:100]  # the first direction is en->de
    assert len(weighted) == len(plain) + 2 * len(en_de)
    assert sorted(weighted) == sorted(plain + en_de + en_de)
    assert len(encode_pairs(tiny_corpus, init_dir, "val", cfg)) == 6 * 20  # validation is never repeated
    for bad in ("en-de", "en-de=0", "de-fr=2", "en_de=2"):
        with pytest.raises(ValueError, match="direction_repeat"):
            parse_direction_repeat(bad)
