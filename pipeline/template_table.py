"""The one instruction-template table (mBLIP's mix, Geigle et al. 2024, Sec. 3.1 and App. A).

- ``TEMPLATES``: the English templates per task, one entry per task (``{lang}`` = the language's English
  name; ``{question}``/``{answer}``/``{caption}``/``{rationale}``/``{label}`` = filled per example, never
  translated). The first template of a task is the inference prompt of ``mblip caption`` / ``mblip ask``
  (``model/templates.py``).
- ``TRANSLATED_TEMPLATES``: the plain templates translated for a task whose instructions are translated
  (``PromptSettings.translated_tasks``); a task without an entry translates its English templates with
  the language name filled in.
- ``vqa_en`` ("... Answer in English.") is used whenever the target is the English answer (the answer
  stage kept it, or the trainer's coin flip picked it): prompt and target always agree.
- ``MATCH_TEMPLATES``: the image-caption matching questions with their own yes/no answers.

How templates are picked, translated, checked and filled: ``pipeline/templates.py``.
"""

from __future__ import annotations

import hashlib

from pipeline.schema import (
    TASK_AOKVQA_COT, TASK_AOKVQA_EXPLAIN, TASK_CAPTION, TASK_CLASSIFY, TASK_DECIDE, TASK_INSTRUCT, TASK_LLAVA,
    TASK_MATCH, TASK_VQA, TASK_VQG,
)

TASK_VQA_ENGLISH_ANSWER = "vqa_en"

# English templates per task (add a task: one entry here; its prompt slots are filled by ``render``).
TEMPLATES: dict[str, tuple[str, ...]] = {
    TASK_CAPTION: (
        "Caption the image in {lang}.",
        "Write a short description of the image in {lang}.",
        "Describe the image briefly in {lang}.",
        "A short {lang} caption of the image:",
        "Short {lang} image caption:",
        "Image caption (in {lang}):",
    ),
    TASK_VQA: (
        "Answer in {lang}: {question}",
        "{question} Short answer in {lang}:",
        "Question: {question} Answer in {lang}:",
    ),
    TASK_VQA_ENGLISH_ANSWER: (
        "Answer in English: {question}",
        "{question} Short answer in English:",
        "Question: {question} Answer in English:",
    ),
    TASK_VQG: (
        "Given the image, generate a question in {lang} whose answer is: {answer}",
        "Ask a question in {lang} about the image that can be answered with: {answer}",
    ),
    TASK_CLASSIFY: (
        "Which object is shown in the image? Answer in {lang}.",
        "What is in the picture? Name it in {lang}.",
    ),
    TASK_MATCH: (),  # filled from MATCH_TEMPLATES below (English; the caption slot is translated)
    # A-OKVQA (mBLIP's explanation and chain-of-thought tasks; the reference's templates).
    TASK_AOKVQA_EXPLAIN: (
        'Explain why the answer to the question "{question}" is "{answer}".',
        'Question: {question} Answer: {answer}. Explain why.',
        'Why is "{answer}" the answer to "{question}"?',
        'Give the reason why "{answer}" answers the question "{question}".',
        'The question is "{question}" and the answer is "{answer}". Why?',
    ),
    TASK_AOKVQA_COT: (
        "Think step-by-step to answer this question. {question}",
        "{question} What is the answer and why?",
        "{question} Explain your reasoning, then answer.",
        "Answer the question and give the reason. {question}",
        "{question} Reason about the image first, then answer.",
    ),
    # Targets of the chain-of-thought task: every one holds the rationale (the reference had one,
    # "{a} because {a}.", with the answer twice and no rationale).
    "aokvqa_cot_target": (
        "{rationale}. So the answer is {answer}.",
        "The answer is {answer} because {rationale}.",
        "{rationale}. The answer is {answer}.",
        "{rationale}. Therefore: {answer}.",
        "Reasoning: {rationale}. Answer: {answer}.",
    ),
    # ImageNet "does the image show X?" with the class name in the row's language; the yes and no
    # targets of question i are entry i of the two lists below (the reference's question/answer triples).
    TASK_DECIDE: (
        "Does this image show a {label}?",
        "Is there a {label} in the image?",
        "Is this a picture of a {label}?",
        "Can you see a {label} in this image?",
    ),
    "decide_yes": ("Yes, it does.", "Yes, there is.", "Yes, it is.", "Yes, I can."),
    "decide_no": ("No, it does not.", "No, there is not.", "No, it is not.", "No, I cannot."),
}
# Image-caption matching: 12 English questions, each with its own yes/no answers; the caption (the slot)
# is translated, the template and answer stay English, the language is never named (mBLIP's matching
# task). The first two are the reference's wording; the others follow their pattern.
MATCH_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ('Does "{caption}" accurately describe the image?', "Yes, it does.", "No, it does not."),
    ('Is "{caption}" a good image description?', "Yes, it is.", "No, it is not."),
    ('Does the caption "{caption}" match the image?', "Yes, it does.", "No, it does not."),
    ('Is "{caption}" a correct caption for this image?', "Yes, it is.", "No, it is not."),
    ('Would "{caption}" be a fitting description of the picture?', "Yes, it would.", "No, it would not."),
    ('Can the image be described as "{caption}"?', "Yes, it can.", "No, it cannot."),
    ('Does this picture show what "{caption}" says?', "Yes, it does.", "No, it does not."),
    ('Is the following caption true for the image? "{caption}"', "Yes, it is true.", "No, it is not true."),
    ('Is "{caption}" an accurate caption of the photo?', "Yes, it is accurate.", "No, it is not accurate."),
    ('Does "{caption}" describe what is in the image?', "Yes, it describes it.", "No, it does not describe it."),
    ('Image description: "{caption}". Is this description correct?', "Yes, it is correct.", "No, it is not correct."),
    ('Do the image and the text "{caption}" belong together?', "Yes, they do.", "No, they do not."),
)
TEMPLATES[TASK_MATCH] = tuple(t for t, _, _ in MATCH_TEMPLATES)


def pick_match_template(example_id: str) -> tuple[str, str, str]:
    """``(template, yes, no)`` of a matching example, by a hash of its id (same row -> same template)."""
    index = int.from_bytes(hashlib.sha1(f"match\x1f{example_id}".encode()).digest()[:4], "big") % len(MATCH_TEMPLATES)
    return MATCH_TEMPLATES[index]


# Plain templates (no language name) translated into each language, as mBLIP did for captions.
TRANSLATED_TEMPLATES: dict[str, tuple[str, ...]] = {
    TASK_CAPTION: (
        "Caption the image.",
        "Short image caption:",
        "Summarize the image.",
        "Describe the image briefly.",
        "Write a short description of the image.",
    ),
}
# A task's English-answer variant (its rows whose target is the English answer use it).
ENGLISH_ANSWER_TASK = {TASK_VQA: TASK_VQA_ENGLISH_ANSWER}
# LLaVA turns and released mBLIP rows carry their own instruction (``context_en``): no template.
CONTEXT_PROMPT_TASKS = (TASK_LLAVA, TASK_INSTRUCT)
SLOTS = ("question", "answer", "caption", "rationale", "label")  # filled per example, never translated
