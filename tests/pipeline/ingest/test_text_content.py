"""Row text is clean Unicode: control characters are removed, a lone surrogate quarantines its
record (instead of becoming "?"), and a byte that is not UTF-8 names the file and its offset."""

import json

import pytest

from pipeline.ingest import CocoCaptionsReader, SourceError
from pipeline.ingest.coco import first_invalid_utf8, has_lone_surrogate_escape


def _coco(path, captions: list[str], raw_captions: dict[int, str] | None = None):
    """A COCO captions file; ``raw_captions`` puts JSON text in verbatim (escapes json.dumps would fix)."""
    anns = [{"id": i + 1, "image_id": 1, "caption": c} for i, c in enumerate(captions)]
    text = json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": anns})
    for i, raw in (raw_captions or {}).items():
        text = text.replace(json.dumps(captions[i]), raw)
    path.write_text(text, encoding="utf-8")
    return path


def _read(path):
    batches = list(CocoCaptionsReader(path).iter_batches(50))
    rows = [t for b in batches for t in b.rows["text_en"].to_list()]
    bad = [r for b in batches for r in b.quarantine.to_dicts()]
    return rows, bad


def test_control_characters_are_removed(tmp_path):
    rows, bad = _read(_coco(tmp_path / "c.json", ["A bell\u0007 rings\u0000here.", "Tab\tand\u0085next line."]))
    assert rows == ["A bell rings here.", "Tab and next line."] and bad == []


@pytest.mark.parametrize("escape", ["\\ud800", "\\udc00", "\\uD83D x"], ids=["high", "low", "high-unpaired"])
def test_lone_surrogate_is_quarantined_not_replaced(tmp_path, escape):
    path = _coco(tmp_path / "c.json", ["A dog.", "PLACEHOLDER", "A cat \\ud83d\\ude00."],
                 raw_captions={1: f'"ok {escape} x"', 2: '"A cat \\ud83d\\ude00."'})
    rows, bad = _read(path)
    assert rows == ["A dog.", "A cat \U0001F600."]  # a valid pair stays the character it encodes
    assert len(bad) == 1 and bad[0]["record_id"] == "2" and bad[0]["field"] == "annotations.caption"
    assert "lone surrogate" in bad[0]["reason"]
    assert escape.split()[0].lower() in bad[0]["raw"].lower()  # raw keeps the escape visible


def test_lone_surrogate_scan_across_chunk_borders(tmp_path):
    path = _coco(tmp_path / "c.json", ["A cat \U0001F600.", "x"], raw_captions={0: '"A cat \\ud83d\\ude00."'})
    lone = _coco(tmp_path / "l.json", ["a", "b"], raw_captions={1: '"b \\ud83d"'})
    lone_low = _coco(tmp_path / "m.json", ["a", "b"], raw_captions={1: '"b \\ude00 c"'})
    for chunk_bytes in range(6, 80):  # every position of the pair relative to a chunk border
        assert not has_lone_surrogate_escape(path, chunk_bytes=chunk_bytes), chunk_bytes
        assert has_lone_surrogate_escape(lone, chunk_bytes=chunk_bytes), chunk_bytes
        assert has_lone_surrogate_escape(lone_low, chunk_bytes=chunk_bytes), chunk_bytes


def test_undecodable_byte_names_file_and_offset(tmp_path):
    path = _coco(tmp_path / "c.json", ["A cafe."])
    data = path.read_bytes()
    offset = data.index(b"cafe") + 3
    path.write_bytes(data[:offset] + b"\xe9" + data[offset + 1:])
    assert first_invalid_utf8(path, chunk_bytes=5) == (offset, 0xE9)
    with pytest.raises(SourceError, match=rf"byte 0xE9 at offset {offset} is not valid UTF-8") as err:
        _read(path)
    assert str(path) in str(err.value)
