"""Instructions from the one template table: training prompts (the ``prompt`` column) and inference prompts.

mBLIP's mix (Geigle et al. 2024, Sec. 3.1 and App. A): caption rows draw from English templates that
name the target language ("Caption the image in German.") and the language's machine-translated plain
templates ("Caption the image." in German) together, so a non-English caption gets an English instruction
E/(E+T) of the time (E English templates, T translated ones that survived); English caption rows draw
from the plain templates as they are (the reference's ``generate_en``); VQA and every other task use
English templates naming the answer language. A translated template still containing its English was
dropped. The reference drew with ``random.choice`` (or a per-language counter); here a hash of the
example id picks, so the same row gets the same prompt in every run. Here, in addition, each translated
template goes through the project's quality filter (the same signals and thresholds as the data,
back-translation included when a model is given): one that fails it (e.g. "Ein Bild derschaftschafts.")
is not used, and the English template is used instead.

The table itself (English templates per task, the translated plain ones, the matching questions) is
``pipeline/template_table.py``; here: choosing, translating, checking and filling templates.

A ``{question}`` slot is never sent to the model: the template is split around it, each literal part is
translated and checked on its own, and the question is put back in place. Translations go through the
same cached translator as the data, and are memoised per process.

(Over 300 lines on purpose: picking, translating, checking and filling share the template set and its
slot rules, and are read together when checking what a row's prompt is.)
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field

import polars as pl

from pipeline.filters.quality import apply_quality_filter
from pipeline.languages import SOURCE_LANGUAGE, SOURCE_NLLB, get_language, language_name
from pipeline.nllb.engine import clean_source
from pipeline.schema import (
    TASK_AOKVQA_COT,
    TASK_AOKVQA_EXPLAIN,
    TASK_CAPTION,
    TASK_CLASSIFY,
    TASK_DECIDE,
    TASK_MATCH,
    TASK_VQA,
    TASK_VQG,
)
from pipeline.template_table import (
    CONTEXT_PROMPT_TASKS,
    COT_TARGET,
    DECIDE_NO,
    DECIDE_YES,
    ENGLISH_ANSWER_TASK,
    SLOTS,
    TASK_VQA_ENGLISH_ANSWER,  # noqa: F401  (pipeline/export.py imports it from here)
    TEMPLATES,
    TRANSLATED_TEMPLATES,
    pick_match_template,
)
from pipeline.translate import TranslationStats, translate_many

_SLOT = re.compile(r"(\{(?:" + "|".join(SLOTS) + r")\})")
_NORM = re.compile(r"[^\w]+")

DROP_EMPTY = "empty_translation"
DROP_CONTAINS_ENGLISH = "contains_english"
DROP_FILTER = "filter"  # prefix: "filter:low_bt_chrf", ...


@dataclass(frozen=True)
class PromptSettings:
    """Which instructions are translated and how often the English ones are used (see PromptConfig)."""

    translated_tasks: tuple[str, ...] = (TASK_CAPTION,)
    english_share: float | None = None  # None: mBLIP's mix, every usable template equally often
    # Filter thresholds for translated templates (a FilterRules; None = the defaults). Not the run's
    # thresholds: a threshold change re-decides rows from stored scores and must not change prompts.
    template_rules: object = None
    language_names: str = "project"  # how instructions name a language (``pipeline.languages.NAME_SPELLINGS``)


def _norm(text: str) -> str:
    return " ".join(_NORM.sub(" ", clean_source(text).casefold()).split())


def _hash(salt: str, key: str) -> int:
    return int.from_bytes(hashlib.sha1(f"{salt}\x1f{key}".encode()).digest()[:4], "big")


def split_template(template: str) -> list[str]:
    """Literal parts and slot markers, in order: ``"Q: {question} A:"`` -> ``["Q:", "{question}", "A:"]``."""
    return [p.strip() for p in _SLOT.split(template) if p.strip()]


@dataclass
class TemplateSet:
    """One language's templates: English (naming the language) and translated ones that passed the checks."""

    lang: str  # project code
    templates: dict[str, tuple[str, ...]]  # English, only example slots left
    translated: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count
    dropped_texts: list[tuple[str, str, str]] = field(default_factory=list)  # (task, translation, reason)

    def pick(self, task: str, key: str, english_share: float | None = None) -> str:
        """Template for ``task`` chosen by a hash of ``key`` (same row -> same prompt across runs).

        ``english_share`` None: uniform over the English and the translated templates (mBLIP's mix);
        a number: the share of rows that get an English template when translated ones exist. English
        rows of a task with plain templates use those (they are English already), as the reference.
        """
        english = self.templates.get(task) or english_templates(self.lang).templates[task]
        translated = self.translated.get(task, ())
        if self.lang == SOURCE_LANGUAGE and translated:
            options = translated
        elif not translated:
            options = english
        elif english_share is None:
            options = english + translated
        else:
            options = english if _hash("mix", key) / 2**32 < english_share else translated
        return options[_hash("template", key) % len(options)]


