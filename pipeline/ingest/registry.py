"""Source types of the rest of the mBLIP mix -> reader, from a source config's plain values."""

from __future__ import annotations

from pipeline.schema import TASK_VQG


def open_task_reader(source_type: str, name: str, params: dict):
    """The reader of ``source_type`` (None for the COCO/VQAv2 types ``open_reader`` handles itself)."""
    if source_type == "vqav2_vqg":
        from pipeline.ingest.vqav2 import Vqav2Reader

        return Vqav2Reader(params["questions"], params["annotations"], name=name, task=TASK_VQG,
                           root=params.get("root"))
    if source_type == "aokvqa":
        from pipeline.ingest.aokvqa import AOKVQA_TASKS, AokvqaReader

        return AokvqaReader(
            params["path"],
            params["images"],
            name=name,
            tasks=tuple(params.get("tasks") or AOKVQA_TASKS),
            translate=bool(params.get("translate", False)),
        )
    if source_type == "llava":
        from pipeline.ingest.llava import MAX_SENTENCES, LlavaInstructReader

        return LlavaInstructReader(
            params["path"], params["images"], name=name, max_sentences=int(params.get("max_sentences", MAX_SENTENCES))
        )
    if source_type == "imagenet":
        from pipeline.ingest.imagenet import IMAGENET_TASKS, PASSES, ImagenetReader

        return ImagenetReader(
            params["images"],
            params["classes"],
            params.get("labels"),
            name=name,
            synsets=params.get("synsets"),
            passes=int(params.get("passes", PASSES)),
            seed=int(params.get("seed", 0)),
            languages=tuple(params.get("languages") or ()),
            tasks=tuple(params.get("tasks") or IMAGENET_TASKS),
        )
    if source_type == "tabular":
        from pipeline.ingest.tabular import TabularReader

        return TabularReader(params["path"], params["columns"], name=name, format=params.get("format"))
    if source_type == "mblip_released":
        from pipeline.ingest.released import DETECT, ReleasedMblipReader

        return ReleasedMblipReader(
            params["path"],
            name=name,
            language=params.get("language", DETECT),
            retranslate=bool(params.get("retranslate", False)),
        )
    return None
