from pipeline.filters.numbers import extract_numbers, numbers_consistent


def test_digits_of_any_script_and_words_with_a_lexicon():
    assert extract_numbers("٣ رجال و 12 كلبا", "ar") == ["3", "12"]
    assert extract_numbers("Zwei Männer auf einem vierstöckigen Haus", "de") == ["2", "4"]
    assert extract_numbers("Dvanáct lidí", "cs") == ["12"]  # not "dva"
    assert extract_numbers("Zwei Männer", "fi") == []  # no lexicon: digits only


def test_numbers_must_survive_as_often_as_they_occur():
    assert numbers_consistent("Two men and a dog.", "Zwei Männer und ein Hund.", "de") is True
    assert numbers_consistent("Two men and a dog.", "Drei Männer und ein Hund.", "de") is False
    assert numbers_consistent("Two men and two women.", "Acht Männer und zwei Frauen.", "de") is False
    assert numbers_consistent("Her two children.", "Ihre beiden Kinder.", "de") is True
    assert numbers_consistent("A man in 1999.", "Muž v roce 1999.", "cs") is True
    assert numbers_consistent("A man in 1999.", "Muž v roce 1989.", "cs") is False
    assert numbers_consistent("Player number 7.", "Joueur numéro sept.", "fr") is True


def test_nothing_to_check():
    assert numbers_consistent("A man and a dog.", "Ein Mann und ein Hund.", "de") is None
    # Without a target lexicon, a source number word cannot be verified: not applicable.
    assert numbers_consistent("Two men.", "Kaksi miestä.", "fi") is None
    assert numbers_consistent("2 men.", "Kaksi miestä.", "fi") is False
