import pytest

from pipeline.filters.scripts import expected_char_ratio, script_share


@pytest.mark.parametrize(
    ("text", "script", "expected"),
    [
        ("3 Männer, 2 Hunde!", "Latn", 1.0),
        ("Мужчина в Москве.", "Cyrl", 1.0),
        ("Mужчина", "Cyrl", 6 / 7),  # first letter is a Latin M
        ("男の人がソファで寝ている。", "Jpan", 1.0),
        ("남자가 소파에서 자고 있다.", "Hang", 1.0),
        ("आदमी सोफे पर सो रहा है।", "Deva", 1.0),
        ("A man sleeping.", "Cyrl", 0.0),
    ],
)
def test_script_share(text, script, expected):
    assert script_share(text, script) == pytest.approx(expected)


def test_source_names_in_latin_do_not_count_against_other_scripts():
    text = "Мужчина в Barcelona."
    assert script_share(text, "Cyrl") < 0.7
    assert script_share(text, "Cyrl", frozenset({"barcelona"})) == 1.0


def test_no_letters_is_not_applicable():
    assert script_share("42 !", "Latn") is None


def test_expected_ratio_by_language_then_script():
    assert expected_char_ratio("ces_Latn") < expected_char_ratio("deu_Latn")
    assert expected_char_ratio("zho_Hans") < 0.5
    assert expected_char_ratio("pol_Latn") == expected_char_ratio("spa_Latn")
