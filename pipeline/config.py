"""Typed run configuration, parsed once at the entry point (``load_config``) and saved next to the outputs.

Every section is a frozen pydantic model; the build passes each stage the sections (or the small frozen
settings built from them) that it needs, never the whole config. Relative paths in a config file are
resolved against the file's own directory.

This file holds every run-wide section with its defaults and their reasons; the ``sources:`` entries are
typed per source type, each config class beside its reader (``pipeline/ingest/registry.py`` lists them).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import fields
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator, model_validator

from pipeline.answers import MIN_COUNT, AnswerSettings
from pipeline.filters.contrast import resolve_contrasts
from pipeline.filters.rules import FilterRules
from pipeline.frozen import Frozen
from pipeline.ingest.checks import InputChecks
from pipeline.ingest.registry import PATH_FIELDS, SourceConfig, drop_legacy_fields
from pipeline.ingest.web_capfilt import WebCapfiltSource
from pipeline.io import is_url
from pipeline.languages import SOURCE_NLLB, resolve_languages
from pipeline.nllb.engine import EngineSettings, model_languages
from pipeline.output_dir import WORK_DIR
from pipeline.outputs.shards import ShardLayout
from pipeline.templates import PromptSettings


class AssignmentConfig(Frozen):
    mode: Literal["proportional", "all"] = "proportional"  # one language per example (mBLIP) or all of them
    seed: int = 0  # changes every assignment; keep it fixed across regenerations
    # Fraction (0-1) of examples kept in English when `en` is among the languages; the others share the
    # rest by mC4 share. null = English's mC4 share renormalised over the listed languages (43.84% with
    # all 96, as mBLIP; 78% with only en/de/fr/cs). The demo sets 0.4384: the full mix's English share.
    english_share: float | None = Field(None, ge=0, le=1)


class TranslationConfig(Frozen):
    # Converted CT2 model directory (see `mblip convert-nllb`), or "shipped" for the model in the package.
    model: str = "shipped"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    device_index: tuple[int, ...] = (0,)
    compute_type: str = "auto"  # int8 on CPU, int8_float16 on GPU; float32 for exactness (slow)
    # Batches decoded in parallel per process (replicas sharing the weights) and threads per batch; 0 = auto:
    # on CPU one batch per core with one thread each (measured faster than one batch on all cores), on a
    # GPU one batch. Several worker processes on one machine (Dask): give each its share, e.g. inter_threads: 4.
    inter_threads: int = Field(0, ge=0)
    intra_threads: int = Field(0, ge=0)
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

    def engine_settings(self) -> EngineSettings:
        """The engine's load and decoding settings (hashable: it keys the per-process translator cache).

        Every ``EngineSettings`` field is taken from the field of the same name here, so an engine
        setting cannot be left out; lists become tuples (the settings must stay hashable).
        """
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
    # source given the translation (forced decoding, no second decoding: 0.34x a translation against 1.01x
    # at the NLLB-600M shape, but it keeps fewer good pairs on multi30k val with the shipped model, see
    # `mblip bench filter` and docs/performance.md), "both" = everything.
    reverse: Literal["score", "decode", "both"] = "decode"
    # Other English sources each source margin (score_fwd_margin, score_sentence_margin) is scored against,
    # one forced-decoding pass each (pipeline/filters/contrast.py). null (auto): 4 when a margin rule
    # (min_fwd_margin or min_sentence_margin, globally or for a language) is on, else 0: the margins are
    # not computed, as no rule reads them (at the NLLB-600M shape four contrasts cost 1.9 translations,
    # docs/performance.md). A number stores them anyway (e.g. to calibrate a margin rule later).
    contrasts: int | None = Field(None, ge=0, le=16)

    @model_validator(mode="after")
    def _margin_needs_contrasts(self) -> FilterConfig:
        if self.contrasts == 0 and self.backtranslate and self.rules().margin_on():
            raise ValueError("filter.contrasts is 0 but a margin rule (min_fwd_margin or min_sentence_margin) is on: "
                             "the margin needs at least one contrast source; set contrasts to null (auto) or >= 1")
        return self

    def rules(self) -> FilterRules:
        return FilterRules.model_validate(self.model_dump(exclude={"backtranslate", "reverse", "contrasts"}))

    def margin_contrasts(self) -> int:
        """The contrast sources a run scores each margin against (0: no margin computed)."""
        return resolve_contrasts(self.contrasts, self.rules())


class PromptConfig(Frozen):
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
    # How instructions name a language. "project": the language table's names; "reference": the mBLIP
    # reference code's spelling where it differs (bn "Bangla", ht "Haitian", ny "Nyanja" instead of
    # "Bengali", "Haitian Creole", "Chichewa"; pipeline/languages.py REFERENCE_NAMES). Deliberate: the
    # project's are the names the languages go by in NLLB and ISO 639.
    language_names: Literal["project", "reference"] = "project"

    def settings(self) -> PromptSettings:
        return PromptSettings(translated_tasks=tuple(self.translated_tasks), english_share=self.english_share,
                              template_rules=self.template_filter, language_names=self.language_names)


class AnswerConfig(Frozen):
    """The answer rule (pipeline/answers.py): which VQA answers are translated; the rest stay English and
    their prompt asks for an English answer."""

    # Translate only answers seen at least this often in their source (the reference: 15, no digits, longer
    # than one character; those two shape rules always apply). Lower = more translated answers, rarer ones
    # with less reliable one-word translations. 0 (or 1) = off: every answer is a candidate.
    min_count: int = Field(MIN_COUNT, ge=0)
    # Round trip: "normalized" = the back-translation equals the answer after VQA normalisation (case,
    # punctuation, articles); "exact" = equal up to case (the reference). Deliberate: looser keeps "dog"
    # whose back-translation is "The dog."
    match: Literal["normalized", "exact"] = "normalized"
    # "yes" and "no" translated together or not at all, per language (deliberate: never a translated "yes"
    # next to an English "no"); false = each on its own (the reference).
    pair_yes_no: bool = True

    def settings(self, frequent: dict[str, frozenset[str]] | None = None) -> AnswerSettings:
        return AnswerSettings(min_count=self.min_count, match=self.match, pair_yes_no=self.pair_yes_no,
                              frequent=frequent)


class TaskMix(Frozen):
    share: float = Field(1.0, gt=0, le=1)  # fraction of the task's rows kept (by hash); 1 = all
    cap: int | None = Field(None, ge=0)  # most rows of the task (lowest hashes win); None = no cap


class MixConfig(Frozen):
    """Per-task shares and caps (``pipeline/mix.py``); a task not listed keeps all its rows."""

    tasks: dict[str, TaskMix] = {}
    seed: int = 0  # changes which rows a share or cap keeps; keep it fixed across regenerations

    def rules(self) -> dict[str, dict]:
        return {task: rule.model_dump() for task, rule in sorted(self.tasks.items())}


class OutputConfig(Frozen):
    # The output folder, or any fsspec URL (s3://bucket/prefix, gs://..., hf://datasets/...): then the run
    # builds the output in `local_dir` (locks, renames and the work folder need a real filesystem) and
    # uploads the files whose sha256 changed, the manifest last (pipeline/outputs/remote.py).
    dir: Path | str = Path("out")
    # Local folder a URL output is built in (its _work/ stays there); None = $XDG_CACHE_HOME/mblip/outputs/
    # (~/.cache/...) under a name made from the URL. Ignored for a local `dir`.
    local_dir: Path | None = None
    shard_rows: int = Field(100_000, gt=0)  # rows per Parquet shard
    # Target in-memory (uncompressed Arrow) bytes per shard, turned into rows from the mean row size;
    # zstd files come out several times smaller. Smaller shards = finer resume, more files. 0 = off.
    shard_bytes: int = Field(0, ge=0)
    row_group_rows: int = Field(10_000, gt=0)  # Parquet row-group size (read granularity)
    pretty_name: str | None = None  # dataset card title; None = a generic name
    # paths: rows name their image (image_path under the source's image root), as mBLIP. embed: the kept
    # shards also carry each row's image bytes as a `datasets.Image` column (pipeline/outputs/images.py), so
    # the output folder is self-contained; each distinct image is stored once per row group (set
    # row_group_rows = shard_rows for once per shard), and shards grow by their images (keep shard_rows low).
    images: Literal["paths", "embed"] = "paths"

    def layout(self) -> ShardLayout:
        return ShardLayout(self.shard_rows, self.shard_bytes, self.row_group_rows)

    @field_validator("dir", mode="before")
    @classmethod
    def _dir_path_or_url(cls, value):
        return value if is_url(value) else Path(value)

    @property
    def url(self) -> str | None:
        """The remote output's URL, or None for a local output."""
        return str(self.dir) if is_url(self.dir) else None

    @property
    def local(self) -> Path:
        """The folder the run writes: ``dir`` itself, or for a URL output its local build folder."""
        if self.url is None:
            return Path(self.dir)
        return Path(self.local_dir) if self.local_dir else default_local_dir(self.url)


