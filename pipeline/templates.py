"""Instruction templates per task, translated once per language, and the ``prompt`` column.

mBLIP trained with several English instruction templates per task, some naming the output language
("Caption the image in {lang}."), plus NLLB translations of them; translated templates that still
contained the English words were dropped (Geigle et al. 2024, Sec. 3.1 and App. A). Here:

- the ``{lang}`` slot is filled with the language's English name *before* translation, so the
  translation names the language in the target language ("... auf Deutsch");
- a ``{question}`` slot is never sent to the model: the template is split around it, each literal
  part is translated on its own and the question is put back in place, so it cannot be lost or
  mangled;
- a translated template is dropped when a part is empty or still contains its English original
  (after normalisation), and the drop is counted per language and reason;
- ``vqa_en`` ("... Answer in English.") is used when the example keeps its English answer (see
  ``pipeline/answers.py``), so the prompt always says which language the answer is in.

Translations go through the same cached translator as the data, so each template is translated
once per language and model, across runs; within a process they are also memoised.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field

import polars as pl

from pipeline.languages import SOURCE_LANGUAGE, get_language
from pipeline.nllb.engine import clean_source
from pipeline.schema import (
    TASK_AOKVQA_COT, TASK_AOKVQA_EXPLAIN, TASK_CAPTION, TASK_CLASSIFY, TASK_DECIDE, TASK_INSTRUCT, TASK_LLAVA, TASK_VQA,
    TASK_VQG,
)
from pipeline.translate import SOURCE_NLLB, TranslationStats, translate_many

TASK_VQA_ENGLISH_ANSWER = "vqa_en"
TASK_MATCH = "match"  # image-caption matching with hard negatives

# English templates per task. Caption and VQA follow the trainer's (model/templates.py) so English
# rows and untranslated fallbacks read the same; the other tasks complete the paper's task list.
TEMPLATES: dict[str, tuple[str, ...]] = {
    TASK_CAPTION: (
        "Caption the image in {lang}.",
        "Write a short description of the image in {lang}.",
        "Describe the image briefly in {lang}.",
        "A short {lang} caption of the image:",
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
    TASK_MATCH: (
        "Does the caption match the image? Answer yes or no. Caption: {caption}",
        "Is this a correct description of the image: {caption}",
    ),
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
# LLaVA turns and released mBLIP rows carry their own instruction (``context_en``): no template.
CONTEXT_PROMPT_TASKS = (TASK_LLAVA, TASK_INSTRUCT)
SLOTS = ("question", "answer", "caption", "rationale", "label")  # filled per example, never translated
_SLOT = re.compile(r"(\{(?:" + "|".join(SLOTS) + r")\})")
_NORM = re.compile(r"[^\w]+")

DROP_EMPTY = "empty_translation"
DROP_CONTAINS_ENGLISH = "contains_english"


def _norm(text: str) -> str:
    return " ".join(_NORM.sub(" ", clean_source(text).casefold()).split())


def split_template(template: str) -> list[str]:
    """Literal parts and slot markers, in order: ``"Q: {question} A:"`` -> ``["Q:", "{question}", "A:"]``."""
    return [p.strip() for p in _SLOT.split(template) if p.strip()]


@dataclass
class TemplateSet:
    """Usable templates of one language (task -> templates with only example slots left) and drops."""

    lang: str  # project code
    templates: dict[str, tuple[str, ...]]
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count

    def pick(self, task: str, key: str) -> str:
        """Template for ``task`` chosen by a hash of ``key`` (same row -> same prompt across runs)."""
        options = self.templates.get(task) or english_templates(self.lang).templates[task]
        index = int.from_bytes(hashlib.sha1(f"template\x1f{key}".encode()).digest()[:4], "big") % len(options)
        return options[index]


def _fill_lang(template: str, lang_name: str) -> str:
    return template.replace("{lang}", lang_name)


def english_templates(lang: str) -> TemplateSet:
    """The English templates naming ``lang`` (what English rows, and any fallback, use)."""
    name = get_language(lang).name
    return TemplateSet(lang=lang, templates={t: tuple(_fill_lang(x, name) for x in xs) for t, xs in TEMPLATES.items()})


def translate_templates(translator, lang: str, stats: TranslationStats | None = None) -> TemplateSet:
    """All task templates translated into ``lang`` (project or NLLB code); failed ones are dropped."""
    language = get_language(lang)
    english = english_templates(language.code)
    if language.code == SOURCE_LANGUAGE:
        return english
    parts_of = {(task, i): split_template(t) for task, ts in english.templates.items() for i, t in enumerate(ts)}
    # Parts of punctuation only ('".' after a slot) are kept as they are: there is nothing to translate.
    literals = list(dict.fromkeys(
        p for parts in parts_of.values() for p in parts if not _SLOT.fullmatch(p) and _norm(p)
    ))
    translated = dict(zip(literals, (r.text for r in translate_many(translator, literals, SOURCE_NLLB, language.nllb, stats))))
    kept: dict[str, list[str]] = {task: [] for task in english.templates}
    dropped: dict[str, int] = {}
    for (task, _), parts in parts_of.items():
        reason = None
        out = []
        for part in parts:
            if _SLOT.fullmatch(part) or not _norm(part):
                out.append(part)
                continue
            target = clean_source(translated[part])
            if not _norm(target):
                reason = DROP_EMPTY
            elif _norm(part) in _norm(target):
                reason = DROP_CONTAINS_ENGLISH  # the paper's rule: the English is still there
            out.append(target)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            kept[task].append(" ".join(out))
    return TemplateSet(lang=language.code, templates={t: tuple(v) for t, v in kept.items() if v}, dropped=dropped)


_MEMO: dict[tuple[str, str], TemplateSet] = {}
_MEMO_LOCK = threading.Lock()


def templates_for(translator, lang: str, stats: TranslationStats | None = None) -> TemplateSet:
    """``translate_templates`` memoised per translator and language within this process."""
    engine = getattr(translator, "engine", translator)
    identity = engine.cache_key() if hasattr(engine, "cache_key") else str(id(engine))
    key = (f"{getattr(engine, 'model_dir', '')}|{identity}", get_language(lang).code)
    with _MEMO_LOCK:
        cached = _MEMO.get(key)
    if cached is None:
        cached = translate_templates(translator, lang, stats)
        with _MEMO_LOCK:
            _MEMO[key] = cached
    return cached


def render(template: str, **slots: str) -> str:
    out = template
    for name in SLOTS:
        out = out.replace("{" + name + "}", slots.get(name) or "")
    return " ".join(out.split())


def _pick_index(key: str, n: int) -> int:
    return int.from_bytes(hashlib.sha1(f"template\x1f{key}".encode()).digest()[:4], "big") % n


def prompt_and_target(row: dict, templates: TemplateSet) -> tuple[str | None, str | None]:
    """The (prompt, target) of one row from the task's templates in ``templates``.

    ``row`` holds ``example_id``, ``task``, ``text_en``/``text_tgt``, and where the task has them
    ``answer_en``/``answer_tgt``/``answer_translated`` and ``context_en``/``context_tgt``.
    """
    task, key = row["task"], row["example_id"]
    text = row.get("text_tgt") or row.get("text_en")
    answer = row.get("answer_tgt") or row.get("answer_en")
    context = row.get("context_tgt") or row.get("context_en")
    if task == TASK_CAPTION:
        return render(templates.pick(task, key)), text
    if task == TASK_VQA:
        variant = TASK_VQA_ENGLISH_ANSWER if row.get("answer_translated") is False else task
        return render(templates.pick(variant, key), question=text), answer
    if task == TASK_VQG:  # the prompt names the language of the target question
        return render(templates.pick(task, key), answer=answer), text
    if task == TASK_AOKVQA_EXPLAIN:
        return render(templates.pick(task, key), question=context, answer=answer), text
    if task == TASK_AOKVQA_COT:
        cot = templates.pick("aokvqa_cot_target", key + ":target")
        target = render(cot, rationale=text.rstrip(" ."), answer=answer)
        return render(templates.pick(task, key), question=context), target
    if task in CONTEXT_PROMPT_TASKS:
        return context, text
    if task == TASK_CLASSIFY:
        return render(templates.pick(task, key)), text
    if task == TASK_DECIDE:
        lists = [templates.templates.get(t) for t in (TASK_DECIDE, "decide_yes", "decide_no")]
        if any(not x for x in lists) or len({len(x) for x in lists}) != 1:
            # The yes/no of question i must be entry i: fall back to the English triples.
            lists = [english_templates(templates.lang).templates[t] for t in (TASK_DECIDE, "decide_yes", "decide_no")]
        i = _pick_index(key, len(lists[0]))
        yes = (row.get("answer_en") or "").strip().lower() == "yes"
        return render(lists[0][i], label=text), lists[1 if yes else 2][i]
    raise ValueError(f"row {key}: no templates for task {task!r}; known tasks: {sorted(PROMPT_TASKS)}")


PROMPT_TASKS = frozenset({TASK_CAPTION, TASK_VQA, TASK_VQG, TASK_AOKVQA_EXPLAIN, TASK_AOKVQA_COT, TASK_CLASSIFY,
                          TASK_DECIDE, *CONTEXT_PROMPT_TASKS})
_ROW_FIELDS = ("example_id", "task", "lang", "text_en", "text_tgt", "answer_en", "answer_tgt", "answer_translated",
               "context_en", "context_tgt", "preset_lang")


def add_prompts(frame: pl.DataFrame, translator, stats: TranslationStats | None = None) -> pl.DataFrame:
    """Add ``prompt`` (the row's instruction in its language) and ``target`` (what the model learns).

    Translated rows use the templates translated into their language; rows whose language the
    source fixed (``preset_lang``: ImageNet, English A-OKVQA, released rows) use the English
    templates naming the language, as the paper did for those tasks. VQA rows whose answer stayed
    English get a template asking for an English answer. Row order and count are unchanged.
    """
    langs = [lang for lang in frame["lang"].unique().to_list() if lang]
    preset = frame["preset_lang"] if "preset_lang" in frame.columns else pl.Series([None] * frame.height)
    translated_langs = set(frame.filter(preset.is_null())["lang"].unique().to_list()) - {None}
    sets = {lang: templates_for(translator, lang, stats) for lang in langs if lang in translated_langs}
    english = {lang: english_templates(lang) for lang in langs}
    prompts, targets = [], []
    columns = [c for c in _ROW_FIELDS if c in frame.columns]
    for row in frame.select(columns).iter_rows(named=True):
        lang = row["lang"]
        if not lang:
            prompts.append(None)
            targets.append(None)
            continue
        templates = english[lang] if row.get("preset_lang") else sets[lang]
        prompt, target = prompt_and_target(row, templates)
        prompts.append(prompt)
        targets.append(target)
    return frame.with_columns(
        pl.Series("prompt", prompts, dtype=pl.String), pl.Series("target", targets, dtype=pl.String)
    )


def template_drop_counts(frame: pl.DataFrame, translator) -> dict[str, dict[str, int]]:
    """Per language of ``frame``: templates kept and dropped by reason (for the stats sidecar)."""
    counts = {}
    for lang in sorted(x for x in frame["lang"].unique().to_list() if x):
        s = templates_for(translator, lang)
        counts[lang] = {"kept": sum(len(v) for v in s.templates.values()), **{f"dropped_{k}": v for k, v in s.dropped.items()}}
    return counts
