"""Fixed text of the card: what each column and engine counter means, the citations, Markdown tables."""

from __future__ import annotations

from pipeline.card.plots import score_label

COLUMN_DOCS = {
    "example_id": "stable id: hash of (source, source record id)",
    "source": "source name in the run config",
    "source_record_id": "the record's own id in the source file (annotation / question id)",
    "source_file": "file the record came from",
    "task": "`caption`, `vqa`, `vqg`, `aokvqa_explain`, `aokvqa_cot`, `llava`, `classify`, `decide`, `instruct`",
    "context_en": "English text that goes into the prompt (LLaVA instruction, A-OKVQA question)",
    "preset_lang": "language the source fixed (text already in it, not translated)",
    "context_tgt": "`context_en` in the target language",
    "target": "what the model is trained to produce",
    "image_id": "the source's image id",
    "image_path": "image path relative to the source's image root (`image_roots` in manifest.json)",
    "text_en": "English caption or question",
    "answer_en": "VQA: most common English answer",
    "answers_en": "VQA: all human answers",
    "lang": "target language (mC4 code)",
    "lang_nllb": "NLLB-200 code the text was translated into",
    "text_tgt": "machine translation of `text_en`",
    "answer_tgt": "machine translation of `answer_en`, or `answer_en` itself when `answer_translated` is false "
                  "(the answer rule: seen >= `answers.min_count` times in its source, no digits, longer than one "
                  "character, round trip)",
    "backtranslation_en": "`text_tgt` translated back into English",
    "status": "`kept` or `rejected`",
    "reject_reason": "first failing filter rule (null when kept)",
    "prompt": "instruction: an English template naming the language, or a translated one (see Recipe)",
}

ENGINE_COUNTER_DOCS = {
    "requested": "non-empty strings asked for (one per row and field)",
    "empty": "empty strings (no model call)",
    "distinct": "distinct (text, language) pairs among them",
    "cache_hits": "distinct strings served by the translation cache",
    "translated": "distinct strings the model translated",
    "truncated": "strings longer than the input limit (cut, flagged)",
    "decoded_tokens": "decoder tokens spent",
    "dedup_factor": "requested / distinct",
    "cache_hit_rate": "cache_hits / distinct",
}

MBLIP_CITATION = """@inproceedings{geigle2024mblip,
  title     = {{mBLIP}: Efficient Bootstrapping of Multilingual Vision-{LLMs}},
  author    = {Geigle, Gregor and Jain, Abhay and Timofte, Radu and Glava{\\v{s}}, Goran},
  booktitle = {Proceedings of the 3rd Workshop on Advances in Language and Vision Research (ALVR)},
  year      = {2024}
}"""
NLLB_CITATION = """@article{nllb2022,
  title   = {No Language Left Behind: Scaling Human-Centered Machine Translation},
  author  = {{NLLB Team} and Costa-juss{\\`a}, Marta R. and Cross, James and {\\c{C}}elebi, Onur and others},
  journal = {arXiv preprint arXiv:2207.04672},
  year    = {2022}
}"""


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def flatten(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out += flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def column_doc(name: str) -> str:
    if name in COLUMN_DOCS:
        return COLUMN_DOCS[name]
    if name.startswith("score_"):
        return score_label(name)
    if name.startswith("sig_"):
        return "filter signal (pipeline/filters/quality.py)"
    return "see pipeline/schema.py"