def _fill_lang(template: str, lang_name: str) -> str:
    return template.replace("{lang}", lang_name)


def english_templates(lang: str, names: str = "project") -> TemplateSet:
    """The English templates naming ``lang`` (spelled as ``names`` says: ``pipeline.languages.NAME_SPELLINGS``);
    English itself also gets its plain templates as the "translated" ones: its caption rows use them."""
    language = get_language(lang)
    name = language_name(language.code, names)
    named = {t: tuple(_fill_lang(x, name) for x in xs) for t, xs in TEMPLATES.items()}
    plain = dict(TRANSLATED_TEMPLATES) if language.code == SOURCE_LANGUAGE else {}
    return TemplateSet(lang=language.code, templates=named, translated=plain)


def english_prompt(task: str, lang: str, key: str | None = None, names: str = "project", **slots: str) -> str:
    """An English prompt naming ``lang``: the task's first template (inference) or, with ``key``, the
    template that key picks among the English ones (what training rows with English instructions use)."""
    options = english_templates(lang, names).templates[task]
    template = options[0] if key is None else options[_hash("template", key) % len(options)]
    return render(template, **slots)


def _is_literal(part: str) -> bool:
    """A part of a template to translate: not a slot, not punctuation only."""
    return not _SLOT.fullmatch(part) and bool(_norm(part))


def _sources(task: str, named: tuple[str, ...]) -> tuple[str, ...]:
    return TRANSLATED_TEMPLATES.get(task, named)


def translate_templates(translator, lang: str, stats: TranslationStats | None = None,
                        settings: PromptSettings = PromptSettings(), rules=None, check_model: bool = True,
                        model_languages: frozenset[str] | None = None) -> TemplateSet:
    """The templates of ``settings.translated_tasks`` translated into ``lang`` and quality-checked.

    A translation is dropped when a part is empty, still contains its English (mBLIP's rule) or fails
    the quality filter under ``rules`` (model signals when ``check_model`` and the model covers the
    language). The English templates are always there.
    """
    language = get_language(lang)
    english = english_templates(language.code, settings.language_names)
    if language.code == SOURCE_LANGUAGE:
        english.translated = {t: v for t, v in english.translated.items() if t in settings.translated_tasks}
        return english
    tasks = [t for t in settings.translated_tasks if t in TEMPLATES]
    tasks += [ENGLISH_ANSWER_TASK[t] for t in tasks if t in ENGLISH_ANSWER_TASK]
    parts_of = {(task, i): split_template(t)
                for task in tasks for i, t in enumerate(_sources(task, english.templates[task]))}
    # Parts of punctuation only ('".' after a slot) are kept as they are: there is nothing to translate.
    literals = list(dict.fromkeys(p for parts in parts_of.values() for p in parts if _is_literal(p)))
    translated = dict(zip(literals, (clean_source(r.text) for r in
                                     translate_many(translator, literals, SOURCE_NLLB, language.nllb, stats))))
    failed = _filter_reasons(translated, language.nllb, translator if check_model else None, rules, model_languages)
    kept: dict[str, list[str]] = {task: [] for task in tasks}
    dropped: dict[str, int] = {}
    dropped_texts = []
    for (task, _), parts in parts_of.items():
        reason = None
        for part in parts:
            if not _is_literal(part):
                continue
            target = translated[part]
            if not _norm(target):
                reason = reason or DROP_EMPTY
            elif _norm(part) in _norm(target):
                reason = reason or DROP_CONTAINS_ENGLISH  # the paper's rule: the English is still there
            elif failed.get(part):
                reason = reason or f"{DROP_FILTER}:{failed[part]}"
        text = " ".join(translated[p] if _is_literal(p) else p for p in parts)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            dropped_texts.append((task, text, reason))
        else:
            kept[task].append(text)
    return TemplateSet(lang=language.code, templates=english.templates,
                       translated={t: tuple(v) for t, v in kept.items() if v}, dropped=dropped,
                       dropped_texts=dropped_texts)


