import pytest

from pipeline.languages import (
    SOURCE_LANGUAGE, SOURCE_NLLB, UnknownLanguageError, get_language, load_languages, resolve_languages,
)


def test_table_has_96_languages_with_unique_codes():
    langs = load_languages()
    assert len(langs) == 96
    assert len({l.code for l in langs}) == 96
    assert len({l.nllb for l in langs}) == 96
    assert abs(sum(l.mc4_share_pct for l in langs) - 100.0) < 1e-3


def test_source_language_codes_agree_with_the_table():
    assert get_language(SOURCE_LANGUAGE).nllb == SOURCE_NLLB == "eng_Latn"


def test_lookup_by_either_code_and_documented_fixes():
    assert get_language("de") is get_language("deu_Latn")
    assert get_language("zh").nllb == "zho_Hans"  # Simplified, as in mC4
    assert get_language("ku").nllb == "kmr_Latn"  # Kurmanji, as in mC4
    assert get_language("iw").name == "Hebrew"


def test_unknown_code_lists_valid_codes():
    with pytest.raises(UnknownLanguageError) as err:
        get_language("xx")
    assert "'xx'" in str(err.value) and " de," in str(err.value)


def test_resolve_defaults_to_all_96_with_english_and_dedupes():
    assert len(resolve_languages(None)) == 96 and resolve_languages(None)[0].code == "en"
    assert [l.code for l in resolve_languages(["de", "deu_Latn", "fr"])] == ["de", "fr"]


def test_cli_prints_table(capsys):
    from mblip.cli import main

    assert main(["languages"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 97 and "deu_Latn" in "".join(out)
