"""VQA answer cleaning and the string matches, against values worked out by hand from the official rules."""

from __future__ import annotations

import pytest

from model.evaluate.normalize import maxm_match, pope_answer, relaxed_vqa_match, vqa_clean, vqa_match


@pytest.mark.parametrize(
    ("answer", "cleaned"),
    [
        ("The Dog.", "dog"),  # period removed, lowercased, article dropped
        ("two", "2"),
        ("None", "0"),
        ("An apple", "apple"),
        ("dont know", "don't know"),  # contractions table
        ("whats that", "what's that"),
        ("Im here", "im here"),  # the table's capitalised keys never match after lowercasing (as official)
        ("yes, it is!", "yes it is"),  # "," touches a space -> deleted; "!" does not -> space
        ("black/white", "black white"),  # "/" touches no space -> space
        ("red - blue", "red blue"),  # "-" touches a space -> deleted
        ("1,000 people", "1000 people"),  # a digit,digit number: every mark deleted
        ("3.5 inches.", "3.5 inches"),  # a period before a digit stays
        ("a man's hat", "man's hat"),  # apostrophe kept
        ("10:30", "10:30"),  # colon kept
        ("(yes)", "yes"),
        ("yes\n", "yes"),
        ("\tleft side", "left side"),
        ("x." * 40, "x" * 32 + "x." * 8),  # at most 32 periods go, as with the official re.sub(count=re.UNICODE)
    ],
)
def test_vqa_clean_follows_the_official_rules(answer, cleaned):
    assert vqa_clean(answer) == cleaned


def test_vqa_match_compares_the_cleaned_prediction_with_the_lowercased_label():
    assert vqa_match("The table.", "Table")
    assert vqa_match("Maybe", "maybe") and not vqa_match("maybe yes", "maybe")
    assert relaxed_vqa_match("maybe yes", "maybe") and relaxed_vqa_match("it is a table", "table")
    assert not relaxed_vqa_match("chair", "table")


def test_maxm_match_lowercases_and_strips_but_does_not_clean():
    assert maxm_match("  Rouge ", ["rouge", "rouge vif"])
    assert not maxm_match("the rouge", ["rouge"])  # no article removal for MaXM
    assert not maxm_match("rouge.", ["rouge"])


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("No, there is not.", "no"),
        ("Yes. But no dog.", "yes"),
        ("There is not a dog", "no"),
        ("yes", "yes"),
        ("NO", "no"),
        ("I think so", "yes"),
    ],
)
def test_pope_answer_reads_yes_or_no_from_the_first_sentence(text, answer):
    assert pope_answer(text) == answer
