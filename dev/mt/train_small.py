"""Train a small NLLB-architecture translator on Multi30k (en <-> de, fr, cs) on a few CPU cores.

The model is an ``M2M100ForConditionalGeneration`` with a joint sentencepiece vocabulary and NLLB's
language-code tokens, trained with exactly NLLB's conventions, so the converted model goes through the
same CTranslate2 path as the published NLLB-200 checkpoints:

* source ids ``[src_code] + pieces + </s>``; labels ``[tgt_code] + pieces + </s>``;
* decoder input = labels shifted right behind ``</s>`` (``decoder_start_token_id`` = eos, as NLLB),
  so CT2 with ``target_prefix=[[tgt_code]]`` decodes exactly what was trained.

Every English caption is paired with its German, French and Czech translation in both directions
(six directions, 6 x 29k pairs per epoch). Batches are token-bucketed (sorted by length, filled up to a
token budget, then shuffled), the loss is label-smoothed cross-entropy (Vaswani et al. 2017, Sec. 5.4),
the optimiser AdamW with linear warm-up and cosine decay. Every ``eval_every`` steps the model is
converted to CTranslate2 int8 and scored (chrF++) on the first ``eval_sentences`` validation lines of
each direction; the best one is kept in ``OUT/best``. ``OUT/checkpoint.pt`` is written atomically every
``checkpoint_every`` steps, and a rerun of the same command resumes from it.

Run::

    python -m dev.mt.train_small --data MULTI30K --out runs/nllb-multi30k
    mblip convert-nllb runs/nllb-multi30k/best pipeline/assets/nllb-multi30k --quantization int8

A later stage continues from a finished run's weights with a fresh optimiser and schedule (the way to
train longer than one session's wall time once a cosine schedule has ended)::

    python -m dev.mt.train_small --data ... --out runs/stage2 --init-from runs/nllb-multi30k/best \
        --seed 2234 --lr 0.002 --warmup-steps 200 --max-steps 8000

``--average-every N --average-from S`` keeps an equal-weight running average of the weights every N steps
from step S (``torch.optim.swa_utils.AveragedModel``); each evaluation scores it next to the current weights,
and either can be selected (``selection.json`` says which).

``--select-min "eng_Latn-deu_Latn=48.3,xgqa:eng_Latn-deu_Latn=45"`` keeps as ``OUT/best`` only a checkpoint
reaching every floor (with ``--eval-sentences 1014``, on the whole Multi30k validation split); if none does,
the run writes no ``OUT/best`` and its summary's best score is -1.

Longer than most modules on purpose: the whole small-MT trainer (data, batches, loop, evaluation,
selection, checkpoints) in one file that reads top to bottom.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from dev.mt.questions import question_pairs, split_by_image, write_heldout
from pipeline.languages import get_language
from pipeline.nllb.convert import convert_nllb
from pipeline.nllb.engine import EngineSettings, NllbTranslator
from pipeline.nllb.evaluate import MULTI30K_DIRECTIONS, MULTI30K_LANGUAGES, evaluate_directions, read_lines, split_path
from pipeline.nllb.shapes import NllbShape, build_random_nllb, train_sentencepiece

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (saved as ``OUT/train_config.json``)."""

    seed: int = 1234
    vocab_size: int = 6000  # joint sentencepiece pieces over en/de/fr/cs; larger = shorter sequences, bigger embeddings
    spm_model_type: str = "unigram"
    d_model: int = 160
    encoder_layers: int = 3
    decoder_layers: int = 2
    attention_heads: int = 4
    ffn_dim: int = 640
    # residual/attention/activation dropout; 0 = off: a couple of epochs underfit rather than overfit, and
    # dropout masks cost ~15% of CPU step time
    dropout: float = 0.0
    label_smoothing: float = 0.1  # 0 = plain cross-entropy
    batch_tokens: int = 2000  # padded tokens per batch, max(source, target) length x sentences
    max_len: int = 64  # pairs with more pieces on either side are skipped (Multi30k has almost none)
    lr: float = 3e-3  # peak learning rate after warm-up
    warmup_steps: int = 300
    min_lr_ratio: float = 0.05  # cosine decays to lr * this at max_steps
    weight_decay: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    max_steps: int = 3000
    eval_every: int = 500  # steps between CT2 evaluations (and best-model selection); 0 = only at the end
    eval_sentences: int = 100  # first N validation lines per direction used for selection
    checkpoint_every: int = 250  # steps between resumable checkpoints
    threads: int = 1  # torch intra-op threads; on a small shared CPU one thread is fastest: with two, each
    # step waits for the other thread to be scheduled (measured 5.6 vs 0.8 CPU-seconds per step)
    questions_repeat: int = 0  # copies per epoch of each xGQA training question pair (en->de and de->en; needs
    # --questions); 0 = Multi30k only. The questions are few (about 1.2k), so they are repeated to matter in the mix
    question_val_images: int = 10  # xGQA images whose questions are held out for validation and selection
    select_min: str = ""  # selection floors "KEY=VALUE,..." on the eval keys (e.g. "eng_Latn-deu_Latn=48.3,
    # xgqa:eng_Latn-deu_Latn=45"): only a checkpoint meeting every floor can become OUT/best (then by mean)
    # copies per epoch of a Multi30k direction's pairs, "SRC-TGT=N,..." in project codes (e.g. "en-de=2");
    # unnamed directions appear once. Spends a small model's capacity on the directions that matter most
    direction_repeat: str = ""
    # every N steps from step ``average_from``, the weights join an equal-weight running average
    # (``torch.optim.swa_utils.AveragedModel``; checkpoint averaging as Vaswani et al. 2017, Sec. 6.1);
    # each evaluation then scores the average too, and either may be selected. 0 = off
    average_every: int = 0
    average_from: int = 0
    init_from: str = ""  # a trained checkpoint (e.g. an earlier run's OUT/best) to continue from with a
    # fresh optimiser and schedule; its vocabulary and shape are kept (they must match the shape fields)

    def shape(self) -> NllbShape:
        return NllbShape(
            d_model=self.d_model,
            encoder_layers=self.encoder_layers,
            decoder_layers=self.decoder_layers,
            attention_heads=self.attention_heads,
            ffn_dim=self.ffn_dim,
            max_position_embeddings=256,
            dropout=self.dropout,
        )


