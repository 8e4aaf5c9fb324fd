"""Card sections for the web sources: noun-phrase sampling, image fetching and matching (from run stats)."""

from __future__ import annotations

PAPER_CAPTIONS = 2_273_005  # mBLIP's web CapFilt examples after sampling and download (arXiv 2307.06930)
PAPER_MATCHING = 600_000
WEB_KEYS = ("sampling", "fetch", "matching", "index")  # a web reader's statistics (other readers': readers.py)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_web_sections(web: dict[str, dict]) -> list[str]:
    """Markdown blocks for ``metadata["web"]`` (source name -> its reader's statistics); empty without any."""
    web = {name: s for name, s in web.items() if any(k in s for k in WEB_KEYS)}
    if not web:
        return []
    out = ["## Web captions and matching\n"]
    for name, s in sorted(web.items()):
        sampling = s.get("sampling") or {}
        if sampling and not s.get("matching"):  # a matching source shares its caption source's sampling
            out.append(f"**{name}**: noun-phrase sampling as mBLIP (spaCy noun chunks, lowercased, spaCy's English "
                       f"stopword list instead of NLTK's, which needs a corpus download), phrases with >= "
                       f"{sampling['min_captions']} captions, at most {sampling['max_captions']} each drawn with "
                       f"seed {sampling['seed']} (hash-stable; the reference draw was unseeded).\n")
            out.append(_table(["captions parsed", "phrases", "phrases kept", "phrases capped", "captions selected",
                               "paper (after download)"],
                              [[sampling.get("captions_parsed"), sampling["phrases_total"], sampling["phrases_kept"],
                                sampling["phrases_capped"], sampling["captions_selected"],
                                f"{PAPER_CAPTIONS:,}"]]) + "\n")
            out.append("Kept phrases by number of captions (before the cap):\n")
            out.append(_table(["captions per phrase", "phrases"],
                              [[k, v] for k, v in sampling["captions_per_phrase"].items()]) + "\n")
        fetch = s.get("fetch") or {}
        if fetch:
            out.append(f"Images (img2dataset, border resize to 256, smaller images untouched): {fetch['success']} of "
                       f"{fetch['requested']} URLs available, {fetch['failed']} failed.\n")
            if fetch.get("reasons"):
                out.append(_table(["failure", "URLs"], sorted(([k, v] for k, v in fetch["reasons"].items()),
                                                             key=lambda kv: -kv[1])) + "\n")
        match = s.get("matching") or {}
        if match:
            out.append(f"**{name}**: image-caption matching, {match.get('pool')} pool images (paper: "
                       f"{PAPER_MATCHING:,}), CLIP `{match.get('model')}`, L2-normalised embeddings (cosine; the "
                       f"reference ranked raw vectors by L2), k = {match.get('k')}, seed {match.get('seed')}. "
                       f"Index: {(s.get('index') or {}).get('kind', '-')}"
                       f" {_params(s.get('index') or {})}.\n")
            out.append(_table(["positives", "negatives", "negatives whose first candidate was replaced"],
                              [[match["positives"], match["negatives"], match.get("replaced_identical", 0)]]) + "\n")
            kinds = match.get("kinds") or {}
            if kinds:
                out.append("Negative captions by candidate (drawn uniformly; a candidate equal to the own caption "
                           "after normalisation, or beyond the pool, is replaced by the next):\n")
                out.append(_table(["candidate", "negatives"], [[k, v] for k, v in kinds.items()]) + "\n")
    return out


def _params(info: dict) -> str:
    keys = [k for k in info if k not in ("kind",)]
    return "(" + ", ".join(f"{k} {info[k]}" for k in keys) + ")" if keys else ""