class RunConfig(Frozen):
    chunk_rows: int = Field(5_000, gt=0)  # rows per task: thousands, never one task per row
    # Project or NLLB codes; empty = all 96 with English at its mC4 share (mBLIP). English rows stay
    # English (not translated, not filtered as translations); list codes without `en` for none.
    languages: tuple[str, ...] = ()
    # Chunk tasks in flight at once (each holds one chunk in memory). Raise it to the number of worker
    # threads when running on Dask; 1 = strictly one chunk at a time.
    concurrency: int = Field(2, ge=1)


class PipelineConfig(Frozen):
    sources: tuple[SourceConfig, ...]
    run: RunConfig = RunConfig()
    assignment: AssignmentConfig = AssignmentConfig()
    translation: TranslationConfig = TranslationConfig()
    filter: FilterConfig = FilterConfig()
    prompts: PromptConfig = PromptConfig()
    answers: AnswerConfig = AnswerConfig()
    mix: MixConfig = MixConfig()
    output: OutputConfig = OutputConfig()
    # What every row's English text must be (length per task, visible text, markup, script), checked at
    # ingest: pipeline/ingest/checks.py documents each knob; a row that fails is quarantined.
    input_checks: InputChecks = InputChecks()

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
            fixed = [s.source_name for s in self.sources if s.fixed_language]
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

    @property
    def work_dir(self) -> Path:
        """The run's work folder (ingested chunks, processed chunks, caches) inside the output folder."""
        return self.output.local / WORK_DIR

    def config_hash(self) -> str:
        """Digest of every setting, defaults filled in; sources laid out as they always were hashed
        (``SourceBase.legacy_values``), so the same YAML keeps its hash."""
        data = {**self.model_dump(mode="json"), "sources": [s.legacy_values() for s in self.sources]}
        for key, unset in (("local_dir", None), ("images", "paths")):  # added later: unset, the hash is as before
            if data["output"][key] == unset:
                del data["output"][key]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def web_image_urls(self) -> list[str]:
        """The image URLs of the captions this config's ``web_capfilt``/``web_match`` sources sample (what
        ``mblip fetch-images CONFIG`` fetches); the sampling's phrase index is left where the build finds it."""
        return [url for s in self.sources if isinstance(s, WebCapfiltSource) for url in s.image_urls(self.work_dir)]


