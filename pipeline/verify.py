"""``mblip verify OUT``: recompute every checksum and row count the manifest certifies.

Problems (non-zero exit): no manifest; a certified file missing, of another size, with another
sha256, unreadable, or with another row count; any file in ``data/``, ``rejects/`` or ``quarantine/``
that the manifest does not list (a `datasets` config would pick up a Parquet one; any other is not part
of what the manifest certifies); totals that do not add up. Warnings: temporary files of a killed write
(invisible to readers, removed by the next run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.card.metadata import CARD_FILE, split_front_matter, validate_metadata
from pipeline.io import outside_output, sha256_file
from pipeline.output_dir import MANIFEST
from pipeline.outputs.shards import SHARD_DIRS, SPLIT_KEPT, SPLIT_QUARANTINE, SPLIT_REJECTED
from pipeline.outputs.stats import STATS
from pipeline.schema import SCHEMA_VERSION

SOURCE_COUNTS = ("records", "rows", "quarantined", "kept", "rejected")
TOTAL_KEYS = {SPLIT_KEPT: "kept", SPLIT_REJECTED: "rejected", SPLIT_QUARANTINE: "quarantined"}


@dataclass
class VerifyReport:
    out_dir: Path
    checked: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


def verify_output(out_dir: str | Path) -> VerifyReport:
    out_dir = Path(out_dir)
    report = VerifyReport(out_dir)
    manifest_path = out_dir / MANIFEST
    if not manifest_path.is_file():
        report.problems.append(f"{manifest_path}: missing (the run did not finish, or this is not an output root)")
        return report
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        report.problems.append(f"{manifest_path}: not valid JSON ({e})")
        return report
    if not isinstance(manifest, dict):
        report.problems.append(f"{manifest_path}: expected a JSON object, got {type(manifest).__name__}")
        return report
    if manifest.get("schema_version") != SCHEMA_VERSION:
        report.warnings.append(f"schema_version {manifest.get('schema_version')} != this code's {SCHEMA_VERSION}")

    listed = set()
    sums = {split: 0 for split in TOTAL_KEYS}
    for entry in _valid_entries(out_dir, manifest, "files", report):
        listed.add(entry["path"])
        rows = _check_file(out_dir, entry, report, count_rows=True)
        if rows is not None and entry.get("split") in sums:
            sums[entry["split"]] += rows
    for entry in _valid_entries(out_dir, manifest, "meta_files", report):
        listed.add(entry["path"])
        _check_file(out_dir, entry, report, count_rows=False)

    totals = manifest.get("totals")
    totals = {} if totals is None else totals
    if not isinstance(totals, dict):
        report.problems.append(f"{MANIFEST}: totals is a {type(totals).__name__}, not an object")
        totals = {}
    for split, key in TOTAL_KEYS.items():
        if key in totals and totals[key] != sums[split]:
            report.problems.append(f"totals.{key} is {totals[key]} but the {split} shards hold {sums[split]} rows")
    stats_path = out_dir / STATS
    stats = _read_json_object(stats_path, report) if stats_path.is_file() else None
    if stats is not None:
        if totals and stats.get("totals") != totals:
            report.problems.append(f"{STATS} totals {stats.get('totals')} differ from the manifest's {totals}")
        sources = stats.get("sources") or {}
        if not isinstance(sources, dict):
            report.problems.append(f"{STATS}: sources is a {type(sources).__name__}, not an object")
            sources = {}
        for name, s in sources.items():
            if not isinstance(s, dict) or not all(isinstance(s.get(k), int) for k in SOURCE_COUNTS):
                report.problems.append(f"{STATS}: sources.{name} lacks integer {', '.join(SOURCE_COUNTS)}")
                continue
            # records = rows + quarantined; every row is kept or rejected once per language it fans out to
            out_rows = s["kept"] + s["rejected"]
            if s["records"] != s["rows"] + s["quarantined"] or (out_rows % s["rows"] if s["rows"] else out_rows):
                report.problems.append(f"source {name}: {s['records']} records but {s['kept']} kept + {s['rejected']} "
                                       f"rejected + {s['quarantined']} quarantined do not add up")

    _check_card_configs(out_dir, manifest, report)
    for sub in SHARD_DIRS:
        root = out_dir / sub
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(out_dir).as_posix()
            if ".tmp-" in path.name:
                report.warnings.append(f"{rel}: temporary file of an interrupted write (removed by the next run)")
            elif rel not in listed:
                kind = "Parquet file" if path.suffix == ".parquet" else "file"
                report.problems.append(f"{rel}: {kind} not certified by the manifest (stale or foreign)")
    return report


def _valid_entries(out_dir: Path, manifest: dict, key: str, report: VerifyReport) -> list[dict]:
    """The entries of ``manifest[key]`` that name a file inside the output; the others are problems."""
    entries = manifest.get(key, [])
    if not isinstance(entries, list):
        report.problems.append(f"{MANIFEST}: {key} is a {type(entries).__name__}, not a list")
        return []
    valid = []
    for i, entry in enumerate(entries):
        where = f"{MANIFEST}: {key}[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
            report.problems.append(f"{where}: expected an object with a 'path' string, got {json.dumps(entry)[:80]}")
            continue
        problem = outside_output(out_dir, entry["path"])
        if problem:
            report.problems.append(f"{where}: {problem}")
            continue
        valid.append(entry)
    return valid


def _read_json_object(path: Path, report: VerifyReport) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        report.problems.append(f"{path.name}: unreadable ({e})")
        return None
    if not isinstance(value, dict):
        report.problems.append(f"{path.name}: expected a JSON object, got {type(value).__name__}")
        return None
    return value


def _check_card_configs(out_dir: Path, manifest: dict, report: VerifyReport) -> None:
    """Each `datasets` config of the card must match only certified shards, with the manifest's rows."""
    card = out_dir / CARD_FILE
    if not card.is_file():
        report.warnings.append(f"{CARD_FILE}: missing (no dataset card, so no `datasets` configs)")
        return
    meta, _ = split_front_matter(card.read_text(encoding="utf-8"))
    report.problems += [f"{CARD_FILE} metadata: {e}" for e in validate_metadata(meta)]
    rows_of = {f["path"]: f.get("rows") for f in _valid_entries(out_dir, manifest, "files", VerifyReport(out_dir))}
    for cfg in meta.get("configs") or []:
        for entry in cfg.get("data_files") or []:
            pattern = entry["path"] if isinstance(entry, dict) else entry
            matched = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.glob(pattern)
                             if not p.name.startswith((".", "_")))
            if not matched:
                report.problems.append(f"config {cfg.get('config_name')!r}: {pattern} matches no file")
            stray = [m for m in matched if m not in rows_of]
            if stray:
                report.problems.append(f"config {cfg.get('config_name')!r}: {pattern} matches uncertified {stray[:3]}")


