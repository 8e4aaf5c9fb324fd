"""CIDEr-D for captioning benchmarks, scored per language as the mBLIP reference does.

Predictions are NFC-normalised; Chinese is segmented into characters, Japanese with SudachiPy (split
mode A, core dictionary), Thai with PyThaiNLP (``newmm``), and re-joined with spaces; references get the
same segmentation. Then pycocoevalcap does the rest: its PTBTokenizer (Stanford CoreNLP 3.4.1 jar,
needs ``java`` on PATH; lowercases and drops punctuation tokens) and its ``Cider`` scorer (CIDEr-D:
n = 4, sigma = 6, clipped counts, IDF from the evaluated references). Scores are reported x100.
These are the tools the reference used (pycocoevalcap; spaCy's zh/ja/th language classes, which wrap
the same segmenters); install them with the ``eval`` extra.
"""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache

SEGMENTED_LANGUAGES = ("zh", "ja", "th")


@lru_cache(maxsize=1)
def _sudachi():
    try:
        from sudachipy import Dictionary, SplitMode
    except ImportError as e:
        raise ImportError(
            "Japanese captions need sudachipy + sudachidict-core: pip install 'mblip-pipeline[eval]'"
        ) from e
    return Dictionary(dict="core").create(), SplitMode.A


def segment(text: str, lang: str) -> str:
    """NFC text, words separated by spaces for the languages written without them."""
    text = unicodedata.normalize("NFC", text).strip()
    if lang == "zh":
        return " ".join(ch for ch in text if not ch.isspace())
    if lang == "ja":
        tokenizer, mode = _sudachi()
        return " ".join(m.surface() for m in tokenizer.tokenize(text, mode) if m.surface().strip())
    if lang == "th":
        try:
            from pythainlp.tokenize import word_tokenize
        except ImportError as e:
            raise ImportError("Thai captions need pythainlp: pip install 'mblip-pipeline[eval]'") from e
        return " ".join(w for w in word_tokenize(text, engine="newmm") if w.strip())
    return text


def _check_java() -> None:
    if shutil.which("java") is None:
        raise RuntimeError(
            "CIDEr uses pycocoevalcap's PTB tokenizer, a Java program: install a Java runtime "
            "(e.g. apt-get install default-jre-headless) so that `java` is on PATH"
        )


def ptb_tokenize(captions: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """pycocoevalcap's PTBTokenizer on {key: [caption, ...]} (empty captions stay empty)."""
    try:
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError as e:
        raise ImportError("CIDEr needs pycocoevalcap: pip install 'mblip-pipeline[eval]'") from e
    _check_java()
    # The Java tokenizer reads one caption per line: an empty caption would shift every later line, so
    # it is sent as "." (a punctuation token the tokenizer drops) and set back to "" afterwards.
    keyed = {k: [{"caption": c if c.strip() else "."} for c in v] for k, v in captions.items()}
    out = PTBTokenizer().tokenize(keyed)
    return {k: ["" if not c.strip() else t for c, t in zip(captions[k], out[k])] for k in captions}


def cider(
    references: Mapping[str, Sequence[str]], predictions: Mapping[str, str], lang: str | None = None
) -> tuple[float, dict[str, float]]:
    """CIDEr-D x100 of ``predictions`` (key -> caption) against ``references`` (key -> captions).

    ``lang`` selects the segmentation (zh/ja/th); returns the corpus score and the per-key scores.
    """
    from pycocoevalcap.cider.cider import Cider

    keys = list(predictions)
    if not keys:
        return float("nan"), {}
    missing = [k for k in keys if not references.get(k)]
    if missing:
        raise ValueError(f"no reference captions for {missing[:5]} ({len(missing)} items)")
    refs = ptb_tokenize({k: [segment(c, lang or "") for c in references[k]] for k in keys})
    hyps = ptb_tokenize({k: [segment(predictions[k], lang or "")] for k in keys})
    score, per_item = Cider().compute_score(refs, hyps)
    return 100.0 * float(score), {k: 100.0 * float(s) for k, s in zip(keys, per_item)}