def _filter_reasons(translated: dict[str, str], nllb: str, translator, rules, model_languages) -> dict[str, str]:
    """English part -> the filter's reject reason for its translation (absent when kept)."""
    pairs = [(en, tgt) for en, tgt in translated.items() if _norm(tgt)]
    if not pairs:
        return {}
    frame = pl.DataFrame({"text_en": [e for e, _ in pairs], "text_tgt": [t for _, t in pairs],
                          "lang_nllb": [nllb] * len(pairs)}, schema={"text_en": pl.String, "text_tgt": pl.String,
                                                                     "lang_nllb": pl.String})
    out = apply_quality_filter(frame, translator, rules, model_languages=model_languages)
    return {en: r for (en, _), r in zip(pairs, out["reject_reason"].to_list()) if r}


_MEMO: dict[tuple, TemplateSet] = {}
_MEMO_LOCK = threading.Lock()


def templates_for(translator, lang: str, stats: TranslationStats | None = None,
                  settings: PromptSettings = PromptSettings(), rules=None, check_model: bool = True,
                  model_languages: frozenset[str] | None = None) -> TemplateSet:
    """``translate_templates`` memoised per translator, language, settings and filter rules in this process."""
    engine = getattr(translator, "engine", translator)
    identity = engine.cache_key() if hasattr(engine, "cache_key") else str(id(engine))
    rules_key = rules.model_dump_json() if rules is not None else ""
    key = (f"{getattr(engine, 'model_dir', '')}|{identity}", get_language(lang).code, settings.translated_tasks,
           settings.english_share, settings.language_names, rules_key,
           check_model, tuple(sorted(model_languages)) if model_languages is not None else None)
    with _MEMO_LOCK:
        cached = _MEMO.get(key)
    if cached is None:
        cached = translate_templates(translator, lang, stats, settings, rules, check_model, model_languages)
        with _MEMO_LOCK:
            _MEMO[key] = cached
    return cached


def render(template: str, **slots: str) -> str:
    """``template`` with its slots filled (values stripped); the template's own spacing is kept as it is,
    trailing and double spaces included (the reference's strings, verbatim)."""
    out = template
    for name in SLOTS:
        out = out.replace("{" + name + "}", (slots.get(name) or "").strip())
    return out


def _pick_index(key: str, n: int) -> int:
    return _hash("template", key) % n


def prompt_and_target(row: dict, templates: TemplateSet,
                      english_share: float | None = None) -> tuple[str | None, str | None]:
    """The (prompt, target) of one row from the task's templates in ``templates`` (``english_share``:
    see ``TemplateSet.pick``).

    ``row`` holds ``example_id``, ``task``, ``text_en``/``text_tgt``, and where the task has them
    ``answer_en``/``answer_tgt``/``answer_translated`` and ``context_en``/``context_tgt``.
    """
    task, key = row["task"], row["example_id"]
    text = row.get("text_tgt") or row.get("text_en")
    answer = row.get("answer_tgt") or row.get("answer_en")
    context = row.get("context_tgt") or row.get("context_en")
    if task == TASK_CAPTION:
        return render(templates.pick(task, key, english_share)), text
    if task == TASK_VQA:
        variant = ENGLISH_ANSWER_TASK[task] if row.get("answer_translated") is False else task
        return render(templates.pick(variant, key, english_share), question=text), answer
    if task == TASK_VQG:  # the prompt names the language of the target question
        return render(templates.pick(task, key, english_share), answer=answer), text
    if task == TASK_AOKVQA_EXPLAIN:
        return render(templates.pick(task, key, english_share), question=context, answer=answer), text
    if task == TASK_AOKVQA_COT:
        cot = templates.pick(COT_TARGET, key + ":target")
        target = render(cot, rationale=text.rstrip(" ."), answer=answer)
        return render(templates.pick(task, key, english_share), question=context), target
    if task in CONTEXT_PROMPT_TASKS:
        return context, text
    if task == TASK_CLASSIFY:
        return render(templates.pick(task, key, english_share)), text
    if task == TASK_MATCH:  # the template's own yes/no answer was set by the reader (English)
        return render(pick_match_template(key)[0], caption=text), row.get("answer_en")
    if task == TASK_DECIDE:
        # The yes/no of question i must be entry i: always the English triples (never translated).
        lists = [templates.templates[t] for t in (TASK_DECIDE, DECIDE_YES, DECIDE_NO)]
        i = _pick_index(key, len(lists[0]))
        yes = (row.get("answer_en") or "").strip().lower() == "yes"
        return render(lists[0][i], label=text), lists[1 if yes else 2][i]
    raise ValueError(f"row {key}: no templates for task {task!r}; known tasks: {sorted(PROMPT_TASKS)}")


