"""The data recipe of a run next to mBLIP's (Geigle et al. 2024, arXiv 2307.06930), for the data card.

``recipe_metadata(config)`` records the recipe settings of a run as plain values (it goes into the
manifest); ``render_recipe(stats, recipe)`` turns them, with the run's counters, into the card's
"Recipe" section: each setting, this run's value, the paper's, and the knob that reproduces the paper
where the run differs. ``render_templates(stats)`` lists the instruction templates kept per language.
"""

from __future__ import annotations

from pipeline.answers import MIN_COUNT
from pipeline.ingest.aokvqa import AokvqaSource
from pipeline.ingest.coco import KarpathyCocoSource
from pipeline.ingest.llava import LlavaSource, file_kind, sentence_limit
from pipeline.languages import REFERENCE_NAMES, SOURCE_LANGUAGE, get_language

PAPER_KARPATHY_SPLITS = ["train"]


def recipe_metadata(config) -> dict:
    """Plain recipe values of a ``PipelineConfig`` (no paths)."""
    return {
        "languages": "default" if not config.run.languages else "listed",
        "english": any(lang.code == SOURCE_LANGUAGE for lang in config.languages()),
        "assignment_mode": config.assignment.mode,
        "prompts": config.prompts.model_dump(mode="json"),
        "answers": config.answers.model_dump(mode="json"),
        "karpathy_splits": {s.source_name: list(s.splits) for s in config.sources if isinstance(s, KarpathyCocoSource)},
        "llava": {s.source_name: {"kind": file_kind(s.path, s.kind),
                                  "max_sentences": sentence_limit(file_kind(s.path, s.kind), s.max_sentences)}
                  for s in config.sources if isinstance(s, LlavaSource)},
        "pope": {s.source_name: {"files": len(s.pope), "exclude": s.exclude_pope_images}
                 for s in config.sources if isinstance(s, (AokvqaSource, LlavaSource))},
        "beam_size": config.translation.beam_size,
        "backtranslate": config.filter.backtranslate,
        "model": str(config.translation.model),
    }


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def recipe_rows(stats: dict, recipe: dict) -> list[list[str]]:
    """(setting, this run, mBLIP, knob for the paper's behaviour; "-" = same as the paper)."""
    langs = stats.get("languages", {})
    en = langs.get(SOURCE_LANGUAGE)
    en_share = f"{100 * en['assigned_share']:.2f}% English (untranslated)" if en else "0% English"
    prompts = recipe.get("prompts") or {}
    tasks = prompts.get("translated_tasks", ["caption"])
    share = prompts.get("english_share")
    paper_prompts = tasks == ["caption"] and share is None
    mix = ("English templates naming the language, and translated plain templates, equally often "
           "(E/(E+T) English)" if share is None else f"{100 * share:.0f}% English templates")
    rows = [
        ["languages", f"{len(langs)} ({en_share})", "95 + English at its mC4 share (43.84%)",
         "-" if en else "`run.languages: []` (or list `en`)"],
        ["language choice", "hash of example id and seed, mC4 shares (adding data moves nothing)",
         "seeded shuffle, consecutive slices (drops ~50 examples per file)", "none (deliberate)"],
        ["Chinese / Kurdish", "zho_Hans / kmr_Latn (what mC4 holds)", "zho_Hant / ckb_Arab", "none (deliberate)"],
        ["instructions", f"tasks with translated templates: {', '.join(tasks) or 'none'}; {mix}",
         "captions: English-with-language and translated templates (E/(E+T)); VQA and others: English",
         "-" if paper_prompts else "`prompts.translated_tasks: [caption]`, `prompts.english_share: null`"],
        ["template strings", "the reference's, verbatim, every task (pipeline/template_table.py); one per "
         "example by a hash of its id; English caption rows: the plain templates", "the same strings, "
         "`random.choice` or a per-language counter", "-"],
        ["chain-of-thought targets", "4 of the reference's 5 templates: `{1} because {1}.` left out",
         "5 (a fifth of the targets without a rationale)", "none (fix)"],
        ["language names in prompts", _names_row(prompts.get("language_names", "project")),
         "Google's: " + ", ".join(f"{c} {n}" for c, n in REFERENCE_NAMES.items()) + "; iw \"former Hebrew\" "
         "(captions, VQA)", "-" if prompts.get("language_names") == "reference" else
         "`prompts.language_names: reference` (Hebrew stays \"Hebrew\": fix)"],
        ["translated templates", "dropped when the English is still in them or the quality filter rejects them "
         "(`prompts.template_filter` thresholds; the English template is used instead)",
         "dropped when the English is still in them",
         "none (stricter on purpose)"],
        *_answer_rows(recipe.get("answers") or {}),
        ["answer language", "trainer coin flip `data.english_answer_prob` (default 0.5); `mblip export` flips "
         "the same coin (`--english-answer-prob`); the prompt then asks for an English answer",
         "coin flip 0.5, prompt names the answer language", "-"],
        ["VQAv2 blank answers", "a blank one of the 10 answers is dropped and counted, the question kept",
         "not handled", "none (fix)"],
        ["decoding", f"beam {recipe.get('beam_size', 1)}" + (" (greedy)" if recipe.get("beam_size", 1) == 1 else ""),
         "greedy", "-" if recipe.get("beam_size", 1) == 1 else "`translation.beam_size: 1`"],
        ["quality filter", "on" + (" with back-translation" if recipe.get("backtranslate", True) else
                                   " (cheap checks only)"),
         "none on captions and questions", "set every rule in `filter` to null"],
        ["training batches", "trainer interleaves the language shards (`data.interleave`, default on) before its "
         "shuffle buffer", "whole mix reshuffled every epoch", "-"],
    ]
    for name, splits in sorted((recipe.get("karpathy_splits") or {}).items()):
        same = splits == PAPER_KARPATHY_SPLITS
        rows.append([f"{name}: Karpathy splits", " + ".join(splits), "train (restval excluded)",
                     "-" if same else f"`sources[{name}].splits: [train]`"])
    return rows + _source_rows(recipe)