# -- setup: vocabulary and model ----------------------------------------------------------------


def prepare_model_dir(data_dir: Path, out_dir: Path, cfg: TrainConfig) -> Path:
    """Sentencepiece model + randomly initialised checkpoint in ``OUT/init`` (built once, reused on resume)."""
    init_dir = out_dir / "init"
    if (init_dir / "config.json").exists():
        return init_dir
    if cfg.init_from:
        return copy_initial_checkpoint(Path(cfg.init_from), init_dir, cfg)
    texts: list[str] = []
    for lang in MULTI30K_LANGUAGES:
        texts += read_lines(split_path(data_dir, "train", lang))
    spm_path = train_sentencepiece(texts, out_dir / "spm" / "multi30k", cfg.vocab_size, cfg.spm_model_type)
    build_random_nllb(init_dir, spm_path, cfg.shape(), seed=cfg.seed)
    return init_dir


def copy_initial_checkpoint(source: Path, init_dir: Path, cfg: TrainConfig) -> Path:
    """Copy a trained checkpoint as this run's starting point after checking it has the configured shape."""
    import shutil

    config_path = source / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"--init-from {source}: no config.json (expected a saved HF checkpoint, e.g. OUT/best)")
    saved = json.loads(config_path.read_text())
    shape = cfg.shape()
    expected = {"d_model": shape.d_model, "encoder_layers": shape.encoder_layers,
                "decoder_layers": shape.decoder_layers, "encoder_attention_heads": shape.attention_heads,
                "encoder_ffn_dim": shape.ffn_dim}
    wrong = {k: (saved.get(k), v) for k, v in expected.items() if saved.get(k) != v}
    if wrong:
        raise ValueError(f"--init-from {source}: shape differs from the configured one (saved, configured): {wrong}")
    tmp = init_dir.with_name(f".{init_dir.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("selection.json"))
    tmp.rename(init_dir)
    return init_dir


def load_model(model_dir: Path, cfg: TrainConfig):
    import torch
    from transformers import M2M100ForConditionalGeneration

    model, info = M2M100ForConditionalGeneration.from_pretrained(model_dir, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise RuntimeError(f"checkpoint {model_dir} does not match the M2M100 architecture: {bad}")
    model.config.attention_dropout = cfg.dropout
    model.config.activation_dropout = cfg.dropout
    for module in model.modules():  # from_pretrained keeps the saved dropout values; apply the config's
        if hasattr(module, "attention_dropout") and isinstance(module.attention_dropout, float):
            module.attention_dropout = cfg.dropout
        if hasattr(module, "activation_dropout") and isinstance(module.activation_dropout, float):
            module.activation_dropout = cfg.dropout
    return model.to(torch.float32)


# -- setup: data ----------------------------------------------------------------------------------


def encode_pairs(data_dir: Path, model_dir: Path, split: str, cfg: TrainConfig) -> list[tuple[list[int], list[int]]]:
    """(source ids, label ids) for every sentence pair of ``split`` in all six directions (for ``train``,
    each direction repeated as ``direction_repeat`` says)."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    sp = spm.SentencePieceProcessor(model_file=str(model_dir / "sentencepiece.bpe.model"))
    eos = tokenizer.eos_token_id
    # NLLB/fairseq vocabulary: sentencepiece id i is model id i + 1 (see pipeline.nllb.shapes).
    ids = {lang: [[i + 1 for i in s] for s in sp.encode(read_lines(split_path(data_dir, split, lang)))]
           for lang in MULTI30K_LANGUAGES}
    repeats = parse_direction_repeat(cfg.direction_repeat) if split == "train" else {}
    pairs, skipped = [], 0
    for src, tgt in MULTI30K_DIRECTIONS:
        src_code = tokenizer.convert_tokens_to_ids(get_language(src).nllb)
        tgt_code = tokenizer.convert_tokens_to_ids(get_language(tgt).nllb)
        direction = []
        for s, t in zip(ids[src], ids[tgt], strict=True):
            if len(s) + 2 <= cfg.max_len and len(t) + 2 <= cfg.max_len:
                direction.append(([src_code, *s, eos], [tgt_code, *t, eos]))
            else:
                skipped += 1
        pairs += direction * repeats.get((src, tgt), 1)
    log.info("%s: %d pairs, %d skipped for more than max_len=%d tokens", split, len(pairs), skipped, cfg.max_len)
    return pairs


QUESTION_DIRECTIONS = (("en", "de"), ("de", "en"))


def encode_questions(questions_dir: Path, model_dir: Path, out_dir: Path, cfg: TrainConfig):
    """xGQA en<->de training pairs (each repeated ``questions_repeat`` times) and the held-out split.

    Questions about ``question_val_images`` images (chosen by a seeded hash, see
    ``dev.mt.questions``) are written to ``OUT/questions-val`` in the line layout and never trained on.
    """
    import sentencepiece as spm
    from transformers import AutoTokenizer

    train_q, held = split_by_image(question_pairs(questions_dir, "en", "de"), cfg.question_val_images)
    val_dir = write_heldout(held, out_dir / "questions-val", "en", "de")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    sp = spm.SentencePieceProcessor(model_file=str(model_dir / "sentencepiece.bpe.model"))
    eos = tokenizer.eos_token_id
    texts = {"en": [q.src for q in train_q], "de": [q.tgt for q in train_q]}
    ids = {lang: [[i + 1 for i in s] for s in sp.encode(t)] for lang, t in texts.items()}
    pairs = []
    for src, tgt in QUESTION_DIRECTIONS:
        src_code = tokenizer.convert_tokens_to_ids(get_language(src).nllb)
        tgt_code = tokenizer.convert_tokens_to_ids(get_language(tgt).nllb)
        pairs += [([src_code, *s, eos], [tgt_code, *t, eos]) for s, t in zip(ids[src], ids[tgt], strict=True)
                  if len(s) + 2 <= cfg.max_len and len(t) + 2 <= cfg.max_len]
    log.info("xGQA: %d training questions (%d pairs x %d), %d held out about %d images in %s", len(train_q),
             len(pairs), cfg.questions_repeat, len(held), cfg.question_val_images, val_dir)
    return pairs * cfg.questions_repeat, val_dir


def make_batches(pairs, batch_tokens: int, seed: int) -> list[list[int]]:
    """Token-bucketed batches of pair indices: sort by length (random tie-break), fill up to the
    padded-token budget, then shuffle the batch order. Deterministic for a given seed."""
    rng = random.Random(seed)
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][1]), len(pairs[i][0]), rng.random()))
    batches, current, longest = [], [], 0
    for i in order:
        n = max(len(pairs[i][0]), len(pairs[i][1]))
        if current and max(longest, n) * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, n)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def key_values(spec: str, knob: str) -> list[tuple[str, str, str]]:
    """``"KEY=VALUE,..."`` as ``(item, key, value)`` triples (the knob names the error)."""
    triples = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, value = item.rpartition("=")
        if not sep or not key:
            raise ValueError(f"{knob}: {item!r} is not KEY=VALUE")
        triples.append((item, key.strip(), value.strip()))
    return triples


def parse_direction_repeat(spec: str) -> dict[tuple[str, str], int]:
    """``"SRC-TGT=N,..."`` (``direction_repeat``) as ``{(src, tgt): N}``; only Multi30k's directions."""
    repeats = {}
    for item, key, value in key_values(spec, "direction_repeat"):
        src, dash, tgt = key.partition("-")
        if not dash or not value.isdigit() or int(value) < 1:
            raise ValueError(f"direction_repeat: {item!r} is not SRC-TGT=N with N >= 1 (e.g. en-de=2)")
        if (src, tgt) not in MULTI30K_DIRECTIONS:
            raise ValueError(f"direction_repeat: {key!r} is not one of the directions "
                             f"{', '.join(f'{a}-{b}' for a, b in MULTI30K_DIRECTIONS)}")
        repeats[(src, tgt)] = int(value)
    return repeats


def collate(pairs, batch: list[int], pad_id: int, eos_id: int):
    """input_ids/attention_mask (B, S), decoder_input_ids/labels (B, T); pad labels are -100."""
    import torch

    src = [pairs[i][0] for i in batch]
    tgt = [pairs[i][1] for i in batch]
    s_len, t_len = max(map(len, src)), max(map(len, tgt))
    input_ids = torch.full((len(batch), s_len), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), t_len), -100, dtype=torch.long)
    decoder_input_ids = torch.full((len(batch), t_len), pad_id, dtype=torch.long)
    for row, (s, t) in enumerate(zip(src, tgt)):
        input_ids[row, : len(s)] = torch.tensor(s)
        labels[row, : len(t)] = torch.tensor(t)
        decoder_input_ids[row, : len(t)] = torch.tensor([eos_id, *t[:-1]])  # NLLB: decoding starts at </s>
    return input_ids, input_ids.ne(pad_id), decoder_input_ids, labels