PROMPT_TASKS = frozenset({TASK_CAPTION, TASK_VQA, TASK_VQG, TASK_AOKVQA_EXPLAIN, TASK_AOKVQA_COT, TASK_CLASSIFY,
                          TASK_MATCH, TASK_DECIDE, *CONTEXT_PROMPT_TASKS})
_ROW_FIELDS = ("example_id", "task", "lang", "text_en", "text_tgt", "answer_en", "answer_tgt", "answer_translated",
               "context_en", "context_tgt", "preset_lang")


def add_prompts(frame: pl.DataFrame, translator, stats: TranslationStats | None = None,
                settings: PromptSettings = PromptSettings(), rules=None, check_model: bool = True,
                model_languages: frozenset[str] | None = None) -> pl.DataFrame:
    """Add ``prompt`` (the row's instruction, from the mix above) and ``target`` (what the model learns).

    Rows assigned a language use its template set (English naming the language, plus the translated
    ones of ``settings.translated_tasks``); rows whose language the source fixed (``preset_lang``:
    ImageNet, English A-OKVQA, released rows) use the English templates naming the language, as the
    paper did for those tasks. VQA rows whose answer stayed English get a template asking for an
    English answer. Row order and count are unchanged.
    """
    langs = [lang for lang in frame["lang"].unique().to_list() if lang]
    preset = frame["preset_lang"] if "preset_lang" in frame.columns else pl.Series([None] * frame.height)
    translated_langs = set(frame.filter(preset.is_null())["lang"].unique().to_list()) - {None}
    sets = {lang: templates_for(translator, lang, stats, settings, rules, check_model, model_languages)
            for lang in langs if lang in translated_langs}
    english = {lang: english_templates(lang, settings.language_names) for lang in langs}
    prompts, targets = [], []
    columns = [c for c in _ROW_FIELDS if c in frame.columns]
    for row in frame.select(columns).iter_rows(named=True):
        lang = row["lang"]
        if not lang:
            prompts.append(None)
            targets.append(None)
            continue
        templates = english[lang] if row.get("preset_lang") else sets[lang]
        prompt, target = prompt_and_target(row, templates, settings.english_share)
        prompts.append(prompt)
        targets.append(target)
    return frame.with_columns(
        pl.Series("prompt", prompts, dtype=pl.String), pl.Series("target", targets, dtype=pl.String)
    )


def template_report(frame: pl.DataFrame, translator, settings: PromptSettings = PromptSettings(), rules=None,
                    check_model: bool = True, model_languages: frozenset[str] | None = None) -> tuple[dict, dict]:
    """Per language of ``frame``: (counts: kept and dropped by reason, texts: kept and dropped templates)."""
    counts, texts = {}, {}
    for lang in sorted(x for x in frame["lang"].unique().to_list() if x):
        s = templates_for(translator, lang, None, settings, rules, check_model, model_languages)
        kept = sum(len(v) for t, v in s.translated.items() if t in TEMPLATES)
        counts[lang] = {"kept": kept, **{f"dropped_{k}": v for k, v in s.dropped.items()}}
        texts[lang] = {"kept": {t: list(v) for t, v in s.translated.items()},
                       "dropped": [list(d) for d in s.dropped_texts]}
    return counts, texts
