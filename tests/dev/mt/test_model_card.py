"""Shipping a trained run: int8 conversion, copied run artifacts, and a card built from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dev.mt.model_card import HAND_BEGIN, HAND_END, keep_hand_written_section, render_card, ship_model
from dev.mt.train_small import train
from pipeline.nllb.engine import EngineSettings, NllbTranslator
from pipeline.nllb.evaluate import evaluate_directions, scores_to_json

REPO = Path(__file__).resolve().parents[3]


def test_card_is_built_from_run_artifacts(tiny_corpus, tiny_cfg, tmp_path):
    run = tmp_path / "run"
    summary = train(tiny_corpus, run, tiny_cfg)
    model = ship_model(run, tmp_path / "model")
    assert json.loads((model / "mblip_model.json").read_text())["quantization"] == "int8"
    assert json.loads((model / "training" / "train_config.json").read_text())["d_model"] == tiny_cfg.d_model

    translator = NllbTranslator(model, EngineSettings(device="cpu", intra_threads=1))
    scores_json = scores_to_json(evaluate_directions(translator, tiny_corpus, limit=5))
    beam_json = scores_to_json(evaluate_directions(
        NllbTranslator(model, EngineSettings(device="cpu", intra_threads=1, beam_size=2)), tiny_corpus, limit=5))
    card = render_card(model, scores_json, beam_json, beam_size=2)
    first = json.loads(scores_json)[0]
    assert "`--beam-size 2`" in card and card.count("| eng_Latn → deu_Latn | 5 |") == 2
    assert f"| eng_Latn → deu_Latn | 5 | {first['chrf_pp']:.2f} | {first['bleu']:.2f} |" in card
    assert f"Steps: {summary['steps']}" in card and f"| `d_model` | {tiny_cfg.d_model} |" in card
    assert "Flickr30k" in card and "Elliott" in card


def test_card_of_a_continued_run_describes_every_stage(tiny_corpus, tiny_cfg, tmp_path):
    from dev.mt.train_small import TrainConfig

    first = train(tiny_corpus, tmp_path / "first", tiny_cfg)
    second_cfg = TrainConfig(**{**tiny_cfg.__dict__, "init_from": str(tmp_path / "first" / "best"), "seed": 7,
                                "select_min": "eng_Latn-deu_Latn=0"})
    second = train(tiny_corpus, tmp_path / "second", second_cfg)
    model = ship_model(tmp_path / "second", tmp_path / "model")
    assert json.loads((model / "training" / "stages" / "1" / "train_config.json").read_text())["seed"] == tiny_cfg.seed
    assert json.loads((model / "training" / "train_config.json").read_text())["seed"] == 7

    card = render_card(model, scores_to_json(evaluate_directions(
        NllbTranslator(model, EngineSettings(device="cpu", intra_threads=1)), tiny_corpus, limit=3)))
    assert f"Steps: {first['steps'] + second['steps']}" in card
    assert "- Stage 1:" in card and "- Stage 2:" in card and "continuing stage 1" in card
    assert f"| `seed` | {tiny_cfg.seed} | 7 |" in card
    assert "among the checkpoints reaching every floor of `select_min` (eng_Latn-deu_Latn >= 0)" in card


def test_card_of_a_run_continuing_the_shipped_int8_model_on_questions(tiny_corpus, tiny_cfg, make_xgqa, tmp_path):
    from dataclasses import replace

    from dev.mt.from_ct2 import recover_checkpoint
    from dev.mt.model_card import ship_questions_val
    from dev.mt.train_small import QUESTION_DIRECTIONS

    train(tiny_corpus, tmp_path / "first", tiny_cfg)
    shipped = ship_model(tmp_path / "first", tmp_path / "shipped")  # CT2 only, like the packaged model
    recovered = recover_checkpoint(shipped, tmp_path / "recovered")
    colours = (("red", "rot"), ("blue", "blau"), ("green", "grün"))
    things = (("dog", "der Hund"), ("car", "das Auto"), ("bench", "die Bank"), ("ball", "der Ball"))
    pairs = [(f"Is the {t} {c}?", f"Ist {d} {g}?") for c, g in colours for t, d in things]
    questions = {str(100 + i): (en, de, f"n{i % 4}") for i, (en, de) in enumerate(pairs)}
    xgqa = make_xgqa(tmp_path / "xgqa", {
        "en": {q: {"question": en, "imageId": img} for q, (en, _, img) in questions.items()},
        "de": {q: {"question": de, "imageId": img} for q, (_, de, img) in questions.items()}})
    cfg = replace(tiny_cfg, init_from=str(recovered), seed=9, questions_repeat=2, question_val_images=1, eval_every=3)
    train(tiny_corpus, tmp_path / "second", cfg, questions_dir=xgqa)
    model = ship_model(tmp_path / "second", tmp_path / "model")
    assert (model / "training" / "stages" / "1" / "train_config.json").exists()
    asset = ship_questions_val(tmp_path / "second", tmp_path / "xgqa-val")
    translator = NllbTranslator(model, EngineSettings(device="cpu", intra_threads=1))
    questions_json = scores_to_json(evaluate_directions(translator, asset, QUESTION_DIRECTIONS))
    card = render_card(model, scores_to_json(evaluate_directions(translator, tiny_corpus, limit=3)),
                       questions_json=questions_json)
    assert "continuing stage 1's shipped int8 weights (recovered" in card
    assert "xGQA en↔de questions (each repeated 2x per epoch)" in card
    en_de = json.loads(questions_json)[0]
    assert "## Scores on held-out questions" in card and "about 1 Visual Genome images" in card
    assert f"| eng_Latn → deu_Latn | {en_de['sentences']} | {en_de['chrf_pp']:.2f} |" in card
    assert "| xgqa:eng_Latn-deu_Latn | xgqa:deu_Latn-eng_Latn | mean |" in card
    assert "Pfeiffer" in card and "| `questions_repeat` | 0 | 2 |" in card

    # one more stage on the newly shipped weights: both recovered starts are still described
    third_cfg = replace(cfg, init_from=str(recover_checkpoint(model, tmp_path / "recovered2")), seed=11)
    train(tiny_corpus, tmp_path / "third", third_cfg, questions_dir=xgqa)
    shutil.rmtree(recovered)  # as on another machine: only the shipped history tells how stage 2 started
    final = ship_model(tmp_path / "third", tmp_path / "final")
    assert (final / "training" / "stages" / "2" / "recovered_init.json").exists()
    card = render_card(final, scores_to_json(evaluate_directions(
        NllbTranslator(final, EngineSettings(device="cpu", intra_threads=1)), tiny_corpus, limit=3)))
    assert "continuing stage 1's shipped int8 weights" in card and "continuing stage 2's shipped int8 weights" in card


def test_card_of_a_run_with_weight_averaging_names_the_weights_of_each_row(tiny_corpus, tiny_cfg, tmp_path):
    from dev.mt.train_small import TrainConfig

    cfg = TrainConfig(**{**tiny_cfg.__dict__, "average_every": 2, "eval_every": 3})
    train(tiny_corpus, tmp_path / "run", cfg)
    model = ship_model(tmp_path / "run", tmp_path / "model")
    card = render_card(model, scores_to_json(evaluate_directions(
        NllbTranslator(model, EngineSettings(device="cpu", intra_threads=1)), tiny_corpus, limit=3)))
    curve = [line for line in card.splitlines() if line.startswith("| 1 | ")]
    assert [line.split(" | ")[1] for line in curve] == ["3", "3 (average of 1)", "6", "6 (average of 3)"]
    selection = json.loads((model / "training" / "selection.json").read_text())
    note = "" if selection["weights"] == "last" else f" ({selection['weights']})"
    assert f"step {selection['step']}{note})" in card


def test_regenerating_the_card_keeps_the_hand_written_training_history():
    shipped = (REPO / "data_cards" / "nllb-multi30k.md").read_text(encoding="utf-8")
    history = shipped[shipped.index(HAND_BEGIN):shipped.index(HAND_END) + len(HAND_END)]
    assert "Stage 6" in history or "stage 6" in history
    regenerated = keep_hand_written_section("# card\n\nnew generated text\n", shipped)
    assert regenerated.startswith("# card\n\nnew generated text\n") and regenerated.endswith(history + "\n")
    # a card without the section is written as generated
    assert keep_hand_written_section("# card\n", "# old card without a history\n") == "# card\n"
    assert keep_hand_written_section("# card\n", None) == "# card\n"
