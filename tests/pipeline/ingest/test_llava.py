"""LLaVA-Instruct reader on the official detail_23k.json / conversation_58k.json format."""

import json

import polars as pl

from pipeline.ingest.llava import LlavaInstructReader
from pipeline.ingest.sentences import count_sentences
from pipeline.schema import TASK_LLAVA


def _images(tmp_path):
    root = tmp_path / "coco"
    (root / "train2017").mkdir(parents=True)
    (root / "val2014").mkdir()
    (root / "train2017" / "000000000011.jpg").write_bytes(b"x")
    (root / "val2014" / "COCO_val2014_000000000022.jpg").write_bytes(b"x")
    return root


def _turns(*pairs):
    out = []
    for h, g in pairs:
        out += [{"from": "human", "value": h}, {"from": "gpt", "value": g}]
    return out


def _read(path, root, **kw):
    batches = list(LlavaInstructReader(path, root, **kw).iter_batches(3))
    return pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])


def test_sentence_counter_is_not_a_period_counter():
    assert count_sentences("Dr. Smith holds a 3.5 m pole, e.g. for vaulting. He smiles.") == 2
    assert count_sentences("Yes! Really? Fine.") == 3
    assert count_sentences("  ") == 0


def test_every_pair_its_own_example_image_token_removed(tmp_path):
    root = _images(tmp_path)
    path = tmp_path / "conversation_58k.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "000000000011",
                    "image": "000000000011.jpg",
                    "conversations": _turns(
                        ("What is in the image?\n<image>", "A cat on a sofa."),
                        ("What colour is the cat?", "It is grey. It looks calm."),
                    ),
                },
                {
                    "id": "000000000022",
                    "image": "000000000022.jpg",  # a val2014 image: the reference's name did not exist
                    "conversations": _turns(
                        ("<image>\nDescribe the scene.", "Dr. Lee, e.g. a vet, checks a dog. It sits. It waits.")
                    ),
                },
            ]
        )
    )
    rows, bad = _read(path, root)
    assert bad.height == 0 and rows.height == 3 and set(rows["task"]) == {TASK_LLAVA}
    first = rows.filter(pl.col("source_record_id") == "000000000011:0").row(0, named=True)
    assert first["context_en"] == "What is in the image?" and first["text_en"] == "A cat on a sofa."
    assert first["image_path"] == "train2017/000000000011.jpg"
    third = rows.filter(pl.col("source_record_id") == "000000000022:0").row(0, named=True)
    assert (
        third["context_en"] == "Describe the scene." and third["image_path"] == "val2014/COCO_val2014_000000000022.jpg"
    )
    assert not any("<image>" in t for t in rows["context_en"])


def test_long_answers_bad_turns_and_missing_images_quarantined(tmp_path):
    root = _images(tmp_path)
    path = tmp_path / "conversation_58k.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "a",
                    "image": "000000000011.jpg",
                    "conversations": _turns(("Describe.", "One. Two. Three. Four."), ("Again?", "Yes.")),
                },
                {
                    "id": "b",
                    "image": "000000000011.jpg",
                    "conversations": [{"from": "human", "value": "Hi"}, {"from": "human", "value": "Hello"}],
                },
                {"id": "c", "image": "000000000333.jpg", "conversations": _turns(("Q", "A."))},
                {"id": "d", "image": "000000000011.jpg", "conversations": _turns(("Q", "  <image> "))},
            ]
        )
    )
    rows, bad = _read(path, root)
    assert rows["source_record_id"].to_list() == ["a:1"]
    got = {(r["record_id"], r["field"]): r["reason"] for r in bad.iter_rows(named=True)}
    assert "4 sentences" in got[("a:0", "conversations[1].value")]
    assert ("b:0", "conversations[1].from") in got
    assert "000000000333" in got[("c", "image")]
    assert ("d:0", "conversations[1].value") in got
    rows_nolimit, _ = _read(path, root, max_sentences=0)
    assert "a:0" in rows_nolimit["source_record_id"].to_list()


def test_detail_descriptions_have_no_sentence_limit_conversation_turns_three(tmp_path):
    """The reference's 3-sentence rule is for conversation turns; detail_23k descriptions are used whole."""
    root = _images(tmp_path)
    long = "A cat sits on a sofa. It is grey. A lamp stands behind it. The wall is blue. A rug lies below."
    records = [{"id": "000000000011", "image": "000000000011.jpg", "conversations": _turns(("Describe it.", long))}]
    detail, conversation = tmp_path / "detail_23k.json", tmp_path / "conversation_58k.json"
    for path in (detail, conversation):
        path.write_text(json.dumps(records))
    rows, bad = _read(detail, root)
    assert rows["text_en"].to_list() == [long] and bad.height == 0
    rows, bad = _read(conversation, root)
    assert rows.height == 0 and "5 sentences, more than 3" in bad["reason"][0]
    rows, _ = _read(detail, root, max_sentences=3)  # an explicit limit applies to either kind
    assert rows.height == 0
    other = tmp_path / "llava_descriptions.json"
    other.write_text(json.dumps(records))
    rows, _ = _read(other, root, kind="detail")
    assert rows.height == 1


def test_the_config_default_follows_the_file_and_paper_mix_sets_no_limit_on_detail():
    from pathlib import Path

    import yaml

    from pipeline.ingest.llava import LlavaSource

    source = LlavaSource.model_validate({"type": "llava", "path": "x/detail_23k.json", "images": "x"})
    assert source.max_sentences is None and source.kind == "auto"
    repo = Path(__file__).resolve().parents[3]
    paper = yaml.safe_load((repo / "configs" / "paper_mix.yaml").read_text())
    llava = {s["name"]: s for s in paper["sources"] if s["type"] == "llava"}
    assert llava["llava_detail"].get("max_sentences") in (None, 0)
    assert llava["llava_conversation"].get("max_sentences", 3) == 3


def test_pope_images_are_left_out_and_counted(tmp_path):
    from pipeline.ingest.pope import PopeExclusion

    root = _images(tmp_path)
    pope_dir = tmp_path / "pope"
    pope_dir.mkdir()
    (pope_dir / "coco_pope_random.json").write_text(
        "\n".join(json.dumps({"question_id": i, "image": "COCO_val2014_000000000022.jpg", "text": "Is there a dog?",
                              "label": "yes"}) for i in range(3)) + "\n")
    path = tmp_path / "conversation_58k.json"
    path.write_text(json.dumps([
        {"id": "000000000011", "image": "000000000011.jpg", "conversations": _turns(("Q?", "A."))},
        {"id": "000000000022", "image": "000000000022.jpg", "conversations": _turns(("Q?", "A."), ("R?", "B."))},
    ]))
    pope = PopeExclusion.from_config([pope_dir])
    assert pope.ids == frozenset({22}) and pope.files == 1
    reader = LlavaInstructReader(path, root, pope=pope)
    batches = list(reader.iter_batches(10))
    rows, bad = pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])
    assert rows["image_id"].to_list() == ["11"]
    assert bad["reason"].to_list() == [bad["reason"][0]] and bad["reason"][0].startswith("pope_image")
    assert reader.stats == {"pope": {"enabled": True, "files": 1, "images": 1}}
    kept, _ = _read(path, root, pope=PopeExclusion.from_config([pope_dir], enabled=False))
    assert set(kept["image_id"]) == {"11", "22"}  # exclude_pope_images: false keeps them
