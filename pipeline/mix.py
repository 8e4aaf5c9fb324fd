"""The task mix: per-task shares and caps, decided by a hash of the example id.

mBLIP's mix (Geigle et al. 2024, Table 1) fixes how many examples each task contributes. Here a
task's ``share`` keeps the rows whose mix hash (a uniform number from ``example_id`` and the mix
seed, like the language assignment in ``pipeline/assign.py``) is below it, and a ``cap`` lowers that
threshold to the hash of the cap-th row of the task. A row's hash never depends on other rows, so
adding a source never changes whether earlier rows pass a share; a cap keeps the rows of lowest
hash, so a new source of the *same capped task* can only swap in rows of lower hash (up to the cap),
and never moves rows of other tasks. Rows left out are not translated: they are written to the
rejects with the reason ``mix_share`` or ``mix_cap``, so records = kept + rejected + quarantined holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import polars as pl

from pipeline.assign import unit_hash
from pipeline.schema import STATUS_REJECTED

REASON_SHARE = "mix_share"
REASON_CAP = "mix_cap"


def mix_hash(example_id: str, seed: int) -> float:
    return unit_hash(example_id, f"mix:{seed}")


def mix_thresholds(task_ids: Iterable[tuple[str, str]], rules: dict[str, dict], seed: int) -> dict[str, list[float]]:
    """Task -> [share, cap threshold] from the (task, example_id) pairs of every source of the run.

    ``rules``: task -> {"share": 0..1, "cap": rows or None}. Tasks without a rule are not listed
    (all their rows pass). A row passes when its hash is below both thresholds.
    """
    hashes: dict[str, list[float]] = {task: [] for task in rules}
    for task, example_id in task_ids:
        if task in hashes:
            hashes[task].append(mix_hash(example_id, seed))
    out = {}
    for task, rule in rules.items():
        share = float(rule.get("share", 1.0))
        cap = rule.get("cap")
        passing = sorted(h for h in hashes[task] if h < share)
        threshold = passing[cap] if cap is not None and cap < len(passing) else share
        out[task] = [share, threshold]
    return out


def thresholds_from_chunks(chunks: Iterable[str], rules: dict[str, dict], seed: int) -> dict[str, list[float]]:
    """``mix_thresholds`` over ingested English chunks (only their ``task`` and ``example_id`` are read)."""
    if not rules:
        return {}
    pairs: list[tuple[str, str]] = []
    for chunk in chunks:
        frame = pl.read_parquet(chunk, columns=["task", "example_id"])
        pairs += list(zip(frame["task"].to_list(), frame["example_id"].to_list()))
    return mix_thresholds(pairs, rules, seed)


def mix_key(translation_key: str, thresholds: dict[str, list[float]], seed: int) -> str:
    """The translation key extended by the mix (a mix change reprocesses the chunks it touches)."""
    if not thresholds:
        return translation_key
    blob = json.dumps({"key": translation_key, "mix": thresholds, "seed": seed}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def mixed_out(frame: pl.DataFrame, thresholds: dict[str, list[float]], seed: int) -> list[str | None]:
    """Per row: ``mix_share``/``mix_cap`` when the mix leaves it out, else None."""
    reasons: list[str | None] = []
    for task, example_id in zip(frame["task"].to_list(), frame["example_id"].to_list()):
        rule = thresholds.get(task)
        if rule is None:
            reasons.append(None)
            continue
        h = mix_hash(example_id, seed)
        reasons.append(REASON_SHARE if h >= rule[0] else REASON_CAP if h >= rule[1] else None)
    return reasons


def mark_mixed_out(frame: pl.DataFrame, reasons: list[str | None]) -> pl.DataFrame:
    """Rows left out by the mix, as rejected rows (nothing translated)."""
    return frame.with_columns(
        pl.lit(STATUS_REJECTED).alias("status"), pl.Series("reject_reason", reasons, dtype=pl.String)
    )
