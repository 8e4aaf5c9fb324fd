"""Training exports of a finished output: the trainer view (Parquet) and the mBLIP JSON format.

Trainer view, one file per kept shard (``trainer/{lang}/part-00000.parquet``): ``example_id``,
``source``, ``image_id``, ``image_path`` (relative to the source's image root), ``image`` (absolute path
when the manifest records the root), ``lang``, ``task``, ``prompt`` (the instruction in the target
language), ``target`` (caption, or the VQA answer).

mBLIP JSON (``mblip/{lang}.json``): a JSON array of ``{"context", "label", "image_id"}`` objects, the
format the reference code's training datasets read (context = prompt, label = target, image_id = the
image file, absolute when the root is known, else relative to the source's image root). ``merged``
writes every language into one such file, ``mblip/task_mix_mt.json``, like the released
``task_mix_v2_mt.json`` (languages in code order, each in shard order; the reference concatenated its
task files unshuffled and its trainer shuffled).

The answer language of VQA rows is the trainer's coin flip (``english_answer_prob``, default 0.5 as mBLIP
and ``data.english_answer_prob``): a row whose answer was translated trains on the English answer, with a
prompt asking for an English answer, when ``pipeline.answers.english_answer_coin`` of its id is below
the probability: the same rows as the trainer, in both exports. 0 = always the translated answer.

Prompts come from a pluggable ``PromptSource``: by default the row's ``prompt`` column (the translated
templates of pipeline/templates.py, written by the chunk stage), falling back to the English templates
that name the language for rows without one (outputs made before prompts existed).
Both exports stream one record batch at a time and are written atomically, with their own manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import polars as pl

from pipeline.answers import english_answer_coin
from pipeline.io import sha256_file, write_json_atomic, write_parquet_atomic
from pipeline.output_dir import MANIFEST
from pipeline.outputs.shards import SPLIT_KEPT
from pipeline.schema import TASK_CAPTION, TASK_VQA
from pipeline.templates import TASK_VQA_ENGLISH_ANSWER, english_prompt, english_templates, render

EXPORT_MANIFEST = "export_manifest.json"
TRAINER_DIR, MBLIP_DIR = "trainer", "mblip"
FORMATS = ("trainer", "mblip", "merged")
DEFAULT_FORMATS = ("trainer", "mblip")
MERGED_FILE = "task_mix_mt.json"  # every language in one file, like the released task_mix_v2_mt.json
ENGLISH_ANSWER_PROB = 0.5  # mBLIP's coin flip (and the trainer's data.english_answer_prob default)
READ_BATCH_ROWS = 4096  # rows per record batch: bounds memory
TRAINER_SCHEMA = {
    "example_id": pl.String(), "source": pl.String(), "image_id": pl.String(), "image_path": pl.String(),
    "image": pl.String(), "lang": pl.String(), "task": pl.String(), "prompt": pl.String(), "target": pl.String(),
}


class PromptSource(Protocol):
    """Instruction for one row (a dict with at least example_id, task, lang, text_en, text_tgt)."""

    name: str

    def prompt(self, row: dict) -> str | None: ...


class EnglishTemplatePrompts:
    """English templates naming the target language ("Caption the image in German.")."""

    name = "english-templates"

    def prompt(self, row: dict) -> str | None:
        task = row["task"]
        if task not in (TASK_CAPTION, TASK_VQA):
            return None
        if task == TASK_VQA and row.get("answer_translated") is False:
            task = TASK_VQA_ENGLISH_ANSWER
        template = english_templates(row["lang"]).pick(task, row["example_id"])
        return render(template, question=row.get("text_tgt") or row["text_en"])


class RowPrompts:
    """The row's own ``prompt`` column (translated templates), else ``fallback``."""

    def __init__(self, fallback: PromptSource | None = None):
        self.fallback = fallback or EnglishTemplatePrompts()
        self.name = f"row-prompt+{self.fallback.name}"

    def prompt(self, row: dict) -> str | None:
        return row.get("prompt") or self.fallback.prompt(row)


def prompt_source(name: str = "row") -> PromptSource:
    """``row``: the shards' prompt column with English fallback; ``english``: English templates only."""
    if name == "row":
        return RowPrompts()
    if name == "english":
        return EnglishTemplatePrompts()
    raise ValueError(f"unknown prompt source {name!r}; use 'row' or 'english'")


def row_target(row: dict) -> str:
    """Caption: the translation. VQA: ``answer_tgt`` (translated, or the English answer the answer stage
    kept when its round trip failed), else ``answer_en``. Every task: the ``target`` column when present."""
    if row.get("target"):
        return row["target"]
    if row["task"] == TASK_VQA:
        return row.get("answer_tgt") or row["answer_en"]
    return row["text_tgt"] or row["text_en"]


