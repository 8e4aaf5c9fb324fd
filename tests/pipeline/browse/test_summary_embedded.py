"""The run summary on an output whose kept shards embed their images (and whose rejected shards do not)."""

import json

from pipeline.summary import print_summary


def test_the_summary_prints_examples_of_an_output_with_embedded_images(chunk_output, capsys):
    manifest = json.loads((chunk_output.out / "manifest.json").read_text())
    kept = [f for f in manifest["files"] if f["split"] == "kept" and f["rows"]]
    assert kept  # the kept shards carry an image column the rejected ones lack
    print_summary(chunk_output.out, manifest, examples=2)
    out = capsys.readouterr().out
    assert "Examples, a random sample" in out and "[de]" in out and "[fr]" in out