def _names_row(spelling: str) -> str:
    if spelling == "reference":
        return "the reference's spelling: " + ", ".join(f"{c} {n}" for c, n in REFERENCE_NAMES.items())
    return "the language table's: " + ", ".join(f"{c} {get_language(c).name}" for c in REFERENCE_NAMES)


def _answer_rows(answers: dict) -> list[list[str]]:
    """The answer rule next to the reference's, knob by knob."""
    min_count = answers.get("min_count", MIN_COUNT)
    match, paired = answers.get("match", "normalized"), answers.get("pair_yes_no", True)
    return [
        ["VQA answers translated", f"seen >= {min_count} times in their source, no digits, longer than one "
         "character (the rest stay English, prompt asks for English); NLLB", "the same rule (>= 15); a web MT "
         "service", ("none (no web MT)" if min_count == MIN_COUNT else f"`answers.min_count: {MIN_COUNT}`")],
        ["answer round trip", "back-translation equals the answer after VQA normalisation (case, punctuation, "
         "articles)" if match == "normalized" else "back-translation equals the answer up to case",
         "equal up to case", "-" if match == "exact" else "`answers.match: exact`"],
        ["yes/no answers", "translated as a pair per language (both or neither)" if paired else "each on its own",
         "each on its own", "-" if not paired else "`answers.pair_yes_no: false`"],
    ]


def _source_rows(recipe: dict) -> list[list[str]]:
    """Rows of the run's LLaVA and POPE-checking sources."""
    rows = []
    for name, llava in sorted((recipe.get("llava") or {}).items()):
        kind, limit = llava["kind"], llava["max_sentences"]
        paper = 0 if kind == "detail" else 3
        rows.append([f"{name}: LLaVA {kind} answers", f"at most {limit} sentences (spaCy)" if limit else "no limit",
                     "no limit (detail)" if kind == "detail" else "at most 3 periods (conversation turns)",
                     "-" if limit == paper else f"`sources[{name}].max_sentences: {paper}`"])
    for name, pope in sorted((recipe.get("pope") or {}).items()):
        on = pope["exclude"] and pope["files"]
        rows.append([f"{name}: POPE images", "left out of training (POPE stays zero-shot)" if on else
                     ("no POPE files given: not checked" if pope["exclude"] else "kept (`exclude_pope_images: false`)"),
                     "not checked", "none (fix; `exclude_pope_images: false` keeps them)"])
    return rows


def render_recipe(stats: dict, recipe: dict) -> str:
    """The card's recipe section (Markdown) from the run's ``recipe_metadata``."""
    if not recipe:
        return "## Recipe\n\nThe recipe settings were not recorded in this run's metadata.\n"
    lines = ["## Recipe and differences from mBLIP\n",
             "The mBLIP data recipe (Geigle et al. 2024), setting by setting; the last column names the knob "
             "that reproduces the paper where this run differs (\"-\": as the paper).\n",
             "| setting | this run | mBLIP | knob for the paper |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in recipe_rows(stats, recipe)]
    return "\n".join(lines) + "\n"


def render_templates(stats: dict) -> str:
    """Translated templates kept (and dropped, with the reason) per language, from the chunk sidecars."""
    texts = (stats.get("processing") or {}).get("template_texts") or {}
    if not texts:
        return ""
    lines = ["Translated instruction templates per language (kept ones are used next to the English templates; "
             "dropped ones are replaced by them):\n", "| lang | task | kept | dropped (reason) |", "|---|---|---|---|"]
    for lang, t in texts.items():
        dropped: dict[str, list[str]] = {}
        for task, text, reason in t.get("dropped") or []:
            dropped.setdefault(task, []).append(f"{text} ({reason})")
        for task in sorted(set(t.get("kept") or {}) | set(dropped)):
            kept = (t.get("kept") or {}).get(task) or []
            lines.append("| " + " | ".join(_cell(v) for v in (
                lang, task, " / ".join(kept) or "none", " / ".join(dropped.get(task, [])) or "-")) + " |")
    return "\n".join(lines) + "\n"
