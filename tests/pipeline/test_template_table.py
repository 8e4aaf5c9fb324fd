"""The template table holds the mBLIP reference code's strings, verbatim: every list is compared, string by
string and slot by slot, with ``mblip-templates.md`` (the reference's lists restated; the copy in
tests/data always, ``../shared/reference`` when present). The one string left out on purpose is the
chain-of-thought target ``{1} because {1}.`` (it drops the rationale)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.schema import (
    TASK_AOKVQA_COT, TASK_AOKVQA_EXPLAIN, TASK_CAPTION, TASK_CLASSIFY, TASK_DECIDE, TASK_MATCH, TASK_VQA, TASK_VQG,
)
from pipeline.template_table import (
    COT_TARGET, DECIDE_TEMPLATES, MATCH_TEMPLATES, REFERENCE_ARGS, TASK_VQA_ENGLISH_ANSWER, TEMPLATES,
    TRANSLATED_TEMPLATES,
)
from pipeline.templates import english_templates, prompt_and_target

REPO = Path(__file__).resolve().parents[2]
COPY = REPO / "tests" / "data" / "mblip-templates.md"
SHARED = REPO.parent / "shared" / "reference" / "mblip-templates.md"
DEFECT = "{1} because {1}."
# Section heading (its start) -> (the table's list, the reference's format() arguments)
SECTIONS = {
    "Captions (MSCOCO and web CapFilt)": (TASK_CAPTION, REFERENCE_ARGS[TASK_CAPTION]),
    "Captions, plain templates": ("plain", ()),
    "VQA (VQAv2)": (TASK_VQA, REFERENCE_ARGS[TASK_VQA]),
    "Question generation": (TASK_VQG, REFERENCE_ARGS[TASK_VQG]),
    "ImageNet classify": (TASK_CLASSIFY, REFERENCE_ARGS[TASK_CLASSIFY]),
    "ImageNet decide": (TASK_DECIDE, REFERENCE_ARGS[TASK_DECIDE]),
    "A-OKVQA chain of thought: target": (COT_TARGET, REFERENCE_ARGS[COT_TARGET]),
    "A-OKVQA chain of thought: prompt": (TASK_AOKVQA_COT, REFERENCE_ARGS[TASK_AOKVQA_COT]),
    "A-OKVQA explanation": (TASK_AOKVQA_EXPLAIN, REFERENCE_ARGS[TASK_AOKVQA_EXPLAIN]),
    "Image-caption matching": (TASK_MATCH, REFERENCE_ARGS[TASK_MATCH]),
}
VALUES = {"lang": "<LANG>", "question": "<Q>", "answer": "<A>", "rationale": "<R>", "label": "<L>", "caption": "<C>"}


def parse_reference(path: Path) -> dict[str, list[tuple[str, ...]]]:
    """Heading -> the table's rows, each the tuple of its back-quoted strings (spaces kept)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    heading = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            out[heading] = []
        elif heading and line.startswith("|") and "`" in line:
            out[heading].append(tuple(re.findall(r"`([^`]*)`", line)))
    return out


def _ours(key: str) -> list[tuple[str, ...]]:
    if key == "plain":
        return [(t,) for t in TRANSLATED_TEMPLATES[TASK_CAPTION]]
    if key == TASK_DECIDE:
        return list(DECIDE_TEMPLATES)
    if key == TASK_MATCH:
        return list(MATCH_TEMPLATES)
    return [(t,) for t in TEMPLATES[key]]


def _fill(template: str) -> str:
    for name, value in VALUES.items():
        template = template.replace("{" + name + "}", value)
    return template


def _section(reference: dict, start: str) -> list[tuple[str, ...]]:
    [heading] = [h for h in reference if h.startswith(start)]
    return reference[heading]


def check_against(reference: dict[str, list[tuple[str, ...]]]) -> None:
    for start, (key, args) in SECTIONS.items():
        rows = _section(reference, start)
        if key == COT_TARGET:  # the documented fix: the rationale-less target is left out
            assert (DEFECT,) in rows
            rows = [r for r in rows if r != (DEFECT,)]
        ours = _ours(key)
        assert len(ours) == len(rows), start
        for mine, theirs in zip(ours, rows):
            # the question (first string) with its slots; yes/no answers are plain strings
            assert _fill(mine[0]) == theirs[0].format(*[VALUES[a] for a in args]), (start, mine[0], theirs[0])
            assert mine[1:] == theirs[1:], (start, mine)


def test_every_template_is_the_references_string_for_string():
    check_against(parse_reference(COPY))


@pytest.mark.skipif(not SHARED.is_file(), reason="../shared/reference is not next to this checkout")
def test_the_shared_reference_file_agrees():
    assert parse_reference(SHARED) == parse_reference(COPY)
    check_against(parse_reference(SHARED))


def test_counts_and_exact_strings():
    counts = {key: len(_ours(key)) for key, _ in SECTIONS.values()}
    assert counts == {TASK_CAPTION: 6, "plain": 5, TASK_VQA: 6, TASK_VQG: 5, TASK_CLASSIFY: 11, TASK_DECIDE: 8,
                      COT_TARGET: 4, TASK_AOKVQA_COT: 5, TASK_AOKVQA_EXPLAIN: 5, TASK_MATCH: 12}
    assert sum(len(row) for key, _ in SECTIONS.values() for row in _ours(key)) == 107  # 108 less the defect
    assert TEMPLATES[TASK_CAPTION][1] == "Short {lang} image caption: "  # trailing space kept
    assert TRANSLATED_TEMPLATES[TASK_CAPTION][1] == "Short image caption: "
    assert MATCH_TEMPLATES[2][0] == 'Does  "{caption}" correctly summarize the image?'  # double space kept
    assert MATCH_TEMPLATES[8][0] == "Decide if this captions is a correct summary of the image: {caption}."
    assert TEMPLATES[TASK_VQA][0] == "{question} Short {lang} answer:"
    assert DECIDE_TEMPLATES[7] == ("Can you see a {label} in the image?", "Yes, you can.", "No, you can not.")
    assert TEMPLATES[TASK_VQA_ENGLISH_ANSWER][1] == "Question: {question} Brief answer (in English):"
    assert all("{rationale}" in t and "{answer}" in t for t in TEMPLATES[COT_TARGET])


def test_rows_keep_the_templates_spacing():
    german = english_templates("de")
    for i in range(200):
        eid = f"m{i}"
        row = {"example_id": eid, "task": TASK_MATCH, "text_en": "a dog", "text_tgt": " ein Hund ",
               "answer_en": "Yes, it is."}
        prompt, _ = prompt_and_target(row, german)
        if prompt.startswith("Does  "):
            assert prompt == 'Does  "ein Hund" correctly summarize the image?'
            break
    else:
        pytest.fail("no row drew the double-spaced matching template")
    english = english_templates("en")
    prompts = {prompt_and_target({"example_id": f"c{i}", "task": TASK_CAPTION, "text_en": "A dog."}, english)[0]
               for i in range(300)}
    # English caption rows draw the plain templates as they are (the reference's generate_en)
    assert prompts == set(TRANSLATED_TEMPLATES[TASK_CAPTION])