# -- loss and schedule ----------------------------------------------------------------------------


def loss_step(model, batch, label_smoothing: float):
    """Mean label-smoothed cross-entropy per target token, and the number of target tokens."""
    import torch.nn.functional as F

    input_ids, attention_mask, decoder_input_ids, labels = batch
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids, use_cache=False
    ).logits
    loss = F.cross_entropy(
        logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100, label_smoothing=label_smoothing
    )
    return loss, int(labels.ne(-100).sum())


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


# -- evaluation and saving ------------------------------------------------------------------------


def save_hf(model, init_dir: Path, out: Path) -> Path:
    """Save weights plus the tokenizer files of ``init_dir`` as a complete HF checkpoint, atomically."""
    import shutil

    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    for f in init_dir.iterdir():
        if f.is_file() and not (tmp / f.name).exists() and f.name != "recovered_from.json":  # see from_ct2
            shutil.copyfile(f, tmp / f.name)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def evaluate_checkpoint(model_dir: Path, ct2_dir: Path, data_dir: Path, cfg: TrainConfig,
                        questions_val: Path | None = None) -> dict[str, float]:
    """chrF++ per direction of the int8 CTranslate2 conversion of ``model_dir`` (the shipped path); with
    ``questions_val``, also on all held-out xGQA questions (keys ``xgqa:SRC-TGT``)."""
    convert_nllb(str(model_dir), ct2_dir, quantization="int8", force=True)
    translator = NllbTranslator(ct2_dir, EngineSettings(device="cpu", intra_threads=cfg.threads))
    scores = evaluate_directions(translator, data_dir, limit=cfg.eval_sentences)
    result = {f"{s.src}-{s.tgt}": s.chrf_pp for s in scores}
    if questions_val is not None:
        for s in evaluate_directions(translator, questions_val, QUESTION_DIRECTIONS):
            result[f"xgqa:{s.src}-{s.tgt}"] = s.chrf_pp
    return result