def prompt_and_answer(row: dict, prompts: PromptSource, english_answer_prob: float = 0.0) -> tuple[str | None, str]:
    """(prompt, target) of a row: ``prompts``' instruction and ``row_target``, except for a VQA row with a
    translated answer whose coin picks English (``english_answer_prob``): then its English answer and
    the template that key picks among those asking for an English answer, as the trainer does."""
    translated = bool(row.get("answer_tgt")) and row.get("answer_tgt") != row.get("answer_en")
    if row["task"] == TASK_VQA and translated and english_answer_coin(row["example_id"]) < english_answer_prob:
        question = row.get("text_tgt") or row["text_en"]
        return english_prompt(TASK_VQA_ENGLISH_ANSWER, row["lang"], row["example_id"], question=question), \
            row["answer_en"]
    return prompts.prompt(row), row_target(row)


def to_trainer_rows(frame: pl.DataFrame, prompts: PromptSource, image_roots: dict[str, str],
                    english_answer_prob: float = 0.0) -> pl.DataFrame:
    """The trainer view of a batch of kept rows (same order)."""
    out = []
    for row in frame.iter_rows(named=True):
        root = image_roots.get(row["source"])
        prompt, target = prompt_and_answer(row, prompts, english_answer_prob)
        out.append({
            "example_id": row["example_id"], "source": row["source"], "image_id": row["image_id"],
            "image_path": row["image_path"],
            "image": str(Path(root) / row["image_path"]) if root and row["image_path"] else None,
            "lang": row["lang"], "task": row["task"], "prompt": prompt, "target": target,
        })
    return pl.DataFrame(out, schema=TRAINER_SCHEMA)


def _kept_files(out_dir: Path, languages: tuple[str, ...]) -> tuple[dict, list[dict]]:
    manifest_path = out_dir / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: missing; export needs a finished output (run `mblip verify`)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    files = [f for f in manifest["files"] if f["split"] == SPLIT_KEPT and (not languages or f["lang"] in languages)]
    return manifest, files


def _batches(path: Path) -> Iterator[pl.DataFrame]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_BATCH_ROWS):
        yield pl.from_arrow(batch)


def export_dataset(
    out_dir: str | Path,
    dest: str | Path | None = None,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    languages: tuple[str, ...] = (),
    prompts: PromptSource | None = None,
    english_answer_prob: float = ENGLISH_ANSWER_PROB,
) -> dict:
    """Write the requested exports of ``out_dir``'s kept shards under ``dest`` (default OUT/export)."""
    out_dir = Path(out_dir)
    dest = Path(dest) if dest else out_dir / "export"
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    if not 0.0 <= english_answer_prob <= 1.0:
        raise ValueError(f"english_answer_prob must be between 0 and 1, got {english_answer_prob}")
    prompts = prompts or prompt_source("row")
    manifest, files = _kept_files(out_dir, languages)
    roots = manifest.get("image_roots") or {}
    written: list[dict] = []
    by_lang: dict[str, list[dict]] = {}
    for f in files:
        by_lang.setdefault(f["lang"], []).append(f)
    merged = _JsonArrayWriter(dest / MBLIP_DIR / MERGED_FILE) if "merged" in formats else None
    merged_rows = 0
    for lang, lang_files in sorted(by_lang.items()):
        json_writer = _JsonArrayWriter(dest / MBLIP_DIR / f"{lang}.json") if "mblip" in formats else None
        rows = 0
        for f in lang_files:
            parts = [to_trainer_rows(batch, prompts, roots, english_answer_prob)
                     for batch in _batches(out_dir / f["path"])]
            view = pl.concat(parts) if parts else pl.DataFrame(schema=TRAINER_SCHEMA)
            rows += view.height
            if "trainer" in formats:
                rel = f"{TRAINER_DIR}/{lang}/{Path(f['path']).name}"
                write_parquet_atomic(view, dest / rel)
                written.append({"path": rel, "format": "trainer", "lang": lang, "rows": view.height,
                                "bytes": (dest / rel).stat().st_size, "sha256": sha256_file(dest / rel)})
            for writer in (json_writer, merged):
                if writer:
                    writer.write(view)
        merged_rows += rows
        if json_writer:
            written.append(_json_entry(json_writer.close(), dest, "mblip", lang, rows))
    if merged:
        written.append(_json_entry(merged.close(), dest, "merged", "all", merged_rows))
    export_manifest = {"source_manifest_created": manifest.get("created"), "prompts": prompts.name,
                       "english_answer_prob": english_answer_prob, "files": written}
    write_json_atomic(export_manifest, dest / EXPORT_MANIFEST)
    return export_manifest


def _json_entry(path: Path, dest: Path, fmt: str, lang: str, rows: int) -> dict:
    return {"path": path.relative_to(dest).as_posix(), "format": fmt, "lang": lang, "rows": rows,
            "bytes": path.stat().st_size, "sha256": sha256_file(path)}


class _JsonArrayWriter:
    """Streams ``[{"context", "label", "image_id"}, ...]`` to a temporary file; renamed on close."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.fh = open(self.tmp, "w", encoding="utf-8")
        self.fh.write("[")
        self.first = True

    def write(self, view: pl.DataFrame) -> None:
        for row in view.iter_rows(named=True):
            record = {"context": row["prompt"], "label": row["target"], "image_id": row["image"] or row["image_path"]}
            self.fh.write(("\n" if self.first else ",\n") + json.dumps(record, ensure_ascii=False))
            self.first = False

    def close(self) -> Path:
        self.fh.write("\n]\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.path)
        return self.path
