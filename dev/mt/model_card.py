"""Ship a trained small model: convert it to CTranslate2 int8, score it, and write its model card.

Everything in the card comes from run artifacts: ``train_config.json``, ``summary.json`` and
``metrics.jsonl`` of the training run, the converted model's metadata, and the scores measured here on
the validation split. The run artifacts are copied next to the converted model (``training/``) so the
card can be regenerated from the shipped files alone.

Run::

    python -m dev.mt.model_card --run runs/nllb-multi30k --data MULTI30K \\
        --model pipeline/assets/nllb-multi30k --card data_cards/nllb-multi30k.md

(Over 300 lines on purpose: most of it is the card's Markdown template, which reads best in one piece
next to the artifacts it is filled from.)
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from dev.mt.from_ct2 import RECOVERED_MARKER
from dev.mt.train_small import QUESTION_DIRECTIONS, parse_floors
from pipeline.nllb.convert import convert_nllb, read_model_metadata
from pipeline.nllb.engine import EngineSettings, NllbTranslator
from pipeline.nllb.evaluate import DirectionScore, evaluate_directions, format_scores, scores_to_json
from pipeline.nllb.shipped import SHIPPED_DIRECTIONS

log = logging.getLogger(__name__)

RUN_ARTIFACTS = ("train_config.json", "summary.json", "metrics.jsonl")
RECOVERED_INIT = "recovered_init.json"  # in a stage's artifacts: it started from a checkpoint recovered from CT2
QUESTIONS_VAL = "questions-val"  # a run's held-out xGQA questions (see train_small.encode_questions)

LICENCE = """\
The training data is Multi30k (https://github.com/multi30k/dataset): the English captions of
Flickr30k (Young, Lai, Hodosh, Hockenmaier, TACL 2014) with German (Elliott, Frank, Sima'an, Specia,
VL 2016), French (Elliott et al., WMT 2017) and Czech (Barrault et al., WMT 2018) translations. The
captions are distributed for research use under the Flickr30k terms of use; the images are not used.
The model weights are derived from this data: use them for non-commercial research under the same
terms, and cite the papers above. The code that trains them is Apache-2.0 like the rest of the
project.

Stages that train on questions (`questions_repeat` > 0) also use the xGQA few-shot questions (Pfeiffer,
Geigle, Kamath, Steitz, Roth, Vulić, Gurevych, "xGQA: Cross-lingual Visual Question Answering",
Findings of ACL 2022; CC BY 4.0): human German translations of GQA questions (Hudson and Manning, CVPR
2019; CC BY 4.0) about Visual Genome images (the images are not used)."""


# The card's hand-written part (the training history of every stage): kept when the card is regenerated.
HAND_BEGIN = "<!-- training-history: begin."
HAND_END = "<!-- training-history: end -->"


def run_chain(run_dir: Path) -> list[Path]:
    """The run and the runs it continued from (``init_from``), first stage first.

    A checkpoint recovered from a shipped CTranslate2 model (``dev.mt.from_ct2``) carries that
    model's ``training/`` artifacts: its stages (``training/stages/<n>``, then ``training`` itself) come first.
    """

    chain = [run_dir]
    while True:
        init_from = json.loads((chain[0] / "train_config.json").read_text()).get("init_from")
        if not init_from:
            return chain
        if (Path(init_from) / RECOVERED_MARKER).exists():
            history = Path(init_from) / "training"
            if not (history / "train_config.json").exists():
                raise FileNotFoundError(f"{chain[0]} continued from {init_from}, which holds no training/ artifacts")
            stages = sorted((history / "stages").glob("*"), key=lambda p: int(p.name))
            return [*stages, history, *chain]
        parent = Path(init_from).parent  # init_from is a run's best/ or last/ checkpoint
        if not (parent / "train_config.json").exists():
            raise FileNotFoundError(f"{chain[0]} continued from {init_from}, whose run artifacts are not in {parent}")
        chain.insert(0, parent)


def ship_model(run_dir: Path, model_dir: Path) -> Path:
    """Convert ``RUN/best`` to CTranslate2 int8 in ``model_dir`` and copy the run artifacts beside it.

    A run that continued an earlier one (``--init-from``) brings that run's artifacts too, in
    ``training/stages/<n>/`` (first stage 1), so the card can describe the whole training.
    """


    covered = tuple(sorted({code for pair in SHIPPED_DIRECTIONS for code in pair}))
    convert_nllb(str(run_dir / "best"), model_dir, quantization="int8", force=True, languages=covered)
    training = model_dir / "training"
    if training.exists():
        shutil.rmtree(training)
    training.mkdir()
    for name in RUN_ARTIFACTS:
        shutil.copyfile(run_dir / name, training / name)
    shutil.copyfile(run_dir / "best" / "selection.json", training / "selection.json")
    chain = run_chain(run_dir)
    for n, earlier in enumerate(chain[:-1], 1):
        stage = training / "stages" / str(n)
        stage.mkdir(parents=True)
        for name in RUN_ARTIFACTS:
            shutil.copyfile(earlier / name, stage / name)
        if (earlier / RECOVERED_INIT).exists():  # a stage of a shipped model's history keeps its marker
            shutil.copyfile(earlier / RECOVERED_INIT, stage / RECOVERED_INIT)

    for n, stage_run in enumerate(chain, 1):
        init_from = json.loads((stage_run / "train_config.json").read_text()).get("init_from")
        if init_from and (Path(init_from) / RECOVERED_MARKER).exists():
            target = training if n == len(chain) else training / "stages" / str(n)
            shutil.copyfile(Path(init_from) / RECOVERED_MARKER, target / RECOVERED_INIT)
    return model_dir


def ship_questions_val(run_dir: Path, asset_dir: Path) -> Path | None:
    """Copy the run's held-out xGQA questions (if it trained on questions) to ``asset_dir``."""
    source = run_dir / QUESTIONS_VAL
    if not source.is_dir():
        return None
    shutil.copytree(source, asset_dir, dirs_exist_ok=True)  # keeps the asset's README
    return asset_dir


def _read_stage(path: Path) -> dict:
    return {
        "config": json.loads((path / "train_config.json").read_text()),
        "summary": json.loads((path / "summary.json").read_text()),
        "evals": [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()
                  if "eval_mean" in line],
        "recovered": (path / RECOVERED_INIT).exists(),
    }


def read_stages(model_dir: Path) -> list[dict]:
    """Every training stage of a shipped model, first first (the last one is ``training/`` itself)."""
    training = model_dir / "training"
    stages = training / "stages"
    earlier = sorted(stages.glob("*"), key=lambda p: int(p.name)) if stages.exists() else []
    return [_read_stage(p) for p in earlier] + [_read_stage(training)]


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _still_rising(evals: list[dict]) -> bool:
    """Whether the last selection score still improved on the one before (of the same weights: the
    trained ones, or their running average)."""
    evals = [e for e in evals if e.get("weights", "last") == evals[-1].get("weights", "last")] if evals else []
    return len(evals) >= 2 and evals[-1]["eval_mean"] > evals[-2]["eval_mean"]


def _weights_note(record: dict) -> str:
    """`` (average of N)`` for an evaluation of the running weight average, else nothing."""
    weights = record.get("weights", "last")
    return "" if weights == "last" else f" ({weights})"


def _floors_clause(cfg: dict) -> str:
    """How ``select_min`` restricted the selection (empty when it did not)."""

    floors = parse_floors(cfg.get("select_min", ""))
    if not floors:
        return ""
    return (", among the checkpoints reaching every floor of `select_min` ("
            + ", ".join(f"{key} >= {value:g}" for key, value in floors.items()) + ")")


def _questions_section(questions_json: str | None, n_images: int | None) -> str:

    if not questions_json:
        return ""
    images = f" about {n_images} Visual Genome images" if n_images else ""
    return f"""

## Scores on held-out questions (xGQA, greedy, int8 on CPU)

Human-translated GQA questions from xGQA's `train_48` split, English ↔ German, parallel by question id.
Every question{images} was held out of training (split by image, so these are questions about images the
model saw no question of); they also took part in checkpoint selection. Shipped in
`pipeline/assets/xgqa-val/`; reproduce with
`mblip eval-mt --data pipeline/assets/xgqa-val --directions en-de,de-en`.

{format_scores([DirectionScore(**s) for s in json.loads(questions_json)])}"""


def _selection_curve(stages: list[dict]) -> tuple[list[str], str]:
    """The selection curve's direction columns and table rows, over every stage's evaluations."""
    all_evals = [(n, e) for n, stage in enumerate(stages, 1) for e in stage["evals"]]
    columns = list(dict.fromkeys(k for _, e in all_evals for k in e["eval_chrf_pp"]))  # later stages may add some
    curve = "\n".join(
        f"| {n} | {e['step']}{_weights_note(e)} | {e['minutes']} | "
        + " | ".join(f"{e['eval_chrf_pp'][k]:.1f}" if k in e["eval_chrf_pp"] else "" for k in columns)
        + f" | {e['eval_mean']:.1f} |"
        for n, e in all_evals
    )
    return columns, curve


def _beam_section(beam_scores_json: str | None, beam_size: int) -> str:
    if not beam_scores_json:
        return ""
    return (f"\n\nWith beam search (`--beam-size {beam_size}`, as `translation.beam_size: {beam_size}` in a "
            f"pipeline config; slower):\n\n"
            + format_scores([DirectionScore(**s) for s in json.loads(beam_scores_json)]))


def _settings_table(stages: list[dict]) -> tuple[str, str]:
    """The settings table's header (one column per stage) and rows (the last stage's keys)."""
    header = " | ".join(f"stage {n}" for n in range(1, len(stages) + 1))
    rows = "\n".join(f"| `{k}` | " + " | ".join(str(st["config"].get(k, "")) for st in stages) + " |"
                     for k in stages[-1]["config"])
    return header, rows


def _question_texts(stages: list[dict], cfg: dict) -> tuple[str, str, str]:
    """What the card says of the xGQA questions (use, limit, data), empty when no stage trained on them."""
    question_stages = [n for n, st in enumerate(stages, 1) if st["config"].get("questions_repeat")]
    if not question_stages:
        return "", "", ""
    use = ("\n  and, between English and German, short VQA questions like GQA's (French and Czech questions were not"
           " trained)")
    limit = ("- Questions: the question frame is learnt (\"Welche Farbe hat ...?\", \"Ist ... blau?\"), but nouns"
             " outside the\n  GQA and Flickr30k vocabulary come out wrong (\"square\" as a shape becomes a railing),"
             " and back-translation\n  chrF++ rewards the right frame, so some wrong questions pass the filter."
             " French and Czech questions\n  were not trained.\n")
    data = (f"\n  {'Stages' if len(question_stages) > 1 else 'Stage'} {', '.join(map(str, question_stages))} also"
            " train on the xGQA `train_48` questions (English"
            " and their human\n  German translations, both directions), except those about"
            f" {cfg.get('question_val_images')} held-out images\n  (chosen by a seeded hash of the image id), each"
            " repeated `questions_repeat` times per epoch; Multi30k stays\n  in the mix so captions are not forgotten.")
    return use, limit, data


def _stage_line(n: int, st: dict) -> str:
    """One stage's line in the Training section: steps, epochs, minutes, where it started, its data knobs."""
    config = st["config"]
    return (
        f"- Stage {n}: {st['summary']['steps']} steps, {st['summary'].get('epochs')} epochs, "
        f"{st['summary']['train_minutes']} minutes"
        + (", from random weights" if n == 1 else
           f", continuing stage {n - 1}'s shipped int8 weights (recovered as an HF checkpoint by"
           " `dev.mt.from_ct2`; converting them back gives the same int8 weights) with a fresh optimiser"
           " and schedule" if st["recovered"] else
           f", continuing stage {n - 1}'s selected weights with a fresh optimiser and schedule")
        + (f"; Multi30k plus xGQA en↔de questions (each repeated {config['questions_repeat']}x per epoch)"
           if config.get("questions_repeat") else "")
        + (f"; Multi30k directions repeated per epoch: {config['direction_repeat']} (the others once)"
           if config.get("direction_repeat") else "")
        + (f"; a running weight average every {config['average_every']} steps from step "
           f"{config.get('average_from', 0)} was scored next to the weights at each evaluation"
           if config.get("average_every") else "")
        + (f" ({st['summary']['note']})" if st["summary"].get("note") else "")
        + "."
    )


def keep_hand_written_section(card: str, previous: str | None) -> str:
    """``card`` followed by the hand-kept section (between ``HAND_BEGIN`` and ``HAND_END``) of the card it
    replaces, so that regenerating the card never loses the translator's training history."""
    if not previous or HAND_BEGIN not in previous or HAND_END not in previous:
        return card
    start = previous.index(HAND_BEGIN)
    end = previous.index(HAND_END, start) + len(HAND_END)
    return card.rstrip("\n") + "\n\n" + previous[start:end] + "\n"


def render_card(model_dir: Path, scores_json: str, beam_scores_json: str | None = None, beam_size: int = 4,
                questions_json: str | None = None) -> str:

    training = model_dir / "training"
    stages = read_stages(model_dir)
    cfg = stages[-1]["config"]
    selection = json.loads((training / "selection.json").read_text())
    scores = [DirectionScore(**s) for s in json.loads(scores_json)]
    beam = _beam_section(beam_scores_json, beam_size)
    evals = stages[-1]["evals"]
    meta = read_model_metadata(model_dir)
    columns, curve = _selection_curve(stages)
    directions = " | ".join(columns)
    n_directions = len(columns)
    questions_use, questions_limit, questions_data = _question_texts(stages, cfg)
    epochs = round(sum(st["summary"].get("epochs", 0) for st in stages), 2)
    minutes = round(sum(st["summary"]["train_minutes"] for st in stages), 1)
    steps = sum(st["summary"]["steps"] for st in stages)
    settings_header, settings = _settings_table(stages)
    stage_lines = "\n".join(_stage_line(n, st) for n, st in enumerate(stages, 1))
    return f"""# nllb-multi30k: a small NLLB-architecture translator trained on Multi30k

Generated by `python -m dev.mt.model_card` from the training run's artifacts (copied to
`pipeline/assets/nllb-multi30k/training/`); do not edit by hand, except the training history at the
end, which regenerating keeps.

## What it is

A small `M2M100ForConditionalGeneration` (the NLLB-200 architecture) with a joint {cfg['vocab_size']}-piece
{cfg['spm_model_type']} sentencepiece vocabulary over English, German, French and Czech plus NLLB's
language-code tokens (`eng_Latn`, `deu_Latn`, `fra_Latn`, `ces_Latn`, ...), trained with NLLB's token
conventions (source `[src_code] pieces </s>`, target `[tgt_code] pieces </s>`, decoding starts from
`</s>`). It runs through exactly the same path as NLLB-200: `pipeline.nllb.engine` on CTranslate2.

- Shape: d_model {cfg['d_model']}, {cfg['encoder_layers']} encoder and {cfg['decoder_layers']} decoder layers,
  {cfg['attention_heads']} heads, FFN {cfg['ffn_dim']}, tied embeddings, pre-norm, sinusoidal positions.
- Shipped as CTranslate2 `{meta.get('quantization')}` (CTranslate2 {meta.get('ctranslate2_version')}),
  {_size_mb(model_dir):.1f} MB on disk in `pipeline/assets/nllb-multi30k/`.
- Directions: en→de, en→fr, en→cs, de→en, fr→en, cs→en. Other directions (de→fr, ...) and other
  languages are not trained and give garbage.
- Use: demos and tests of the pipeline, and back-translation checks on caption-like text. It knows
  the Flickr30k caption domain (people, animals, everyday scenes; short sentences){questions_use}; it is
  not a substitute for NLLB-200 on real data.

## Scores (Multi30k validation split, 1014 sentences, greedy decoding, int8 on CPU)

Reproduce with `mblip eval-mt` (defaults: this model, the shipped validation split, all six directions;
`--beam-size 4` for the beam table).
sacrebleu corpus scores: chrF++ = `CHRF(word_order=2)`, BLEU with the 13a tokeniser.

{format_scores(scores)}{beam}{_questions_section(questions_json, cfg.get("question_val_images"))}

The checkpoint was selected by mean chrF++ on the first {cfg['eval_sentences']} validation lines of each
direction{_floors_clause(cfg)} (stage {len(stages)}, step {selection['step']}{_weights_note(selection)}), \
so these validation scores are slightly optimistic; Multi30k's test
sets were not used.

Selection curve (chrF++ per direction on the first {cfg['eval_sentences']} lines; `xgqa:` columns: all
held-out xGQA questions; steps and minutes count from the start of each stage):

| stage | step | minutes | {directions} | mean |
|---:|---:|---:|{'---:|' * (n_directions + 1)}
{curve}

## Limits

- Undertrained: {epochs} epochs in {minutes} minutes of a shared 2-core CPU. The selection curve above \
{"was still rising at the last step" if _still_rising(evals) else "had levelled off"}; a longer
  run (another stage: `--init-from RUN/best` with a new `--out`) gives a better model. \
Expect wrong nouns and colours, and
  dropped clauses on long captions.
{questions_limit}- Greedy decoding; the engine's length cap stops runaway repetition but not wrong content, so
  back-translation scores from this model are much noisier than NLLB-200's.

## Training

`python -m dev.mt.train_small --data DIR --out RUN` (seeded; resumes from `RUN/checkpoint.pt`;
a later stage adds `--init-from EARLIER_RUN/best`), then `python -m dev.mt.model_card` \
(conversion with `pipeline.nllb.convert.convert_nllb`, i.e.
`mblip convert-nllb RUN/best pipeline/assets/nllb-multi30k`, scoring, this card).

- Data: the Multi30k training split, 29,000 aligned captions per language; every English caption is
  paired with its German, French and Czech version in both directions ({epochs} epochs over
  the 6 x 29k pairs).{questions_data}
- Objective: label-smoothed cross-entropy; AdamW with linear warm-up and cosine decay; token-bucketed
  batches.
- Steps: {steps}; training wall time {minutes} minutes on a shared 2-core CPU (torch, intra-op
  threads: {cfg['threads']}), including the periodic CTranslate2 evaluations.
{stage_lines}

| setting | {settings_header} |
|---|{'---|' * len(stages)}
{settings}

## Data licence and attribution

{LICENCE}
"""


def main(argv: list[str] | None = None) -> int:

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="training run directory (holds best/ and the logs)")
    p.add_argument("--data", type=Path, required=True, help="directory with val.{en,de,fr,cs}(.gz)")
    p.add_argument("--model", type=Path, required=True, help="where the converted model goes")
    p.add_argument("--card", type=Path, required=True, help="model card to write (Markdown)")
    p.add_argument("--beam-size", type=int, default=4, help="also score with this beam (1: greedy only)")
    p.add_argument("--questions-val", type=Path, default=None,
                   help="where the run's held-out xGQA questions go (default: MODEL/../xgqa-val); scored for the card")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    ship_model(args.run, args.model)
    greedy = NllbTranslator(args.model, EngineSettings(device="cpu"))
    scores_json = scores_to_json(evaluate_directions(greedy, args.data))
    (args.model / "training" / "val_scores.json").write_text(scores_json)
    beam_json = None
    if args.beam_size > 1:
        beam_translator = NllbTranslator(args.model, EngineSettings(device="cpu", beam_size=args.beam_size))
        beam_json = scores_to_json(evaluate_directions(beam_translator, args.data))
        (args.model / "training" / f"val_scores_beam{args.beam_size}.json").write_text(beam_json)
    questions_json = None
    questions_dir = ship_questions_val(args.run, args.questions_val or args.model.parent / "xgqa-val")
    if questions_dir is not None:

        questions_json = scores_to_json(evaluate_directions(
            NllbTranslator(args.model, EngineSettings(device="cpu")), questions_dir, QUESTION_DIRECTIONS))
        (args.model / "training" / "questions_val_scores.json").write_text(questions_json)
    args.card.parent.mkdir(parents=True, exist_ok=True)
    previous = args.card.read_text(encoding="utf-8") if args.card.is_file() else None
    card = render_card(args.model, scores_json, beam_json, args.beam_size, questions_json)
    args.card.write_text(keep_hand_written_section(card, previous), encoding="utf-8")
    log.info("wrote %s", args.card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