def save_checkpoint(path: Path, model, optimizer, state: dict) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(), **state}, tmp)
    tmp.replace(path)


# -- resuming ------------------------------------------------------------------------------------

# Settings that do not change what is learned (threads only the float summation order): they may
# differ between a run and its resumption.
EVALUATION_SETTINGS = frozenset({"eval_every", "eval_sentences", "checkpoint_every", "threads", "select_min"})


def parse_floors(spec: str) -> dict[str, float]:
    """``"KEY=VALUE,..."`` (``select_min``) as a dict; an empty spec has no floors."""
    return {key: float(value) for _, key, value in key_values(spec, "select_min")}


def meets_floors(chrf: dict[str, float], floors: dict[str, float]) -> bool:
    """Whether every floored eval key is present and at least its floor (a missing key is an error)."""
    missing = sorted(set(floors) - set(chrf))
    if missing:
        raise ValueError(f"select_min names {missing}, not among the evaluated keys {sorted(chrf)}")
    return all(chrf[key] >= floor for key, floor in floors.items())


def check_resumable(out_dir: Path, cfg: TrainConfig) -> None:
    """Refuse to resume a run with settings that would make its weights differ from a fresh run's.

    ``max_steps`` may still change while the checkpoint is inside the warm-up, where the schedule does
    not depend on it yet: a run resumed with a new ``max_steps`` then ends exactly as a fresh run with
    that value would (useful to fit the cosine schedule to the wall time a busy machine really gives).
    """
    import torch

    config_path, ckpt_path = out_dir / "train_config.json", out_dir / "checkpoint.pt"
    if not config_path.exists():
        return
    saved = json.loads(config_path.read_text())
    current = json.loads(json.dumps(asdict(cfg)))
    changed = {k: (saved.get(k), v) for k, v in current.items() if saved.get(k) != v and k not in EVALUATION_SETTINGS}
    if "max_steps" in changed:
        step = torch.load(ckpt_path, weights_only=False)["step"] if ckpt_path.exists() else 0
        if step <= cfg.warmup_steps:
            log.info("max_steps %s -> %s at step %d (still warming up): schedule unchanged so far",
                     *changed["max_steps"], step)
            del changed["max_steps"]
    if changed:
        raise ValueError(f"{out_dir} was started with other settings {changed}; use a new --out to change them")


