"""The 96-language table (95 targets plus English) with lookups by project code or NLLB code.

Shares are the mC4 shares the mBLIP paper used to decide how many examples each language gets
(Geigle et al. 2024, Sec. 3.1). Two deliberate departures from the reference data code are recorded
in the table's ``note`` column: Chinese is Simplified (``zho_Hans``) and Kurdish is Kurmanji
(``kmr_Latn``), matching what mC4 actually contains.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

SOURCE_LANGUAGE = "en"  # the language of every source text
SOURCE_NLLB = "eng_Latn"  # its NLLB code (the source token of every forward translation)

# How instructions name a language: ``project`` = the table's names; ``reference`` = the spelling of the
# mBLIP reference code's name list (Google Translate's, ``lang_code2lang`` in its ``data/*/generate_train.py``)
# where it differs. Hebrew stays "Hebrew" in both: the reference's caption and VQA scripts said "former
# Hebrew" (a defect; its ImageNet script said "Hebrew").
NAME_SPELLINGS = ("project", "reference")
REFERENCE_NAMES = {"bn": "Bangla", "ht": "Haitian", "ny": "Nyanja"}


@dataclass(frozen=True)
class Language:
    code: str  # mC4 / project code, e.g. "de", "iw"
    name: str
    nllb: str  # NLLB-200 language token, e.g. "deu_Latn"
    script: str  # ISO 15924 script from the NLLB code, e.g. "Latn", "Hans"
    mc4_share_pct: float
    note: str = ""


class UnknownLanguageError(ValueError):
    """A language code that is neither a project code nor an NLLB code of the table."""


@lru_cache(maxsize=1)
def load_languages() -> tuple[Language, ...]:
    text = resources.files("pipeline").joinpath("languages.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return tuple(
        Language(
            code=r["code"],
            name=r["name"],
            nllb=r["nllb"],
            script=r["script"],
            mc4_share_pct=float(r["mc4_share_pct"]),
            note=r.get("note") or "",
        )
        for r in rows
    )


@lru_cache(maxsize=1)
def _index() -> dict[str, Language]:
    index: dict[str, Language] = {}
    for lang in load_languages():
        index[lang.code] = lang
        index[lang.nllb] = lang
    return index


def get_language(code: str) -> Language:
    """Look a language up by project code (``de``) or NLLB code (``deu_Latn``)."""
    try:
        return _index()[code]
    except KeyError:
        valid = ", ".join(sorted(lang.code for lang in load_languages()))
        raise UnknownLanguageError(
            f"unknown language code {code!r}; use a project code or its NLLB code. Valid project codes: {valid}"
        ) from None


def language_name(code: str, spelling: str = "project") -> str:
    """The English name instructions use for a language (``spelling``: see ``NAME_SPELLINGS``)."""
    if spelling not in NAME_SPELLINGS:
        raise ValueError(f"unknown language-name spelling {spelling!r}; use one of {', '.join(NAME_SPELLINGS)}")
    language = get_language(code)
    return REFERENCE_NAMES.get(language.code, language.name) if spelling == "reference" else language.name


def resolve_languages(codes: list[str] | tuple[str, ...] | None) -> tuple[Language, ...]:
    """Languages of a run: the given codes (either kind), or all 96, English included.

    English is a language of the mix like any other, at its mC4 share (~43.8%, as in mBLIP): its rows
    keep the English text (nothing is translated) and skip the checks that only apply to translations.
    """
    if not codes:
        return load_languages()
    seen: dict[str, Language] = {}
    for code in codes:
        lang = get_language(code)
        seen.setdefault(lang.code, lang)
    return tuple(seen.values())
