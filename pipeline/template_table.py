"""The one instruction-template table: mBLIP's strings, verbatim (Geigle et al. 2024, Sec. 3.1 and App. A;
github gregor-ge/mBLIP, ``data/*/generate_train.py``).

Every string is the reference code's, spacing, trailing spaces and typos included ("Short {lang} image
caption: ", "Decide if this captions is ...", the double space in ``Does  "{caption}"``), so that a
run can be compared with the paper: the paper's zero-shot scores depend on the training prompts being
different from the evaluation prompts. Slots are named here (``{lang}`` = the language's English name,
``{question}``/``{answer}``/``{caption}``/``{rationale}``/``{label}`` = filled per example, never
translated); ``REFERENCE_ARGS`` maps the reference's ``{}`` / ``{0}`` / ``{1}`` to them
(tests/pipeline/test_template_table.py compares every string with the reference's lists).

- ``TEMPLATES``: the English templates per task. The first template of a task is the inference
  prompt of ``mblip caption`` / ``mblip ask`` (``model/templates.py``).
- ``TRANSLATED_TEMPLATES``: the plain caption templates (no language name), machine-translated for
  every language (``pipeline/templates.py``; the reference translated them with NLLB too); English
  caption rows use them as they are (the reference's ``generate_en``).
- ``vqa_en``: the VQA templates naming English, used whenever the target is the English answer (the
  answer rule kept it, or the trainer's coin flip picked it): prompt and target always agree.
- ``DECIDE_TEMPLATES`` / ``MATCH_TEMPLATES``: (question, yes-target, no-target) triples.

How a template is drawn (the reference drew with ``random.choice``, unseeded in places; here a hash of
the example id): one template per example, uniformly over the task's list; a non-English caption row
draws from its language-naming list and its translated plain list together, so E/(E+T) of them get an
English instruction (E = 6, T = the translations that survived). One deliberate departure: the
reference's fifth chain-of-thought target, ``{1} because {1}.``, repeats the answer and drops the
rationale (~20% of its targets held no reasoning); it is left out, so every target holds its rationale.

How templates are picked, translated, checked and filled: ``pipeline/templates.py``.
"""

from __future__ import annotations

import hashlib

from pipeline.schema import (
    TASK_AOKVQA_COT, TASK_AOKVQA_EXPLAIN, TASK_CAPTION, TASK_CLASSIFY, TASK_DECIDE, TASK_INSTRUCT, TASK_LLAVA,
    TASK_MATCH, TASK_VQA, TASK_VQG,
)

TASK_VQA_ENGLISH_ANSWER = "vqa_en"
COT_TARGET = "aokvqa_cot_target"
DECIDE_YES, DECIDE_NO = "decide_yes", "decide_no"

# data/imagenet/generate_train.py, ``imagenet_decide_templates``: the class name (in the row's
# language) in the question; each question has its own English yes/no answer.
DECIDE_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("Does this image show a {label}?", "Yes, it does.", "No, it does not."),
    ("Is there a {label}?", "Yes, there is.", "No, there is not."),
    ("Are there any {label} in the picture?", "Yes, there are.", "No, there are not."),
    ("Does the image contain a {label}?", "Yes, it does.", "No, it does not."),
    ("Yes or no, there is a {label} in the photo.", "Yes", "No"),
    ("Yes or no, there is a {label} visible in the image.", "Yes", "No"),
    ("Does this picture have a {label} in it?", "Yes, it does.", "No, it does not."),
    ("Can you see a {label} in the image?", "Yes, you can.", "No, you can not."),
)
# data/pretrain/generate_match_train.py, ``matching_templates``: the caption (the slot) is translated;
# question and answers stay English and the language is never named.
MATCH_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ('Does "{caption}" accurately describe the image?', "Yes, it does.", "No, it does not."),
    ('Does the caption "{caption}" fit the picture?', "Yes, it does.", "No, it does not."),
    ('Does  "{caption}" correctly summarize the image?', "Yes, it does.", "No, it does not."),
    ('Is "{caption}" a good image description?', "Yes, it is.", "No, it is not."),
    ('Is "{caption}" a correct caption for the picture?', "Yes, it is.", "No, it is not."),
    ('Is the caption "{caption}" a good match for the image?', "Yes, it is.", "No, it is not."),
    ("Decide if the following caption accurately describes the image: {caption}. Answer:", "Yes, it does.",
     "No, it does not."),
    ("Is this caption a good match for the picture? {caption}. Answer: ", "Yes, it is.", "No, it is not."),
    ("Decide if this captions is a correct summary of the image: {caption}.", "Yes, it is.", "No, it is not."),
    ('Would "{caption}" be a good image summary?', "Yes, it would.", "No, it would not."),
    ('Would the caption "{caption}" fit the picture?', "Yes, it would.", "No, it would not."),
    ('Could you use "{caption}" as a caption for the image?', "Yes, you could.", "No, you could not."),
)