# -- the training loop ----------------------------------------------------------------------------


def build_optimizer(model, cfg: TrainConfig):
    """(trainable parameters, AdamW): weight decay on matrices only."""
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]  # all weights (embeddings are tied)
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=cfg.adam_betas, foreach=True,
    )
    return trainable, optimizer


def resume(ckpt_path: Path, model, optimizer, averaged) -> tuple[int, int, int, float, float]:
    """Load ``ckpt_path`` when it exists: (step, epoch, batch position, best mean, seconds trained)."""
    import torch

    if not ckpt_path.exists():
        return 0, 0, 0, -1.0, 0.0
    ckpt = torch.load(ckpt_path, weights_only=False)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["torch_rng"])
    if averaged is not None:
        averaged.load_state_dict(ckpt["averaged"])
    step, epoch, position, best, elapsed = (ckpt[k] for k in ("step", "epoch", "position", "best", "elapsed"))
    log.info("resumed from step %d (epoch %d, batch %d, %.1f min trained)", step, epoch, position, elapsed / 60)
    return step, epoch, position, best, elapsed


@dataclass(frozen=True)
class EvalPlan:
    """Where an evaluation reads and writes: the HF init folder, the run, the data, the held-out questions."""

    init_dir: Path
    out_dir: Path
    data_dir: Path
    cfg: TrainConfig
    questions_val: Path | None
    floors: dict


