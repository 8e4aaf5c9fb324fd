"""The card body, one function per section: each takes the card's inputs and returns its Markdown blocks.

``SECTIONS`` lists them in card order; ``pipeline/card/render.py`` joins their blocks with newlines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.card.metadata import iso639, source_types
from pipeline.card.plots import score_label
from pipeline.card.readers import render_reader_notes
from pipeline.card.task_notes import render_task_tables
from pipeline.card.text import ENGINE_COUNTER_DOCS, MBLIP_CITATION, NLLB_CITATION, column_doc, flatten, table
from pipeline.card.thresholds import THRESHOLD_PLOTS, render_threshold_section
from pipeline.card.web import render_web_sections
from pipeline.config import FilterConfig
from pipeline.languages import SOURCE_LANGUAGE
from pipeline.recipe import render_recipe, render_templates
from pipeline.run_record import RunRecord
from pipeline.schema import QUARANTINE_SCHEMA, ROW_SCHEMA


@dataclass(frozen=True)
class CardInputs:
    """What every section may read: stats.json, the shard list, the run record, the source cards
    (by source type), the front matter, the plot paths and the data browser written into the output."""

    stats: dict
    files: list[dict]
    record: RunRecord
    cards: dict[str, dict]
    meta: dict
    plots: tuple[str, ...] = ()
    browse: dict | None = None  # {"index", "sample", "seed", "languages"} of OUT/browse (pipeline/browse/record.py)

    @property
    def types(self) -> dict[str, str]:
        return source_types(self.stats, self.record)


def intro(c: CardInputs) -> list[str]:
    t = c.stats["totals"]
    langs = c.stats.get("languages", {})
    n_targets = len([code for code in langs if code != SOURCE_LANGUAGE])
    out = [f"# {c.meta['pretty_name']}\n",
           f"English image captions and visual questions, one language per example in proportion to mC4 (the recipe "
           f"of mBLIP, Geigle et al. 2024): machine-translated into {n_targets} languages and filtered"
           + (", English rows kept in English" if SOURCE_LANGUAGE in langs else "")
           + ". This card is generated from the run's `stats.json` and `manifest.json`.\n",
           table(["records read", "kept", "rejected", "quarantined"],
                 [[t["records"], t["kept"], t["rejected"], t["quarantined"]]]) + "\n",
           "Input records = kept + rejected + quarantined for every source (checked when the shards are written).\n"]
    if not t["kept"]:
        out.append("**No row passed the filter in this run**, so there are no language configs and no default "
                   "config; the rejects (with their scores and reasons) are the `rejects` config.\n")
    return out


def browse(c: CardInputs) -> list[str]:
    if not c.browse:
        return []
    sample = c.browse.get("sample")
    how = (f"a seeded random sample (seed {c.browse.get('seed')}) of at most {sample:,} rows per language and task"
           if sample else "every row")
    langs = c.browse.get("languages") or []
    shown = ", ".join(langs) if len(langs) <= 12 else f"{len(langs)} languages"
    return ["## Browse the rows\n",
            f"[{c.browse['index']}]({c.browse['index']}) opens from disk (no server, nothing loaded from the network): "
            f"one page per language and task ({shown or 'every language'}) with {how}, kept and "
            "rejected, each with its image, prompt, target, English source, translation, back-translation, every "
            "score, status and reject reason; filters by status, reason and task. For languages nobody on a team "
            "reads, the back-translation beside the image is how a person checks the data. Written by `mblip browse "
            "<dir>`; a run that changes the rows drops this link until the site is built again.\n"]


def recipe(c: CardInputs) -> list[str]:
    return [render_recipe(c.stats, c.record.recipe)]


def layout(c: CardInputs) -> list[str]:
    return [
        "## Layout and configs\n",
        table(["config", "files", "rows"], [
            [cfg["config_name"], cfg["data_files"][0]["path"], _config_rows(cfg, c.stats)]
            for cfg in c.meta["configs"]]) + "\n",
        "Each config has one split, `train`. Shards are zstd Parquet named `part-00000.parquet`, rows sorted by "
        "`example_id` within a language (rejects too, in `rejects/<lang>/`). `manifest.json` lists every file "
        "with rows, bytes and sha256 and is written last: `mblip verify <dir>` recomputes them.\n",
        "Columns of the kept and rejected shards:\n",
        table(["column", "type", "meaning"], [
            [f"`{name}`", str(dtype), column_doc(name)] for name, dtype in ROW_SCHEMA.items()]) + "\n",
        "Quarantine shards hold records the readers could not turn into rows: "
        + ", ".join(f"`{col}`" for col in QUARANTINE_SCHEMA) + ".\n",
    ]


def sources(c: CardInputs) -> list[str]:
    types, cards = c.types, c.cards
    rows = []
    for name, s in c.stats.get("sources", {}).items():
        card = cards[types[name]]
        rows.append([name, card["pretty_name"], card["task"], s["records"], s["kept"], s["rejected"], s["quarantined"],
                     f"[{card['license']}]({card['license_url']})", card["homepage"]])
    out = ["## Sources\n",
           table(["source", "dataset", "task", "records", "kept", "rejected", "quarantined", "licence", "homepage"],
                 rows) + "\n"]
    dropped = [f"{name}: {n:,} {key.replace('_', ' ')}" for name, s in c.stats.get("sources", {}).items()
               for key, n in s.items() if key not in ("records", "rows", "kept", "rejected", "quarantined")]
    if dropped:
        out.append("Dropped inside kept records (the record stays; e.g. a blank one of a question's ten answers): "
                   + "; ".join(dropped) + ".\n")
    out += render_reader_notes(c.record.web, c.stats.get("quarantine_reasons") or [])
    lic = c.meta["license"]
    out.append(f"**Licence of this dataset**: `{lic if isinstance(lic, str) else ', '.join(lic)}`, derived from the "
               "sources' licences (the translations are derived from their text):\n")
    out += [f"- {cards[ctype]['pretty_name']}: {cards[ctype]['license_text'].strip()}"
            for ctype in sorted(set(types.values()))]
    out.append("")
    if "nllb" in str(c.record.model.get("model_id") or "").lower():
        out.append("The translations were produced with an NLLB-200 model; Meta releases the NLLB-200 weights under "
                   "CC-BY-NC-4.0. Check whether that affects your use of machine-translated output.\n")
    return out


def tasks(c: CardInputs) -> list[str]:
    if not c.stats.get("task_languages"):
        return []

    return [render_task_tables(c.stats, table)]


def translation(c: CardInputs) -> list[str]:
    model, settings = c.record.model, c.record.settings
    trans = settings.get("translation") or {}
    out = ["## Translation\n", table(["setting", "value"], [
        ["model", model.get("model_id")], ["revision", model.get("revision")],
        ["quantisation", model.get("quantization")], ["CTranslate2", model.get("ctranslate2_version")],
        *[[k, v] for k, v in flatten(trans) if k not in ("model", "device", "device_index", "inter_threads",
                                                          "intra_threads")],
    ]) + "\n"]
    assign = settings.get("assignment") or {}
    if assign:
        out.append(f"Language assignment: mode `{assign.get('mode')}`, seed `{assign.get('seed')}` (a hash of the "
                   "example id, so adding data never reshuffles earlier assignments).\n")
    out.append(f"Config hash `{c.record.config_hash}`; the resolved config is `config.resolved.yaml`.\n")
    return out + engine_counters(c)


def engine_counters(c: CardInputs) -> list[str]:
    proc = c.stats.get("processing") or {}
    if not proc:
        return []
    out = [f"Translation engine counters, summed over {proc['sidecars']} chunk stats files"
           + (f" ({proc['chunks_without_sidecar']} chunks predate them)" if proc.get("chunks_without_sidecar") else "")
           + ":\n",
           table(["counter", "value", "meaning"], [
               [k, v, ENGINE_COUNTER_DOCS.get(k, "")] for k, v in (proc.get("translation") or {}).items()]) + "\n"]
    other = [[k, v] for k, v in proc.items() if k not in ("sidecars", "chunks_without_sidecar", "translation",
                                                             "templates")]
    if other:
        out.append(table(["counter", "value"], other) + "\n")
    templates = proc.get("templates") or {}
    if templates:
        keys = sorted({k for counts in templates.values() for k in counts})
        out.append("Instruction templates per language (translated templates kept, and dropped by reason):\n")
        out.append(table(["lang", *keys], [[lang, *[counts.get(k, 0) for k in keys]]
                                           for lang, counts in templates.items()]) + "\n")
    if render_templates(c.stats):
        out.append(render_templates(c.stats))
    return out


def margin_note(filt: dict) -> str:
    """How many other sources the source margins of this run were scored against (``filter.contrasts``)."""
    try:
        contrasts = FilterConfig.model_validate(filt).margin_contrasts()
    except ValueError:
        return ""  # settings of an older run that today's config does not read
    if not contrasts:
        return ("Source margins (`score_fwd_margin`, `score_sentence_margin`) were not computed: no margin rule was "
                "on, and each contrast source costs one scoring pass; `filter.contrasts: 4` stores them.\n")
    return (f"Source margins: each translation's forward score under its own source minus the best of {contrasts} "
            f"other English sources from a fixed pool (`filter.contrasts`).\n")


def filtering(c: CardInputs) -> list[str]:
    out = ["## Filtering\n"]
    filt = c.record.settings.get("filter") or {}
    if filt:
        out.append("Rules and thresholds (a rule set to null is off; per-language overrides shown with their "
                   "language):\n")
        out.append(table(["rule", "value"], [[f"`{k}`", v] for k, v in flatten(filt)]) + "\n")
        if filt.get("backtranslate", True) and filt.get("reverse") == "score":
            out.append("Meaning check without a second decoding (a departure from decoded back-translation): the "
                       "reverse model's log-prob of the English source given the translation, `score_bt_logprob`, "
                       "and its dual conditional cross-entropy with the forward score (Junczys-Dowmunt 2018); no "
                       "`backtranslation_en`. `filter.reverse: decode` restores decoded back-translations scored by "
                       "chrF++.\n")
        note = margin_note(filt) if filt.get("backtranslate", True) else ""
        if note:
            out.append(note)
    else:
        out.append("The filter settings were not recorded in this run's metadata.\n")
    totals: dict[str, int] = {}
    for r in c.stats.get("reject_reasons", []):
        totals[r["reason"] or "unknown"] = totals.get(r["reason"] or "unknown", 0) + r["rows"]
    if totals:
        out.append("Rejected rows by reason (first failing rule):\n")
        out.append(table(["reason", "rows"], sorted(([k, v] for k, v in totals.items()), key=lambda kv: -kv[1])) + "\n")
    if c.stats.get("quarantine_reasons"):
        out.append("Quarantined records by reason:\n")
        out.append(table(["source", "field", "reason", "rows"],
                         [[r["source"], r["field"], r["reason"], r["rows"]] for r in c.stats["quarantine_reasons"]])
                   + "\n")
    return out


def thresholds(c: CardInputs) -> list[str]:
    return render_threshold_section(c.stats, c.record, c.plots)


def web(c: CardInputs) -> list[str]:
    return render_web_sections(c.record.web)


def languages(c: CardInputs) -> list[str]:
    langs = c.stats.get("languages", {})
    out = ["## Languages\n"]
    english = langs.get(SOURCE_LANGUAGE)
    if english:
        preset = sum(s.get("preset", 0) for s in langs.values())
        out.append(f"English: {100 * english['assigned_share']:.2f}% of the examples (mC4 target "
                   f"{100 * english['mc4_target_share']:.2f}%), kept in English: not translated, and exempt from the "
                   "checks that only apply to a translation (copy of the source, script, length, language, "
                   "back-translation)." + (f" Shares count the rows the run assigned a language; {preset:,} rows are "
                                           "in the language their source fixed (ImageNet names, English A-OKVQA, "
                                           "released rows)." if any(s.get("preset") for s in langs.values()) else "")
                   + "\n")
    else:
        out.append("English: 0% of the examples (this run's languages leave it out; mBLIP keeps it at its mC4 share, "
                   "43.84%: add `en` to `run.languages` or leave the list empty).\n")
    lang_rows = []
    for code in _ordered(langs):
        s = langs[code]
        reasons = "; ".join(f"{k} {v:,}" for k, v in sorted(s["reject_reasons"].items(), key=lambda kv: -kv[1]))
        lang_rows.append([code, iso639(code), s["nllb"], s["name"], s["assigned"], s["kept"], s["rejected"],
                          f"{100 * s['keep_rate']:.1f}%", reasons or "-", f"{100 * s['mc4_target_share']:.2f}%",
                          f"{100 * s['assigned_share']:.2f}%"])
    out.append(table(["lang", "ISO 639", "NLLB", "name", "assigned", "kept", "rejected", "keep rate",
                      "rejected by reason", "mC4 target", "assigned share"], lang_rows) + "\n")
    score_cols = list(c.stats.get("scores", {}))
    if score_cols:
        out.append("Mean scores per language (all assigned rows; empty = not applicable):\n")
        out.append(table(["lang", *[score_label(col) for col in score_cols]],
                         [[code, *[langs[code]["mean_scores"].get(col) for col in score_cols]]
                          for code in _ordered(langs)]) + "\n")
    return out


def plots(c: CardInputs) -> list[str]:
    figures = [rel for rel in c.plots if not rel.startswith(THRESHOLD_PLOTS)]  # those are in their own section
    if not figures:
        return []
    return ["## Plots\n", *[f"![{Path(rel).stem.replace('_', ' ')}]({rel})\n" for rel in figures]]


def how_to_load(c: CardInputs) -> list[str]:
    first = next((cfg["config_name"] for cfg in c.meta["configs"]
                  if cfg["config_name"] not in ("default", "rejects", "quarantine")), "de")
    return [
        "## How to load\n",
        "```python\n"
        "from datasets import load_dataset\n\n"
        f"one = load_dataset(\"<this directory or hub id>\", \"{first}\", split=\"train\")   # one language\n"
        "everything = load_dataset(\"<this directory or hub id>\", split=\"train\")"
        "      # default config: all kept rows\n"
        "```\n",
        "```python\n"
        "import polars as pl\n\n"
        f"rows = pl.scan_parquet(\"data/{first}/*.parquet\")      # or \"data/*/*.parquet\" for every language\n"
        "rejects = pl.read_parquet(\"rejects/*/*.parquet\")\n"
        "```\n",
        "```python\n"
        "import pyarrow.dataset as ds\n\n"
        f"table = ds.dataset(\"data/{first}\", format=\"parquet\").to_table()\n"
        "```\n",
        "Images are not included: `image_path` is relative to the source's image root (`image_roots` in "
        "`manifest.json`). `mblip export <dir>` writes the trainer view (prompt, target) and the mBLIP JSON format.\n",
    ]


def limitations(c: CardInputs) -> list[str]:
    return ["## Limitations\n",
            "All target-language text is machine translation of English and inherits its errors; the filter removes "
            "detected failures (wrong language or script, copies, English left in the text, repetition loops and "
            "stutters, lost numbers, sentences the source does not explain, low back-translation agreement) "
            "but not every mistranslation. Low-resource directions are noisier. "
            "Captions describe COCO images and their biases.\n"]


def citation(c: CardInputs) -> list[str]:
    return ["## Citation\n",
            "```bibtex\n" + MBLIP_CITATION + "\n" + NLLB_CITATION + "\n"
            + "\n".join(c.cards[t]["citation"].strip() for t in sorted(set(c.types.values()))) + "\n```\n"]


SECTIONS: tuple[Callable[[CardInputs], list[str]], ...] = (
    intro, browse, recipe, layout, sources, tasks, translation, filtering, thresholds, web, languages, plots,
    how_to_load, limitations, citation,
)


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
