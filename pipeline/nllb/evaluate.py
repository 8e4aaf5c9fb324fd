"""Score a converted NLLB-architecture model on a parallel test set (chrF++ and BLEU with sacrebleu).

The parallel data is laid out like Multi30k: one file per language and split, one sentence per line,
optionally gzipped (``val.en.gz``, ``val.de.gz``, ...). Line ``i`` of every language is the same
caption. Scores are corpus-level sacrebleu: chrF++ (``CHRF(word_order=2)``) and BLEU (13a tokeniser).
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.languages import get_language

log = logging.getLogger(__name__)

# The four Multi30k languages; the shipped model covers English <-> each of the others.
MULTI30K_LANGUAGES = ("en", "de", "fr", "cs")
MULTI30K_DIRECTIONS = (("en", "de"), ("en", "fr"), ("en", "cs"), ("de", "en"), ("fr", "en"), ("cs", "en"))


@dataclass(frozen=True)
class DirectionScore:
    src: str  # NLLB code, e.g. "eng_Latn"
    tgt: str
    sentences: int
    chrf_pp: float  # chrF++ (character 6-grams + word 2-grams), 0-100
    bleu: float  # sacrebleu BLEU, 13a tokeniser, 0-100
    seconds: float  # wall time of the translation alone


def split_path(data_dir: str | Path, split: str, lang: str) -> Path:
    """``DIR/split.lang.gz`` or ``DIR/split.lang``, whichever exists."""
    data_dir = Path(data_dir)
    for name in (f"{split}.{lang}.gz", f"{split}.{lang}"):
        if (data_dir / name).exists():
            return data_dir / name
    raise FileNotFoundError(f"no {split}.{lang}(.gz) in {data_dir}; expected one sentence per line")


def read_lines(path: str | Path, limit: int | None = None) -> list[str]:
    """Lines of a (gzipped) text file without their newline; at most ``limit`` lines."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    lines: list[str] = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(lines) >= limit:
                break
            lines.append(line.rstrip("\n"))
    return lines


def score_corpus(hypotheses: list[str], references: list[str]) -> tuple[float, float]:
    """(chrF++, BLEU) of ``hypotheses`` against one reference each."""
    from sacrebleu.metrics import BLEU, CHRF

    chrf = CHRF(word_order=2).corpus_score(hypotheses, [references]).score
    bleu = BLEU().corpus_score(hypotheses, [references]).score
    return chrf, bleu


def evaluate_directions(
    translator,
    data_dir: str | Path,
    directions: tuple[tuple[str, str], ...] = MULTI30K_DIRECTIONS,
    split: str = "val",
    limit: int | None = None,
) -> list[DirectionScore]:
    """Translate the first ``limit`` lines of ``split`` for each (src, tgt) project-code direction.

    ``translator`` is an ``NllbTranslator`` (loaded by the caller, see ``pipeline.nllb.engine``).
    """
    scores = []
    for src, tgt in directions:
        src_code, tgt_code = get_language(src).nllb, get_language(tgt).nllb
        sources = read_lines(split_path(data_dir, split, src), limit)
        references = read_lines(split_path(data_dir, split, tgt), limit)
        if len(sources) != len(references):
            raise ValueError(f"{split}.{src} has {len(sources)} lines but {split}.{tgt} has {len(references)}")
        start = time.perf_counter()
        hypotheses = [t.text for t in translator.translate(sources, src_code, tgt_code)]
        seconds = time.perf_counter() - start
        chrf, bleu = score_corpus(hypotheses, references)
        scores.append(DirectionScore(src_code, tgt_code, len(sources), round(chrf, 2), round(bleu, 2),
                                     round(seconds, 2)))
        log.info("%s->%s: chrF++ %.2f BLEU %.2f (%d sentences, %.1fs)", src, tgt, chrf, bleu, len(sources), seconds)
    return scores


def format_scores(scores: list[DirectionScore]) -> str:
    """A Markdown table of the scores, one row per direction."""
    rows = ["| direction | sentences | chrF++ | BLEU |", "|---|---:|---:|---:|"]
    rows += [f"| {s.src} → {s.tgt} | {s.sentences} | {s.chrf_pp:.2f} | {s.bleu:.2f} |" for s in scores]
    return "\n".join(rows)


def scores_to_json(scores: list[DirectionScore]) -> str:
    return json.dumps([asdict(s) for s in scores], indent=2) + "\n"