def _resolve_path_value(value, base: Path):
    """A path, or a list or mapping of paths (``pope: [...]``, ``images: {prefix: root}``), resolved at ``base``."""
    if isinstance(value, list):
        return [_resolve_path_value(v, base) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_path_value(v, base) for k, v in value.items()}
    if isinstance(value, (str, Path)) and not is_url(value) and not Path(value).is_absolute():
        return str((base / value).resolve())
    return value


def check_model_languages(config: PipelineConfig, model_dir: str | Path) -> None:
    """Refuse a run whose languages its translation model does not cover (call it before any work).

    A model translates into a language it never learned anyway (the shipped Multi30k model writes German
    for "nl"), and the run would keep that text under the language's code. What a model covers:
    ``pipeline.nllb.engine.model_languages``. English rows are not translated: English is always allowed.
    """
    covered = model_languages(model_dir)
    languages = [lang for lang in config.languages() if lang.nllb != SOURCE_NLLB]
    missing = [lang.code for lang in languages if lang.nllb not in covered]
    if not missing:
        return
    known = ", ".join(sorted(covered)) if len(covered) <= 10 else f"{len(covered)} languages"
    usable = [lang.code for lang in config.languages() if lang.nllb in covered or lang.nllb == SOURCE_NLLB]
    raise ValueError(
        f"run.languages: the translation model {config.translation.model!r} ({model_dir}) covers {known}, not "
        f"{', '.join(missing)}; list only languages it covers (run.languages: [{', '.join(usable)}]) or set "
        "translation.model to a model that covers them (NLLB-200 covers all: `mblip convert-nllb "
        "facebook/nllb-200-distilled-1.3B DIR`)"
    )


