"""The dataset card (``README.md`` at the output root), generated from run artifacts only.

Inputs: ``stats.json`` (every counter shown), the shard list, the run metadata (model, settings,
sources) and the source cards in ``data_cards/`` (licence, citation, homepage: YAML front matter).
Output: Hugging Face metadata (YAML front matter, checked by ``validate_metadata`` against the values
the Hub documents) and a Markdown body, plus the PNG plots of ``pipeline/plots.py``. Nothing here is
typed by hand per run, and the same inputs give the same bytes (no timestamps).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import data_cards
from pipeline.languages import SOURCE_LANGUAGE, get_language
from pipeline.plots import render_plots, score_label
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

TASK_CATEGORY = {"caption": "image-to-text", "vqa": "visual-question-answering", "vqg": "image-text-to-text",
                 "aokvqa": "visual-question-answering", "llava": "image-text-to-text",
                 "imagenet": "image-classification", "instruct": "image-text-to-text"}
COLUMN_DOCS = {
    "example_id": "stable id: hash of (source, source record id)",
    "source": "source name in the run config",
    "source_record_id": "the record's own id in the source file (annotation / question id)",
    "source_file": "file the record came from",
    "task": "`caption`, `vqa`, `vqg`, `aokvqa_explain`, `aokvqa_cot`, `llava`, `classify`, `decide`, `instruct`",
    "context_en": "English text that goes into the prompt (LLaVA instruction, A-OKVQA question)",
    "preset_lang": "language the source fixed (text already in it, not translated)",
    "context_tgt": "`context_en` in the target language",
    "target": "what the model is trained to produce",
    "image_id": "the source's image id",
    "image_path": "image path relative to the source's image root (`image_roots` in manifest.json)",
    "text_en": "English caption or question",
    "answer_en": "VQA: most common English answer",
    "answers_en": "VQA: all human answers",
    "lang": "target language (mC4 code)",
    "lang_nllb": "NLLB-200 code the text was translated into",
    "text_tgt": "machine translation of `text_en`",
    "answer_tgt": "machine translation of `answer_en`",
    "backtranslation_en": "`text_tgt` translated back into English",
    "status": "`kept` or `rejected`",
    "reject_reason": "first failing filter rule (null when kept)",
    "prompt": "instruction: an English template naming the language, or a translated one (see Recipe)",
}

ENGINE_COUNTER_DOCS = {
    "requested": "non-empty strings asked for (one per row and field)",
    "empty": "empty strings (no model call)",
    "distinct": "distinct (text, language) pairs among them",
    "cache_hits": "distinct strings served by the translation cache",
    "translated": "distinct strings the model translated",
    "truncated": "strings longer than the input limit (cut, flagged)",
    "decoded_tokens": "decoder tokens spent",
    "dedup_factor": "requested / distinct",
    "cache_hit_rate": "cache_hits / distinct",
}

MBLIP_CITATION = """@inproceedings{geigle2024mblip,
  title     = {{mBLIP}: Efficient Bootstrapping of Multilingual Vision-{LLMs}},
  author    = {Geigle, Gregor and Jain, Abhay and Timofte, Radu and Glava{\\v{s}}, Goran},
  booktitle = {Proceedings of the 3rd Workshop on Advances in Language and Vision Research (ALVR)},
  year      = {2024}
}"""
NLLB_CITATION = """@article{nllb2022,
  title   = {No Language Left Behind: Scaling Human-Centered Machine Translation},
  author  = {{NLLB Team} and Costa-juss{\\`a}, Marta R. and Cross, James and {\\c{C}}elebi, Onur and others},
  journal = {arXiv preprint arXiv:2207.04672},
  year    = {2022}
}"""


class SourceCardError(ValueError):
    """A source has no card in data_cards/, or its card lacks a required key."""


# ------------------------------------------------------------------------------------------------
# Source cards and languages
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# Metadata
# ------------------------------------------------------------------------------------------------


def _source_types(stats: dict, metadata: dict) -> dict[str, str]:
    declared = metadata.get("sources") or {}
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


def build_metadata(stats: dict, files: list[dict], metadata: dict, cards: dict[str, dict]) -> dict:
    langs = list(stats.get("languages", {}))
    tasks = sorted({c["task"] for c in cards.values()})
    iso = [iso639(SOURCE_LANGUAGE)] + sorted({iso639(c) for c in langs} - {iso639(SOURCE_LANGUAGE)})
    nllb = [get_language(SOURCE_LANGUAGE).nllb] + sorted(get_language(c).nllb for c in langs if c != SOURCE_LANGUAGE)
    meta = {
        "pretty_name": metadata.get("pretty_name") or DEFAULT_PRETTY_NAME,
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
    return meta


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
    for key, allowed in (("task_categories", HUB_TASK_CATEGORIES), ("size_categories", set(SIZE_CATEGORIES) | {"other"}),
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


# ------------------------------------------------------------------------------------------------
# Body
# ------------------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def render_body(stats: dict, files: list[dict], metadata: dict, cards: dict[str, dict], meta: dict,
                plots: list[str]) -> str:
    t = stats["totals"]
    langs = stats.get("languages", {})
    model = metadata.get("model") or {}
    settings = metadata.get("settings") or {}
    types = _source_types(stats, metadata)
    out: list[str] = []
    add = out.append

    add(f"# {meta['pretty_name']}\n")
    n_targets = len([c for c in langs if c != SOURCE_LANGUAGE])
    add(f"English image captions and visual questions, one language per example in proportion to mC4 (the recipe "
        f"of mBLIP, Geigle et al. 2024): machine-translated into {n_targets} languages and filtered"
        + (", English rows kept in English" if SOURCE_LANGUAGE in langs else "")
        + ". This card is generated from the run's `stats.json` and `manifest.json`.\n")
    add(_table(["records read", "kept", "rejected", "quarantined"],
               [[t["records"], t["kept"], t["rejected"], t["quarantined"]]]) + "\n")
    add("Input records = kept + rejected + quarantined for every source (checked when the shards are written).\n")
    if not t["kept"]:
        add("**No row passed the filter in this run**, so there are no language configs and no default config; "
            "the rejects (with their scores and reasons) are the `rejects` config.\n")

    from pipeline.recipe import render_recipe, render_templates

    add(render_recipe(stats, metadata))
    add("## Layout and configs\n")
    add(_table(["config", "files", "rows"], [
        [c["config_name"], c["data_files"][0]["path"],
         _config_rows(c, stats)] for c in meta["configs"]]) + "\n")
    add("Each config has one split, `train`. Shards are zstd Parquet named `part-00000.parquet`, rows sorted by "
        "`example_id` within a language (rejects too, in `rejects/<lang>/`). `manifest.json` lists every file "
        "with rows, bytes and sha256 and is written last: `mblip verify <dir>` recomputes them.\n")
    add("Columns of the kept and rejected shards:\n")
    add(_table(["column", "type", "meaning"], [
        [f"`{name}`", str(dtype), _column_doc(name)]
        for name, dtype in ROW_SCHEMA.items()]) + "\n")
    add("Quarantine shards hold records the readers could not turn into rows: "
        + ", ".join(f"`{c}`" for c in QUARANTINE_SCHEMA) + ".\n")

    add("## Sources\n")
    rows = []
    for name, s in stats.get("sources", {}).items():
        card = cards[types[name]]
        rows.append([name, card["pretty_name"], card["task"], s["records"], s["kept"], s["rejected"], s["quarantined"],
                     f"[{card['license']}]({card['license_url']})", card["homepage"]])
    add(_table(["source", "dataset", "task", "records", "kept", "rejected", "quarantined", "licence", "homepage"],
               rows) + "\n")
    dropped = [f"{name}: {n:,} {key.replace('_', ' ')}" for name, s in stats.get("sources", {}).items()
               for key, n in s.items() if key not in ("records", "rows", "kept", "rejected", "quarantined")]
    if dropped:
        add("Dropped inside kept records (the record stays; e.g. a blank one of a question's ten answers): "
            + "; ".join(dropped) + ".\n")
    lic = meta["license"]
    add(f"**Licence of this dataset**: `{lic if isinstance(lic, str) else ', '.join(lic)}`, derived from the sources' "
        "licences (the translations are derived from their text):\n")
    for ctype in sorted(set(types.values())):
        add(f"- {cards[ctype]['pretty_name']}: {cards[ctype]['license_text'].strip()}")
    add("")
    model_id = str(model.get("model_id") or "")
    if "nllb" in model_id.lower():
        add("The translations were produced with an NLLB-200 model; Meta releases the NLLB-200 weights under "
            "CC-BY-NC-4.0. Check whether that affects your use of machine-translated output.\n")

    if stats.get("task_languages"):
        from pipeline.task_notes import render_task_tables

        add(render_task_tables(stats, _table))
    add("## Translation\n")
    trans = settings.get("translation") or {}
    add(_table(["setting", "value"], [
        ["model", model.get("model_id")], ["revision", model.get("revision")],
        ["quantisation", model.get("quantization")], ["CTranslate2", model.get("ctranslate2_version")],
        *[[k, v] for k, v in _flatten(trans) if k not in ("model", "device", "device_index", "inter_threads",
                                                          "intra_threads")],
    ]) + "\n")
    assign = settings.get("assignment") or {}
    if assign:
        add(f"Language assignment: mode `{assign.get('mode')}`, seed `{assign.get('seed')}` (a hash of the example id, "
            "so adding data never reshuffles earlier assignments).\n")
    add(f"Config hash `{metadata.get('config_hash')}`; the resolved config is `config.resolved.yaml`.\n")
    proc = stats.get("processing") or {}
    if proc:
        add(f"Translation engine counters, summed over {proc['sidecars']} chunk stats files"
            + (f" ({proc['chunks_without_sidecar']} chunks predate them)" if proc.get("chunks_without_sidecar") else "")
            + ":\n")
        add(_table(["counter", "value", "meaning"], [
            [k, v, ENGINE_COUNTER_DOCS.get(k, "")] for k, v in (proc.get("translation") or {}).items()]) + "\n")
        other = [[k, v] for k, v in proc.items() if k not in ("sidecars", "chunks_without_sidecar", "translation",
                                                                 "templates")]
        if other:
            add(_table(["counter", "value"], other) + "\n")
        templates = proc.get("templates") or {}
        if templates:
            keys = sorted({k for c in templates.values() for k in c})
            add("Instruction templates per language (translated templates kept, and dropped by reason):\n")
            add(_table(["lang", *keys], [[lang, *[c.get(k, 0) for k in keys]] for lang, c in templates.items()]) + "\n")
        if render_templates(stats):
            add(render_templates(stats))

    add("## Filtering\n")
    filt = settings.get("filter") or {}
    if filt:
        add("Rules and thresholds (a rule set to null is off; per-language overrides shown with their language):\n")
        add(_table(["rule", "value"], [[f"`{k}`", v] for k, v in _flatten(filt)]) + "\n")
        if filt.get("backtranslate", True) and filt.get("reverse") == "score":
            add("Meaning check without a second decoding (a departure from decoded back-translation): the reverse "
                "model's log-prob of the English source given the translation, `score_bt_logprob`, and its dual "
                "conditional cross-entropy with the forward score (Junczys-Dowmunt 2018); no `backtranslation_en`. "
                "`filter.reverse: decode` restores decoded back-translations scored by chrF++.\n")
    else:
        add("The filter settings were not recorded in this run's metadata.\n")
    totals: dict[str, int] = {}
    for r in stats.get("reject_reasons", []):
        totals[r["reason"] or "unknown"] = totals.get(r["reason"] or "unknown", 0) + r["rows"]
    if totals:
        add("Rejected rows by reason (first failing rule):\n")
        add(_table(["reason", "rows"], sorted(([k, v] for k, v in totals.items()), key=lambda kv: -kv[1])) + "\n")
    if stats.get("quarantine_reasons"):
        add("Quarantined records by reason:\n")
        add(_table(["source", "field", "reason", "rows"],
                   [[r["source"], r["field"], r["reason"], r["rows"]] for r in stats["quarantine_reasons"]]) + "\n")
    from pipeline.card_web import render_web_sections

    out += render_web_sections(metadata.get("web") or {})

    add("## Languages\n")
    english = langs.get(SOURCE_LANGUAGE)
    if english:
        add(f"English: {100 * english['assigned_share']:.2f}% of the examples (mC4 target "
            f"{100 * english['mc4_target_share']:.2f}%), kept in English: not translated, and exempt from the "
            "checks that only apply to a translation (copy of the source, script, length, language, "
            "back-translation)." + (f" Shares count the rows the run assigned a language; "
                                   f"{sum(s.get('preset', 0) for s in langs.values()):,} rows are in the "
                                   "language their source fixed (ImageNet names, English A-OKVQA, released rows)."
                                   if any(s.get("preset") for s in langs.values()) else "") + "\n")
    else:
        add("English: 0% of the examples (this run's languages leave it out; mBLIP keeps it at its mC4 share, "
            "43.84%: add `en` to `run.languages` or leave the list empty).\n")
    lang_rows = []
    for code in _ordered(langs):
        s = langs[code]
        reasons = "; ".join(f"{k} {v:,}" for k, v in sorted(s["reject_reasons"].items(), key=lambda kv: -kv[1]))
        lang_rows.append([code, iso639(code), s["nllb"], s["name"], s["assigned"], s["kept"], s["rejected"],
                          f"{100 * s['keep_rate']:.1f}%", reasons or "-", f"{100 * s['mc4_target_share']:.2f}%",
                          f"{100 * s['assigned_share']:.2f}%"])
    add(_table(["lang", "ISO 639", "NLLB", "name", "assigned", "kept", "rejected", "keep rate", "rejected by reason",
                "mC4 target", "assigned share"], lang_rows) + "\n")
    score_cols = [c for c in stats.get("scores", {})]
    if score_cols:
        add("Mean scores per language (all assigned rows; empty = not applicable):\n")
        add(_table(["lang", *[score_label(c) for c in score_cols]],
                   [[code, *[langs[code]["mean_scores"].get(c) for c in score_cols]] for code in _ordered(langs)]) + "\n")

    if plots:
        add("## Plots\n")
        for rel in plots:
            add(f"![{Path(rel).stem.replace('_', ' ')}]({rel})\n")

    add("## How to load\n")
    first = next((c["config_name"] for c in meta["configs"] if c["config_name"] not in ("default", "rejects",
                                                                                          "quarantine")), "de")
    add("```python\n"
        "from datasets import load_dataset\n\n"
        f"one = load_dataset(\"<this directory or hub id>\", \"{first}\", split=\"train\")   # one language\n"
        "everything = load_dataset(\"<this directory or hub id>\", split=\"train\")      # default config: all kept rows\n"
        "```\n")
    add("```python\n"
        "import polars as pl\n\n"
        f"rows = pl.scan_parquet(\"data/{first}/*.parquet\")      # or \"data/*/*.parquet\" for every language\n"
        "rejects = pl.read_parquet(\"rejects/*/*.parquet\")\n"
        "```\n")
    add("```python\n"
        "import pyarrow.dataset as ds\n\n"
        f"table = ds.dataset(\"data/{first}\", format=\"parquet\").to_table()\n"
        "```\n")
    add("Images are not included: `image_path` is relative to the source's image root (`image_roots` in "
        "`manifest.json`). `mblip export <dir>` writes the trainer view (prompt, target) and the mBLIP JSON format.\n")

    add("## Limitations\n")
    add("All target-language text is machine translation of English and inherits its errors; the filter removes "
        "detected failures (wrong language or script, copies, repetition loops, lost numbers, low back-translation "
        "agreement) but not every mistranslation. Low-resource directions are noisier. Captions describe COCO "
        "images and their biases.\n")

    add("## Citation\n")
    add("```bibtex\n" + MBLIP_CITATION + "\n" + NLLB_CITATION + "\n"
        + "\n".join(cards[t]["citation"].strip() for t in sorted(set(types.values()))) + "\n```\n")
    return "\n".join(out)


def _column_doc(name: str) -> str:
    if name in COLUMN_DOCS:
        return COLUMN_DOCS[name]
    if name.startswith("score_"):
        return score_label(name)
    if name.startswith("sig_"):
        return "filter signal (pipeline/filters/quality.py)"
    return "see pipeline/schema.py"


def _ordered(langs: dict) -> list[str]:
    return sorted(langs, key=lambda c: (-langs[c].get("mc4_target_share", 0.0), c))


def _config_rows(cfg: dict, stats: dict) -> int:
    name = cfg["config_name"]
    if name == "default":
        return stats["totals"]["kept"]
    if name == "rejects":
        return stats["totals"]["rejected"]
    if name == "quarantine":
        return stats["totals"]["quarantined"]
    return stats["languages"][name]["kept"]


def render_card(stats: dict, files: list[dict], metadata: dict, plots: list[str] = (),
                cards_dir: str | Path | None = None) -> str:
    """README.md text: YAML metadata (validated) and the body."""
    types = _source_types(stats, metadata)
    cards = {t: load_source_card(t, cards_dir) for t in sorted(set(types.values()))}
    meta = build_metadata(stats, files, metadata, cards)
    errors = validate_metadata(meta)
    if errors:
        raise ValueError("generated card metadata breaks the Hub rules: " + "; ".join(errors))
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=10_000)
    return f"---\n{front}---\n\n" + render_body(stats, files, metadata, cards, meta, list(plots))


def render_card_files(stats: dict, files: list[dict], metadata: dict, cards_dir: str | Path | None = None,
                      plots: bool = True) -> dict[str, str | bytes]:
    """Relative path -> content for the card and its plots."""
    figures = render_plots(stats, (metadata.get("settings") or {}).get("filter")) if plots else {}
    out: dict[str, str | bytes] = dict(figures)
    out[CARD_FILE] = render_card(stats, files, metadata, list(figures), cards_dir)
    return out