def _check_file(out_dir: Path, entry: dict, report: VerifyReport, count_rows: bool) -> int | None:
    rel = entry["path"]
    path = out_dir / rel
    report.checked += 1
    if not path.is_file():
        report.problems.append(f"{rel}: missing")
        return None
    size = path.stat().st_size
    if size != entry.get("bytes"):
        report.problems.append(f"{rel}: {size} bytes, manifest says {entry.get('bytes')}")
    digest = sha256_file(path)
    if digest != entry.get("sha256"):
        recorded = str(entry.get("sha256"))[:12]
        report.problems.append(f"{rel}: sha256 {digest[:12]}… does not match the manifest's {recorded}…")
    if not count_rows:
        return None
    try:
        rows = parquet_rows(path)
    except Exception as e:  # noqa: BLE001 - any reader error means the file is damaged; report it
        report.problems.append(f"{rel}: unreadable Parquet ({type(e).__name__}: {e})")
        return None
    if rows != entry.get("rows"):
        report.problems.append(f"{rel}: {rows} rows, manifest says {entry.get('rows')}")
    report.rows += rows
    return rows


def format_report(report: VerifyReport) -> str:
    lines = [f"{report.out_dir}: checked {report.checked} files, {report.rows} rows"]
    lines += [f"  WARNING {w}" for w in report.warnings]
    lines += [f"  PROBLEM {p}" for p in report.problems]
    lines.append("OK" if report.ok else f"FAILED: {len(report.problems)} problem(s)")
    return "\n".join(lines)