def default_local_dir(url: str) -> Path:
    """Where a URL output is built when ``output.local_dir`` is not set: one folder per URL under the
    user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``), named after the URL and a digest of it."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[-1]).strip("_")[-60:]
    return cache / "mblip" / "outputs" / f"{slug}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


def _resolve_paths(data: dict, base: Path) -> dict:
    for source in data.get("sources", []) or []:
        for key in PATH_FIELDS:
            if source.get(key) is not None:
                source[key] = _resolve_path_value(source[key], base)
    tr = data.get("translation") or {}
    model = tr.get("model")
    if model and model != "shipped" and not Path(model).is_absolute() and (base / model).exists():
        tr["model"] = str((base / model).resolve())
    if tr.get("cache_dir") and not Path(tr["cache_dir"]).is_absolute():
        tr["cache_dir"] = str((base / tr["cache_dir"]).resolve())
    out = data.get("output") or {}
    if out.get("dir") and not is_url(out["dir"]) and not Path(out["dir"]).is_absolute():
        out["dir"] = str((base / out["dir"]).resolve())
    if out.get("local_dir") and not Path(out["local_dir"]).is_absolute():
        out["local_dir"] = str((base / out["local_dir"]).resolve())
    return data


def load_config(path: str | Path, overrides: dict | None = None) -> PipelineConfig:
    """Parse a YAML config; ``overrides`` is a nested dict merged on top (e.g. from CLI flags)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from e
    data = _resolve_paths(data, path.parent)
    if isinstance(data.get("sources"), list):  # an older config.resolved.yaml lists every type's fields
        data["sources"] = [drop_legacy_fields(source) for source in data["sources"]]
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    try:
        return PipelineConfig.model_validate(data)
    except Exception as e:  # pydantic's message names the knob; add the file
        raise ValueError(f"{path}: invalid config:\n{e}") from e


def with_output_dir(config: PipelineConfig, out_dir: str | Path) -> PipelineConfig:
    """``config`` writing into ``out_dir`` instead (e.g. ``--out``, a folder resolved against the working
    directory, or a URL)."""
    target = str(out_dir) if is_url(str(out_dir)) else Path(out_dir).resolve()
    return config.model_copy(update={"output": config.output.model_copy(update={"dir": target})})


def resolved_config_text(config: PipelineConfig) -> str:
    """The YAML of ``config`` with every default filled in (``config.resolved.yaml`` of an output)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
