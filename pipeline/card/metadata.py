"""Card metadata: the Hub's documented vocabulary, the sources' cards, the YAML front matter and its checks.

``build_metadata`` derives the front matter of ``README.md`` from the run's stats, shard list and the
source cards in ``data_cards/`` (licence, citation, homepage: YAML front matter); ``validate_metadata``
checks it against the values the Hub documents. ``pipeline/card/render.py`` writes the body.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import yaml

import data_cards
from pipeline.languages import SOURCE_LANGUAGE, get_language
from pipeline.run_record import RunRecord
from pipeline.schema import QUARANTINE_SCHEMA, ROW_SCHEMA

CARDS_DIR = Path(data_cards.__file__).resolve().parent  # package data: a non-editable install has them
CARD_FILE = "README.md"
SOURCE_CARD_KEYS = ("source_type", "pretty_name", "task", "homepage", "license", "license_text", "license_url",
                    "source_dataset", "expected_files", "citation")
DEFAULT_PRETTY_NAME = "mBLIP-style multilingual image-text instruction data"

# mC4 / project codes that are not what the Hub accepts as ISO 639: deprecated ISO 639-1 codes (iw, in,
# ji, jw) and mC4's "fil", which NLLB serves as Tagalog (tgl_Latn, ISO 639-1 "tl").
ISO_639_OVERRIDES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "fil": "tl", "mo": "ro"}
DEPRECATED_ISO_639 = frozenset({"iw", "in", "ji", "jw", "mo", "sh"})

# ISO 639-1 (all 183 two-letter codes in force).
ISO_639_1 = frozenset("""
aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee
el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io
is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn
mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se
sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo
wa wo xh yi yo za zh zu
""".split())

# Values documented for dataset card metadata (huggingface_hub DatasetCardData, hub-docs datasetcard.md,
# https://huggingface.co/docs/hub/repositories-licenses, the Hub's task list).
HUB_LICENSES = frozenset("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0
cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0
cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1
eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c
ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib
pddl lgpl-lr deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2
llama3.3 llama4 gemma unknown other
""".split())
HUB_TASK_CATEGORIES = frozenset("""
text-classification token-classification table-question-answering question-answering
zero-shot-classification translation summarization feature-extraction text-generation
text2text-generation fill-mask sentence-similarity text-to-speech text-to-audio
automatic-speech-recognition audio-to-audio audio-classification audio-text-to-text
voice-activity-detection depth-estimation image-classification object-detection image-segmentation
text-to-image image-to-text image-to-image image-to-video unconditional-image-generation
video-classification reinforcement-learning robotics tabular-classification tabular-regression
tabular-to-text table-to-text multiple-choice text-ranking text-retrieval time-series-forecasting
text-to-video image-text-to-text image-text-to-image image-text-to-video visual-question-answering
document-question-answering zero-shot-image-classification graph-ml mask-generation
zero-shot-object-detection text-to-3d image-to-3d image-feature-extraction video-text-to-text
keypoint-detection visual-document-retrieval any-to-any video-to-video other
""".split())
SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                   "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T")
MULTILINGUALITY = frozenset({"monolingual", "multilingual", "translation", "other"})
ANNOTATIONS_CREATORS = frozenset({"found", "crowdsourced", "expert-generated", "machine-generated", "no-annotation",
                                  "other"})
LANGUAGE_CREATORS = frozenset({"found", "crowdsourced", "expert-generated", "machine-generated", "other"})
REQUIRED_METADATA = ("pretty_name", "language", "language_details", "license", "task_categories", "size_categories",
                     "multilinguality", "source_datasets", "annotations_creators", "configs")

# polars type -> the ``datasets`` dtype of the Arrow type polars writes to Parquet
POLARS_TO_FEATURE = {pl.String: "large_string", pl.Float64: "float64", pl.Float32: "float32", pl.Int64: "int64",
                     pl.Int32: "int32", pl.Boolean: "bool", pl.Binary: "large_binary"}
TASK_CATEGORY = {"caption": "image-to-text", "vqa": "visual-question-answering", "vqg": "image-text-to-text",
                 "aokvqa": "visual-question-answering", "llava": "image-text-to-text",
                 "imagenet": "image-classification", "instruct": "image-text-to-text"}


class SourceCardError(ValueError):
    """A source has no card in data_cards/, or its card lacks a required key."""


def split_front_matter(text: str) -> tuple[dict, str]:
    """YAML front matter (between the first two ``---`` lines) and the body."""
    match = re.match(r"^---\n(.*?)\n---\n?(.*)$", text, flags=re.S)
    if not match:
        return {}, text
    return yaml.safe_load(match.group(1)) or {}, match.group(2)


