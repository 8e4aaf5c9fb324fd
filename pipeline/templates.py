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
from pipeline.schema import TASK_CAPTION, TASK_MATCH, TASK_VQA
from pipeline.translate import SOURCE_NLLB, TranslationStats, translate_many

TASK_VQA_ENGLISH_ANSWER = "vqa_en"
TASK_VQG = "vqg"  # question generation from an answer (VQAv2 in the reference task mix)
TASK_CLASSIFY = "classify"  # ImageNet class names (Babel-ImageNet in the reference)

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
    TASK_MATCH: (),  # filled from MATCH_TEMPLATES below; English only
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
ENGLISH_ONLY_TASKS = frozenset({TASK_MATCH})  # never translated: English template, translated slot
SLOTS = ("question", "answer", "caption")  # filled per example, never translated
_SLOT = re.compile(r"(\{(?:question|answer|caption)\})")
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
    parts_of = {(task, i): split_template(t) for task, ts in english.templates.items() for i, t in enumerate(ts)
                if task not in ENGLISH_ONLY_TASKS}
    literals = list(dict.fromkeys(p for parts in parts_of.values() for p in parts if not _SLOT.fullmatch(p)))
    translated = dict(zip(literals, (r.text for r in translate_many(translator, literals, SOURCE_NLLB, language.nllb, stats))))
    kept: dict[str, list[str]] = {task: [] for task in english.templates if task not in ENGLISH_ONLY_TASKS}
    dropped: dict[str, int] = {}
    for (task, _), parts in parts_of.items():
        reason = None
        out = []
        for part in parts:
            if _SLOT.fullmatch(part):
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


def pick_match_template(example_id: str) -> tuple[str, str, str]:
    """``(template, yes, no)`` of a matching example, by a hash of its id (same row -> same template)."""
    index = int.from_bytes(hashlib.sha1(f"match\x1f{example_id}".encode()).digest()[:4], "big") % len(MATCH_TEMPLATES)
    return MATCH_TEMPLATES[index]


def render(template: str, **slots: str) -> str:
    out = template
    for name in SLOTS:
        out = out.replace("{" + name + "}", slots.get(name) or "")
    return " ".join(out.split())


def add_prompts(frame: pl.DataFrame, translator, stats: TranslationStats | None = None) -> pl.DataFrame:
    """Add ``prompt``: the row's instruction in its language (VQA: with the translated question).

    VQA rows whose answer stayed English (``answer_translated`` false) get a template asking for an
    English answer. Returns the frame unchanged in row order and count.
    """
    sets = {lang: templates_for(translator, lang, stats) for lang in frame["lang"].unique().to_list() if lang}
    prompts = []
    for row in frame.select("example_id", "task", "lang", "text_en", "text_tgt",
                            *(["answer_translated"] if "answer_translated" in frame.columns else [])).iter_rows(named=True):
        lang, task = row["lang"], row["task"]
        if lang and task == TASK_MATCH:  # English question around the translated caption
            prompts.append(render(pick_match_template(row["example_id"])[0], caption=row["text_tgt"] or row["text_en"]))
            continue
        if not lang or task not in (TASK_CAPTION, TASK_VQA):
            prompts.append(None)
            continue
        if task == TASK_VQA and row.get("answer_translated") is False:
            task = TASK_VQA_ENGLISH_ANSWER
        template = sets[lang].pick(task, row["example_id"])
        prompts.append(render(template, question=row["text_tgt"] or row["text_en"]))
    return frame.with_columns(pl.Series("prompt", prompts, dtype=pl.String))


def template_drop_counts(frame: pl.DataFrame, translator) -> dict[str, dict[str, int]]:
    """Per language of ``frame``: templates kept and dropped by reason (for the stats sidecar)."""
    counts = {}
    for lang in sorted(x for x in frame["lang"].unique().to_list() if x):
        s = templates_for(translator, lang)
        counts[lang] = {"kept": sum(len(v) for v in s.templates.values()), **{f"dropped_{k}": v for k, v in s.dropped.items()}}
    return counts