# English templates per task (add a task: one entry here; its prompt slots are filled by ``render``).
TEMPLATES: dict[str, tuple[str, ...]] = {
    # data/mscoco/generate_train.py (and data/pretrain/generate_train.py), ``templates_lang``
    TASK_CAPTION: (
        "Caption the image in {lang}.",
        "Short {lang} image caption: ",
        "Image caption (in {lang}): ",
        "Briefly describe the image in {lang}.",
        "Write a short {lang} image description.",
        "Summarize the image in {lang}.",
    ),
    # data/vqa/generate_train.py, ``vqa_templates``: the (translated) question and the answer language
    TASK_VQA: (
        "{question} Short {lang} answer:",
        "Question: {question} Brief answer (in {lang}):",
        "Give a short answer in {lang} to the following question. {question}",
        "Answer the provided question in {lang} with three words or less. {question}",
        "What is the {lang} answer to this question? {question}",
        "Briefly answer in {lang}. {question}",
    ),
    # data/vqa/generate_train.py, ``vqg_templates``: the target question's language and the answer
    TASK_VQG: (
        "Given the image, generate a question in {lang} whose answer is: {answer}. Question:",
        'Based on the image, create a question (in {lang}) for which the answer is "{answer}".',
        "From the image provided, come up with a {lang} question that leads to the reply: {answer}. Question:",
        'What is a {lang} question for the image with the answer "{answer}"?',
        'Given the image, what would be a {lang} question that has as answer "{answer}"?',
    ),
    # data/imagenet/generate_train.py, ``imagenet_templates``: target = the class name in that language
    TASK_CLASSIFY: (
        "What is the main focus of the image? Short {lang} answer:",
        "What is in the image? Answer briefly in {lang}.",
        "This is an image of what? Answer briefly in {lang}.",
        "What is the central object in the image? Give a short {lang} answer.",
        "The focus of the image is of what? Short {lang} answer:",
        "Question: This is an image of what? Answer briefly in {lang}.",
        "What is at the center of this picture? Short {lang} answer:",
        "Give a short answer in {lang} to the following question. What is the main thing shown in the image?",
        "Complete the sentence in {lang}. This is a photo of a",
        "Name the main thing of this photo in {lang}:",
        "In less than 3 words in {lang}, what can be seen in this image?",
    ),
    # data/aokvqa/generate_train.py, ``explanation_templates`` (target = the rationale)
    TASK_AOKVQA_EXPLAIN: (
        "Question: {question}: Answer: {answer}. Explanation:",
        "Question: {question}: Answer: {answer}. The reason is because ",
        'The answer to the question "{question}" is "{answer}". Why?',
        'Why is the answer to the question "{question}"  "{answer}"?',
        'Explain why the answer to the question "{question}" is "{answer}".',
    ),
    # data/aokvqa/generate_train.py, ``cot_question_templates``
    TASK_AOKVQA_COT: (
        "Reason the answer to the following question. {question}",
        "Use reasoning to come to an answer for this question. {question}",
        "Think step-by-step to answer this question. {question}",
        "Answer the following question and explain your answer. {question}",
        "{question} What is the answer and why?",
    ),
    # data/aokvqa/generate_train.py, ``cot_answer_templates`` without the fifth, "{1} because {1}."
    # (it drops the rationale: see the module docstring)
    COT_TARGET: (
        "{rationale}. So the answer is {answer}",
        "{rationale} so {answer}",
        "{rationale}. This means the answer is {answer}",
        "The answer is {answer} because {rationale}.",
    ),
    TASK_DECIDE: tuple(q for q, _, _ in DECIDE_TEMPLATES),
    DECIDE_YES: tuple(y for _, y, _ in DECIDE_TEMPLATES),
    DECIDE_NO: tuple(n for _, _, n in DECIDE_TEMPLATES),
    TASK_MATCH: tuple(q for q, _, _ in MATCH_TEMPLATES),
}
TEMPLATES[TASK_VQA_ENGLISH_ANSWER] = tuple(t.replace("{lang}", "English") for t in TEMPLATES[TASK_VQA])

# data/mscoco/generate_train.py (and data/pretrain/generate_train.py), ``templates_en``: no language
# name; translated into each language (the reference dropped a translation still holding "image caption").
TRANSLATED_TEMPLATES: dict[str, tuple[str, ...]] = {
    TASK_CAPTION: (
        "Caption the image.",
        "Short image caption: ",
        "Briefly describe the image.",
        "Write a short image description.",
        "Summarize the image.",
    ),
}
# The reference's format() arguments per list, in order (its ``{}`` / ``{0}`` / ``{1}``): which named slot
# each one is. ``reference.format(*values)`` equals the template with the named slots filled alike
# (tests/pipeline/test_template_table.py checks every string this way).
REFERENCE_ARGS: dict[str, tuple[str, ...]] = {
    TASK_CAPTION: ("lang",),
    TASK_VQA: ("question", "lang"),
    TASK_VQG: ("lang", "answer"),
    TASK_CLASSIFY: ("lang",),
    TASK_AOKVQA_EXPLAIN: ("question", "answer"),
    TASK_AOKVQA_COT: ("question",),
    COT_TARGET: ("rationale", "answer"),
    TASK_DECIDE: ("label",),
    TASK_MATCH: ("caption",),
}
# A task's English-answer variant (its rows whose target is the English answer use it).
ENGLISH_ANSWER_TASK = {TASK_VQA: TASK_VQA_ENGLISH_ANSWER}
# LLaVA turns and released mBLIP rows carry their own instruction (``context_en``): no template.
CONTEXT_PROMPT_TASKS = (TASK_LLAVA, TASK_INSTRUCT)
SLOTS = ("question", "answer", "caption", "rationale", "label")  # filled per example, never translated


def pick_match_template(example_id: str) -> tuple[str, str, str]:
    """``(template, yes, no)`` of a matching example, by a hash of its id (same row -> same template)."""
    index = int.from_bytes(hashlib.sha1(f"match\x1f{example_id}".encode()).digest()[:4], "big") % len(MATCH_TEMPLATES)
    return MATCH_TEMPLATES[index]