def load_source_card(source_type: str, cards_dir: str | Path | None = None) -> dict:
    """The front matter of ``data_cards/<source_type>.md``; every key of SOURCE_CARD_KEYS is required."""
    path = Path(cards_dir or CARDS_DIR) / f"{source_type}.md"
    if not path.is_file():
        raise SourceCardError(f"no source card for source type {source_type!r}: add {path} (see data_cards/README.md)")
    meta, _ = split_front_matter(path.read_text(encoding="utf-8"))
    missing = [k for k in SOURCE_CARD_KEYS if not meta.get(k)]
    if missing:
        raise SourceCardError(f"{path}: front matter lacks {', '.join(missing)} (see data_cards/README.md)")
    if meta["source_type"] != source_type:
        raise SourceCardError(f"{path}: source_type is {meta['source_type']!r}, expected {source_type!r}")
    return meta


def iso639(code: str) -> str:
    """Hub language code (ISO 639-1 where one exists) for a project (mC4) code: iw -> he, fil -> tl."""
    return ISO_639_OVERRIDES.get(code, code)


def size_category(n: int) -> str:
    bound, i = 1_000, 0
    while n >= bound and i < len(SIZE_CATEGORIES) - 1:
        bound *= 10
        i += 1
    return SIZE_CATEGORIES[i]


def derive_license(cards: list[dict]) -> dict:
    """Licence metadata from the sources' licences: the common Hub id, the list of ids when they
    differ, or ``other`` (with a link) when a source's licence is not a Hub id."""
    ids = sorted({c["license"] for c in cards})
    if ids and all(i in HUB_LICENSES and i not in ("other", "unknown") for i in ids):
        return {"license": ids[0] if len(ids) == 1 else ids}
    if not ids:
        return {"license": "unknown"}
    odd = next(c for c in cards if c["license"] not in HUB_LICENSES or c["license"] in ("other", "unknown"))
    return {"license": "other", "license_name": "source-licences", "license_link": odd["license_url"]}



def source_types(stats: dict, record: RunRecord) -> dict[str, str]:
    """Source name -> source type (its card's name) for every source in the stats."""
    declared = record.sources
    return {name: declared.get(name, name) for name in stats.get("sources", {})}


def build_configs(files: list[dict]) -> list[dict]:
    """One `datasets` config per language with kept rows, a default one over all of them, and the
    rejects and quarantine shards as their own configs. Splits without files get no config."""
    kept_langs = sorted({f["lang"] for f in files if f["split"] == "kept" and f["rows"]})
    configs = []
    if kept_langs:
        configs.append({"config_name": "default", "default": True,
                        "data_files": [{"split": "train", "path": "data/*/*.parquet"}]})
    configs += [{"config_name": lang, "data_files": [{"split": "train", "path": f"data/{lang}/*.parquet"}]}
                for lang in kept_langs]
    for split, pattern in (("rejected", "rejects/*/*.parquet"), ("quarantine", "quarantine/*.parquet")):
        if any(f["split"] == split and f["rows"] for f in files):
            configs.append({"config_name": pattern.split("/")[0], "data_files": [{"split": "train", "path": pattern}]})
    return configs


def feature_yaml(name: str, dtype: pl.DataType) -> dict:
    """One ``dataset_info.features`` entry, as ``datasets`` writes it for the Arrow type polars stores
    (``Features.from_arrow_schema(...)._to_yaml_list()``): strings are ``large_string``, lists ``large_list``."""
    if isinstance(dtype, pl.List):
        return {"name": name, "large_list": feature_yaml("", dtype.inner)["dtype"]}
    return {"name": name, "dtype": POLARS_TO_FEATURE[dtype.base_type()]}


def dataset_features(schema: dict[str, pl.DataType], images: bool = False) -> list[dict]:
    """The features of shards with ``schema`` (plus the ``datasets.Image`` column when ``images``)."""
    return [feature_yaml(n, t) for n, t in schema.items()] + ([{"name": "image", "dtype": "image"}] if images else [])


def build_dataset_info(configs: list[dict], images: bool = False) -> list[dict]:
    """``dataset_info`` for each config: the row schema (kept rows with their images when embedded,
    rejects without), the quarantine schema for ``quarantine``."""
    kept = dataset_features(ROW_SCHEMA, images)
    by_config = {"rejects": dataset_features(ROW_SCHEMA), "quarantine": dataset_features(QUARANTINE_SCHEMA)}
    return [{"config_name": c["config_name"], "features": by_config.get(c["config_name"], kept)} for c in configs]


