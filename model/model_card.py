"""The exported model's card: ``README.md`` with the Hub's model metadata, usage, and the evaluation table.

Generated from run artifacts only (the checkpoint's ``config.yaml`` and ``state.json``, the training data's
manifest when it is still there, ``mblip eval`` result files), never typed by hand. Metadata (the Hub's
model card fields, as ``huggingface_hub.ModelCardData`` names them): ``library_name: transformers``,
``pipeline_tag: image-to-text``, ``base_model`` (the BLIP-2 checkpoint and the LLM, when they are Hub ids),
``language`` (the languages trained on, ISO 639-1 where one exists), ``license``, ``datasets`` (Hub ids of the
training data, given by the user: a local output has none), ``tags``, and ``model-index`` results for the
evaluation table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from model.checkpoint import CONFIG_FILE, read_meta
from model.config import load_config
from model.evaluate.report import is_result, render_markdown
from pipeline.card.metadata import iso639
from pipeline.io import read_json

CARD_FILE = "README.md"
PIPELINE_TAG = "image-to-text"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name, not a local path


def hub_ids(*sources: str) -> list[str]:
    """The sources that are Hub ids (``owner/name``) and not local folders."""
    return [s for s in sources if HUB_ID.match(s) and not Path(s).exists()]


def training_languages(cfg) -> list[str]:
    """Project codes trained on: ``data.languages``, else the kept languages of the training data's manifest."""
    if cfg.data.languages:
        return sorted(cfg.data.languages)
    manifest = read_json(Path(cfg.data.manifest or "") / "manifest.json") if cfg.data.manifest else None
    files = manifest.get("files", []) if isinstance(manifest, dict) else []
    return sorted({f.get("lang") for f in files if f.get("split") == "kept" and f.get("lang")})


def model_index(name: str, results: list[dict]) -> list[dict]:
    """``model-index`` (the Hub's evaluation results metadata): one result per benchmark, its mean score."""
    entries = []
    for result in results:
        if result.get("mean") is None:
            continue
        entries.append({"task": {"type": PIPELINE_TAG},
                        "dataset": {"name": result.get("title", result["benchmark"]), "type": result["benchmark"]},
                        "metrics": [{"type": result["metric"], "value": round(float(result["mean"]), 4),
                                     "name": f"{result['metric']} (mean over {len(result.get('mean_over') or [])} "
                                             "languages)"}]})
    return [{"name": name, "results": entries}] if entries else []


def render_model_card(checkpoint: str | Path, *, eval_results: list[dict] = (), license: str = "other",
                      datasets: list[str] = (), name: str | None = None, paper: dict | None = None) -> str:
    """The README.md of a model exported from ``checkpoint``; its evaluation table is ``mblip eval-report``'s
    (with ``paper``, a ``paper.load_paper_file`` table, the paper's numbers beside the scores)."""
    checkpoint = Path(checkpoint)
    cfg = load_config(checkpoint / CONFIG_FILE)
    meta_state = read_meta(checkpoint)
    langs = training_languages(cfg)
    name = name or Path(cfg.train.output_dir).name or "mblip"
    meta = {
        "library_name": "transformers",
        "pipeline_tag": PIPELINE_TAG,
        "base_model": hub_ids(cfg.model.blip2, cfg.model.llm) or None,
        "language": sorted({iso639(code) for code in langs}) or None,
        "license": license,
        "datasets": list(datasets) or None,
        "tags": ["mblip", "blip-2", "multilingual", "image-captioning", "visual-question-answering"],
        "model-index": model_index(name, list(eval_results)) or None,
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    lines = [f"# {name}", "",
             f"A BLIP-2 vision encoder and Q-Former re-aligned to the multilingual LLM `{cfg.model.llm}` with "
             "LoRA, mBLIP-style (Geigle et al., *mBLIP: Efficient Bootstrapping of Multilingual Vision-LLMs*, "
             "ALVR 2024), exported by `mblip export-model` as a plain `Blip2ForConditionalGeneration` with its "
             "`Blip2Processor` (LoRA merged).", "",
             "## Training", "",
             f"- vision encoder and Q-Former: `{cfg.model.blip2}`; LLM: `{cfg.model.llm}`",
             f"- stage `{cfg.train.stage}`, {meta_state['step']} optimizer steps; languages: "
             f"{', '.join(langs) or 'not recorded'}",
             f"- training data: {', '.join(f'`{d}`' for d in datasets) or 'a local `mblip generate` output'}", "",
             "## Usage", "", "```python", *USAGE.format(repo=name).splitlines(), "```", "",
             "With this package: `mblip caption photo.jpg --lang de --model DIR`, `mblip ask photo.jpg "
             "\"Was ist das?\" --lang de --model DIR`.", ""]
    if eval_results:
        lines += ["## Evaluation", "", "Scores of `mblip eval` on the benchmarks' official files"
                  + (", next to the paper's numbers." if paper is not None else "."), "",
                  render_markdown(list(eval_results), paper), ""]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + "\n".join(lines)


USAGE = '''from PIL import Image
from transformers import Blip2ForConditionalGeneration, Blip2Processor

model = Blip2ForConditionalGeneration.from_pretrained("{repo}")
processor = Blip2Processor.from_pretrained("{repo}")
inputs = processor(images=Image.open("photo.jpg"), text="Caption the image in German.", return_tensors="pt")
print(processor.batch_decode(model.generate(**inputs, num_beams=5, max_new_tokens=40), skip_special_tokens=True))'''


def read_eval_results(paths: list[str | Path]) -> list[dict]:
    """``mblip eval --out`` files; one that is not such a result is an error naming it."""
    results = []
    for path in paths:
        try:
            result = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"--eval {path}: not a readable JSON file ({e})") from e
        if not is_result(result):
            raise ValueError(f"--eval {path}: not an `mblip eval` result (needs benchmark, metric, languages)")
        results.append(result)
    return results
