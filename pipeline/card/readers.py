"""Card lines from the readers' own statistics (the run record's per-source reader stats): how the
Babel-ImageNet label keys mapped to project languages, and which rows were left out because their image is
a POPE evaluation image."""

from __future__ import annotations

from pipeline.ingest.imagenet import LABEL_STATS
from pipeline.ingest.pope import POPE_STATS, REASON_POPE_IMAGE

SHOWN_KEYS = 40  # unmapped label keys listed by name; the rest counted


def render_reader_notes(readers: dict[str, dict], quarantine_reasons: list[dict]) -> list[str]:
    """Markdown blocks for every source whose reader recorded label-key or POPE statistics (``readers``:
    source -> its reader's statistics; ``quarantine_reasons``: stats.json's, for the rows POPE left out)."""
    out: list[str] = []
    for name, s in sorted(readers.items()):
        labels = s.get(LABEL_STATS)
        if labels:
            out.append(_label_keys(name, labels))
        pope = s.get(POPE_STATS)
        if pope:
            excluded = sum(r["rows"] for r in quarantine_reasons
                           if r["source"] == name and str(r["reason"]).startswith(REASON_POPE_IMAGE))
            out.append(_pope(name, pope, excluded))
    return out


def _label_keys(name: str, labels: dict) -> str:
    mapped = labels.get("mapped") or {}
    renamed = [f"{key} -> `{code}`" for code, key in sorted(mapped.items()) if key.upper() != code.upper()]
    unmapped = labels.get("unmapped") or []
    shown = ", ".join(f"`{k}`" for k in unmapped[:SHOWN_KEYS]) + (f" and {len(unmapped) - SHOWN_KEYS} more"
                                                                  if len(unmapped) > SHOWN_KEYS else "")
    text = (f"**{name}**: the Babel-ImageNet label file has {labels['keys']} language keys; {len(mapped)} map to "
            f"project languages as the reference maps them (the upper-cased code"
            + (f"; legacy codes: {', '.join(renamed)}" if renamed else "") + ")"
            + (f", English (`{labels['english']}`) replaced by the English class names as the reference does"
               if labels.get("english") else "")
            + f". {len(unmapped)} keys map to no project language and are not used"
            + (f": {shown}" if unmapped else "") + ".")
    if labels.get("not_selected"):
        text += f" Left out by the source's `languages`: {', '.join(labels['not_selected'])}."
    return text + "\n"


def _pope(name: str, pope: dict, excluded: int) -> str:
    if not pope.get("enabled", True):
        return (f"**{name}**: POPE images are not excluded (`exclude_pope_images: false`): rows showing a POPE "
                "evaluation image may be trained on, so POPE scores are not zero-shot.\n")
    if not pope.get("files"):
        return (f"**{name}**: no POPE annotation files given (`pope`), so nothing was excluded; rows whose COCO "
                "image is a POPE evaluation image may be trained on.\n")
    return (f"**{name}**: {excluded:,} records left out because their COCO image is one of the "
            f"{pope['images']:,} POPE evaluation images (from {pope['files']} POPE annotation files; quarantined "
            "with reason `pope_image`), so POPE stays zero-shot.\n")
