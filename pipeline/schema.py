"""The one row schema every stage shares, and the quarantine schema for records that could not be read.

A row is one English example (a caption, or a VQA question with its answers) assigned to one target
language. Stages add columns; they never drop rows. ``status`` is ``kept`` or ``rejected`` after the
filter; quarantined records never become rows (they live in the quarantine shard with their reason).
"""

from __future__ import annotations

import hashlib

import polars as pl

SCHEMA_VERSION = 1

TASK_CAPTION = "caption"
TASK_VQA = "vqa"
TASK_MATCH = "match"  # image-caption matching (yes/no), see pipeline/matching.py
# The rest of the mBLIP training mix (Geigle et al. 2024, Sec. 3.1, Table 1); read by pipeline/ingest/.
TASK_VQG = "vqg"  # question generation from an answer (VQAv2)
TASK_AOKVQA_EXPLAIN = "aokvqa_explain"  # A-OKVQA: explain why an answer is right -> the rationale
TASK_AOKVQA_COT = "aokvqa_cot"  # A-OKVQA: chain of thought -> rationale and answer
TASK_LLAVA = "llava"  # LLaVA-Instruct: one human/gpt turn; the instruction is the prompt
TASK_CLASSIFY = "classify"  # ImageNet: the class name in a language
TASK_DECIDE = "decide"  # ImageNet: "does the image show X?" -> yes/no
TASK_INSTRUCT = "instruct"  # a ready (prompt, target) pair, e.g. the released mBLIP training file

STATUS_KEPT = "kept"
STATUS_REJECTED = "rejected"

# Columns produced by the readers (English side).
SOURCE_SCHEMA: dict[str, pl.DataType] = {
    "example_id": pl.String(),  # stable: hash of (source, source_record_id); never positional
    "source": pl.String(),  # e.g. "coco_captions", "vqav2"
    "source_record_id": pl.String(),  # caption annotation id / VQA question_id, as in the source file
    "source_file": pl.String(),  # file the record came from (for error messages and provenance)
    "task": pl.String(),  # "caption" | "vqa"
    "image_id": pl.String(),
    "image_path": pl.String(),  # relative to the source's image root
    "text_en": pl.String(),  # caption, or question
    "answer_en": pl.String(),  # VQA: multiple_choice_answer; null for captions
    "answers_en": pl.List(pl.String()),  # VQA: all (10) human answers; null for captions
    # Text that goes into the prompt and is translated with the row (LLaVA instruction, A-OKVQA
    # question, a released row's context); null when the prompt is a template only.
    "context_en": pl.String(),
    # The source fixes the row's language and its texts are already in it (ImageNet class names per
    # language, A-OKVQA kept English, a released row): not translated, not translation-filtered.
    "preset_lang": pl.String(),
}

# Columns added by assignment, translation and filtering.
TARGET_SCHEMA: dict[str, pl.DataType] = {
    "lang": pl.String(),  # project language code, e.g. "de"
    "lang_nllb": pl.String(),  # e.g. "deu_Latn"
    "text_tgt": pl.String(),
    "answer_tgt": pl.String(),  # translated answer, or the English one when answer_translated is false
    "answer_translated": pl.Boolean(),  # answer translated by the answer rule (pipeline/answers.py); false: English
    "translation_truncated": pl.Boolean(),  # text_en was longer than the engine's input limit and was cut
    "context_tgt": pl.String(),  # context_en in the row's language
    "target": pl.String(),  # what the model is trained to produce (see pipeline/templates.py: add_prompts)
    "prompt": pl.String(),  # instruction in the row's language (VQA: with the question); see pipeline/templates.py
    "backtranslation_en": pl.String(),
    "score_bt_chrf": pl.Float64(),  # chrF++ (0-100) of back-translation vs text_en
    # Quality-filter signals (pipeline/filters/quality.py documents each; null = not applicable).
    "score_fwd_logprob": pl.Float64(),  # forced-decoding mean log-prob per token of text_tgt
    "score_fwd_margin": pl.Float64(),  # the same minus its value under other sources (a fixed pool)
    "score_sentence_margin": pl.Float64(),  # lowest such margin of the sentences of a multi-sentence output
    "score_bt_logprob": pl.Float64(),  # reverse forced-decoding mean log-prob of text_en given text_tgt
    "score_dual_xent": pl.Float64(),  # dual conditional cross-entropy, nats/token (lower = better)
    "sig_input_error": pl.String(),
    "score_script_share": pl.Float64(),
    "score_copy_overlap": pl.Float64(),
    "score_repeat_run": pl.Int64(),
    "score_repeat_ngram": pl.Float64(),
    "score_compression": pl.Float64(),
    "score_char_repeat": pl.Int64(),  # most back-to-back copies of a 2-5 character unit ("zezeze" = 3)
    "score_en_leak": pl.Float64(),  # share (0-1) of the source's content words left in English
    "score_length_ratio": pl.Float64(),
    "sig_short_inflated": pl.Boolean(),
    "sig_numbers_ok": pl.Boolean(),
    "sig_langid_top": pl.String(),
    "score_langid_rank": pl.Int64(),
    "score_langid_prob": pl.Float64(),
    "sig_answer_issue": pl.String(),
    "status": pl.String(),  # "kept" | "rejected"
    "reject_reason": pl.String(),  # first failing rule, null when kept
}

ROW_SCHEMA: dict[str, pl.DataType] = {**SOURCE_SCHEMA, **TARGET_SCHEMA}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "source_file": pl.String(),
    "record_index": pl.Int64(),  # position of the record in its file/array (0-based)
    "record_id": pl.String(),  # id of the record where it could be read, else null
    "field": pl.String(),  # offending field, e.g. "caption", "image_id"
    "reason": pl.String(),
    "raw": pl.String(),  # the record as JSON text, truncated to 2000 characters
}


def make_example_id(source: str, record_id: str) -> str:
    """Stable id from the source name and the record's own id (not its position in the file)."""
    return hashlib.sha1(f"{source}\x1f{record_id}".encode()).hexdigest()[:20]


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and cast ``frame`` to ``schema`` (missing columns become nulls), in schema order."""
    cols = []
    for name, dtype in schema.items():
        if name in frame.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(cols)