def build_metadata(stats: dict, files: list[dict], record: RunRecord, cards: dict[str, dict],
                   images: bool = False) -> dict:
    langs = list(stats.get("languages", {}))
    tasks = sorted({c["task"] for c in cards.values()})
    iso = [iso639(SOURCE_LANGUAGE)] + sorted({iso639(c) for c in langs} - {iso639(SOURCE_LANGUAGE)})
    nllb = [get_language(SOURCE_LANGUAGE).nllb] + sorted(get_language(c).nllb for c in langs if c != SOURCE_LANGUAGE)
    meta = {
        "pretty_name": record.pretty_name or DEFAULT_PRETTY_NAME,
        "language": iso,
        "language_details": nllb,
        **derive_license(list(cards.values())),
        "task_categories": sorted({TASK_CATEGORY[t] for t in tasks if t in TASK_CATEGORY}) or ["other"],
        "size_categories": [size_category(stats["totals"]["kept"])],
        "multilinguality": ["multilingual"],
        "source_datasets": sorted({c["source_dataset"] for c in cards.values()}) or ["original"],
        "annotations_creators": ["machine-generated"],
        "language_creators": ["crowdsourced", "machine-generated"],
        "tags": ["mblip", "machine-translated", "nllb", "image-captioning", "vqa", "multilingual"],
        "configs": build_configs(files),
    }
    meta["dataset_info"] = build_dataset_info(meta["configs"], images)
    return meta


def front_matter(meta: dict) -> str:
    """The YAML block at the top of README.md."""
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=10_000) + "---\n"


def validate_metadata(meta: dict) -> list[str]:
    """Problems with card metadata under the Hub's documented rules (empty list = valid)."""
    errors = [f"missing {k}" for k in REQUIRED_METADATA if k not in meta or meta[k] in (None, "", [])]

    def as_list(key):
        value = meta.get(key) or []
        return value if isinstance(value, list) else [value]

    if "pretty_name" in meta and not isinstance(meta["pretty_name"], str):
        errors.append("pretty_name must be a string")
    for code in as_list("language"):
        if not isinstance(code, str) or code in DEPRECATED_ISO_639:
            errors.append(f"language {code!r}: deprecated or not a string (use e.g. he for iw)")
        elif len(code) == 2 and code not in ISO_639_1:
            errors.append(f"language {code!r} is not an ISO 639-1 code")
        elif not re.fullmatch(r"[a-z]{2,3}", code):
            errors.append(f"language {code!r} is not an ISO 639-1/2/3 code (two or three lower-case letters)")
    if len(as_list("language")) != len(set(as_list("language"))):
        errors.append("language has duplicates")
    for code in as_list("language_details"):
        if not isinstance(code, str) or not re.fullmatch(r"[a-z]{3}_[A-Z][a-z]{3}", code):
            errors.append(f"language_details {code!r} is not an NLLB code like deu_Latn")
    for lic in as_list("license"):
        if lic not in HUB_LICENSES:
            errors.append(f"license {lic!r} is not a Hub licence id (use 'other' with license_name/license_link)")
    if "other" in as_list("license") and not (meta.get("license_name") and meta.get("license_link")):
        errors.append("license 'other' needs license_name and license_link")
    for key, allowed in (("task_categories", HUB_TASK_CATEGORIES),
                         ("size_categories", set(SIZE_CATEGORIES) | {"other"}),
                         ("multilinguality", MULTILINGUALITY), ("annotations_creators", ANNOTATIONS_CREATORS),
                         ("language_creators", LANGUAGE_CREATORS)):
        for value in as_list(key):
            if value not in allowed:
                errors.append(f"{key} {value!r} is not one of the documented values")
    for value in as_list("source_datasets"):
        if not (isinstance(value, str) and re.fullmatch(r"original|extended(\|[\w.\-/]+)?", value)):
            errors.append(f"source_datasets {value!r} must be 'original', 'extended' or 'extended|<dataset id>'")
    errors += _validate_configs(meta.get("configs") or [])
    return errors


def _validate_configs(configs: list) -> list[str]:
    errors, names, defaults = [], [], 0
    for cfg in configs:
        if not isinstance(cfg, dict) or not isinstance(cfg.get("config_name"), str):
            errors.append(f"config {cfg!r} needs a config_name")
            continue
        name = cfg["config_name"]
        names.append(name)
        defaults += bool(cfg.get("default"))
        data_files = cfg.get("data_files")
        entries = data_files if isinstance(data_files, list) else [data_files]
        if not data_files:
            errors.append(f"config {name!r} has no data_files")
        for entry in entries:
            paths = entry.get("path") if isinstance(entry, dict) else entry
            paths = paths if isinstance(paths, list) else [paths]
            if isinstance(entry, dict) and not re.fullmatch(r"\w+(\.\w+)*", str(entry.get("split", ""))):
                errors.append(f"config {name!r}: split name {entry.get('split')!r} is not valid")
            for p in paths:
                if not isinstance(p, str) or p.startswith("/") or ".." in p.split("/"):
                    errors.append(f"config {name!r}: data file path {p!r} must be relative to the repository root")
    if len(names) != len(set(names)):
        errors.append("config names are not unique")
    if defaults > 1:
        errors.append("more than one config is marked default")
    return errors

