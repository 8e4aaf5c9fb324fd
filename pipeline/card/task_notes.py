"""The card's task tables: rows per task, a task x language table, and how each task differs on
purpose from the mBLIP reference code (Geigle et al. 2024; github gregor-ge/mBLIP, ``data/``)."""

from __future__ import annotations

from collections.abc import Callable

# task -> (what a row is, what differs from the reference and why)
TASK_NOTES: dict[str, tuple[str, str]] = {
    "caption": ("caption in the target language", "as the paper"),
    "vqa": ("question -> short answer", "answers translated with NLLB (the reference: a web service) by the "
            "reference's rule (`answers.min_count`); yes/no as a pair; the prompt always names the answer's language"),
    "vqg": (
        "answer -> question in the named language",
        "question, answer and image from one VQAv2 record (the reference paired answers with other images' "
        "questions); the prompt names the target question's language (the reference often said English)",
    ),
    "aokvqa_explain": ("question + answer -> rationale", "missing images quarantined, not skipped silently; "
                       "questions about POPE's images left out"),
    "aokvqa_cot": (
        "question -> rationale + answer",
        "every target holds its rationale (the reference's '{a} because {a}.' template is not used)",
    ),
    "llava": (
        "instruction -> answer (one human/gpt pair)",
        "conversation turns of at most 3 sentences counted with spaCy's sentencizer, not periods (detail "
        "descriptions whole, as the reference); image names resolved to files that exist (the reference's "
        "COCO_train2014_ names missed the val2014 images); records about POPE's images left out",
    ),
    "classify": ("image -> class name in the language", "seeded; images disjoint from `decide`"),
    "decide": (
        "does the image show X? -> yes/no",
        "seeded; a negative is never the true class nor a same-named class; images disjoint from `classify`",
    ),
    "instruct": ("ready prompt -> target (released mBLIP file)", "read as released"),
}


def render_task_tables(stats: dict, table: Callable[[list[str], list[list]], str]) -> str:
    out = ["## Tasks\n"]
    tasks = stats.get("tasks", {})
    rows = []
    for task, counts in tasks.items():
        what, diff = TASK_NOTES.get(task, ("", ""))
        rows.append(
            [f"`{task}`", what, counts.get("assigned", 0), counts.get("kept", 0), counts.get("rejected", 0), diff]
        )
    out.append(table(["task", "example", "rows", "kept", "rejected", "differs from the reference"], rows) + "\n")
    by_task = stats.get("task_languages", {})
    langs = sorted({lang for per in by_task.values() for lang in per})
    out.append("Kept rows per task and language:\n")
    out.append(
        table(
            ["task", *langs],
            [[f"`{t}`", *[by_task[t].get(lang, {}).get("kept", 0) for lang in langs]] for t in sorted(by_task)],
        )
        + "\n"
    )
    mix = stats.get("mix_reasons") or {}
    if mix:
        out.append("Rows left out by the task mix (shares and caps of the config; not translated):\n")
        out.append(
            table(
                ["task", "reason", "rows"],
                [[t, r, n] for t, per in sorted(mix.items()) for r, n in sorted(per.items())],
            )
            + "\n"
        )
    return "\n".join(out)