def evaluate_and_select(model, averaged, step: int, best: float, started: float, plan: EvalPlan) -> float:
    """Score the current weights (and the running average, if any), log each, keep the best eligible one in
    ``best/``; returns the new best mean chrF++."""
    candidates = [("last", "last", model)]
    if averaged is not None and int(averaged.n_averaged) > 0:
        candidates.append(("average", f"average of {int(averaged.n_averaged)}", averaged.module))
    for name, weights, candidate_model in candidates:
        candidate = save_hf(candidate_model, plan.init_dir, plan.out_dir / name)
        chrf = evaluate_checkpoint(candidate, plan.out_dir / f"{name}-ct2", plan.data_dir, plan.cfg,
                                   plan.questions_val)
        mean = sum(chrf.values()) / len(chrf)
        record = {"step": step, "eval_chrf_pp": chrf, "eval_mean": round(mean, 2),
                  "minutes": round((time.time() - started) / 60, 2)}
        if averaged is not None:
            record["weights"] = weights
        eligible = meets_floors(chrf, plan.floors)
        if plan.floors:
            record["meets_select_min"] = eligible
        log.info("eval %s", record)
        with (plan.out_dir / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
        if eligible and mean > best:
            best = mean
            save_hf(candidate_model, plan.init_dir, plan.out_dir / "best")
            (plan.out_dir / "best" / "selection.json").write_text(json.dumps(record, indent=2) + "\n")
    return best


def train(data_dir: Path, out_dir: Path, cfg: TrainConfig, max_minutes: float | None = None,
          questions_dir: Path | None = None, stop_step: int | None = None) -> dict:
    import torch

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_resumable(out_dir, cfg)
    (out_dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")

    # setup model
    init_dir = prepare_model_dir(data_dir, out_dir, cfg)
    model = load_model(init_dir, cfg)
    pad_id, eos_id = model.config.pad_token_id, model.config.eos_token_id
    trainable, optimizer = build_optimizer(model, cfg)
    log.info("model: %.2fM parameters", sum(p.numel() for p in model.parameters()) / 1e6)
    averaged = None
    if cfg.average_every:
        from torch.optim.swa_utils import AveragedModel

        averaged = AveragedModel(model)

    # setup data
    pairs = encode_pairs(data_dir, init_dir, "train", cfg)
    log.info("training pairs (six directions): %d", len(pairs))
    questions_val = None
    if cfg.questions_repeat:
        if questions_dir is None:
            raise ValueError("--questions-repeat needs --questions DIR (the xGQA train_48 files)")
        question_pairs_, questions_val = encode_questions(questions_dir, init_dir, out_dir, cfg)
        pairs += question_pairs_

    # resume
    ckpt_path = out_dir / "checkpoint.pt"
    step, epoch, position, best, elapsed = resume(ckpt_path, model, optimizer, averaged)

    floors = parse_floors(cfg.select_min)
    metrics_path = out_dir / "metrics.jsonl"
    batches = make_batches(pairs, cfg.batch_tokens, cfg.seed + epoch)
    started = time.time() - elapsed
    window_loss, window_tokens, window_start = 0.0, 0, time.time()
    model.train()
    while step < cfg.max_steps:
        if position >= len(batches):
            epoch, position = epoch + 1, 0
            batches = make_batches(pairs, cfg.batch_tokens, cfg.seed + epoch)
        batch = collate(pairs, batches[position], pad_id, eos_id)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        loss, n_tokens = loss_step(model, batch, cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()
        step, position = step + 1, position + 1
        if averaged is not None and step >= cfg.average_from and step % cfg.average_every == 0:
            averaged.update_parameters(model)
        window_loss += loss.item() * n_tokens
        window_tokens += n_tokens

        if step % 50 == 0:
            now = time.time()
            record = {"step": step, "epoch": epoch, "loss": round(window_loss / window_tokens, 4),
                      "lr": learning_rate(step - 1, cfg),
                      "tgt_tokens_per_s": round(window_tokens / (now - window_start), 1),
                      "minutes": round((now - started) / 60, 2)}
            log.info("%s", record)
            with metrics_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
            window_loss, window_tokens, window_start = 0.0, 0, now

        stopping = (max_minutes is not None and (time.time() - started) / 60 >= max_minutes) or step == stop_step
        if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.max_steps or stopping:
            model.eval()
            rng_state = torch.get_rng_state()  # evaluation must not shift the dropout stream of training
            best = evaluate_and_select(model, averaged, step, best, started, EvalPlan(
                init_dir, out_dir, data_dir, cfg, questions_val, floors))
            torch.set_rng_state(rng_state)
            model.train()
            window_start = time.time()
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps or stopping:
            state = {"step": step, "epoch": epoch, "position": position, "best": best,
                     "elapsed": time.time() - started}
            if averaged is not None:
                state["averaged"] = averaged.state_dict()
            save_checkpoint(ckpt_path, model, optimizer, state)
        if stopping:
            log.info("stopping at step %d (--max-minutes %s, --stop-step %s)", step, max_minutes, stop_step)
            break

    summary = {"steps": step, "epochs": round(epoch + position / len(batches), 2),
               "train_minutes": round((time.time() - started) / 60, 1), "best_eval_mean_chrf_pp": best}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("done: %s", summary)
    return summary


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="directory with train/val.{en,de,fr,cs}(.gz)")
    p.add_argument("--out", type=Path, required=True, help="run directory (resumes if it holds a checkpoint)")
    p.add_argument("--questions", type=Path, default=None,
                   help="xGQA directory with train_48.{en,de}.json(.gz), used with --questions-repeat")
    p.add_argument("--stop-step", type=int, default=None,
                   help="stop (evaluating and checkpointing) at this step, before max_steps; the schedule is unchanged")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop (evaluating and checkpointing) after this much training wall time; default: no limit")
    for f in fields(TrainConfig):
        if f.name == "adam_betas":
            continue
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "adam_betas"})
    train(args.data, args.out, cfg, args.max_minutes, args.questions, args.stop_step)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
