"""Every source type and its config class: ``SourceConfig`` is the union the run config parses by ``type``.

A new source type is a reader module with its config class (on ``pipeline.ingest.source.SourceBase``),
added to ``SOURCE_CLASSES`` here, plus its source card (``data_cards/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Union, get_args

from pydantic import Field, TypeAdapter

from pipeline.ingest.aokvqa import AokvqaSource
from pipeline.ingest.coco import CocoCaptionsSource, KarpathyCocoSource
from pipeline.ingest.imagenet import ImagenetSource
from pipeline.ingest.llava import LlavaSource
from pipeline.ingest.released import ReleasedMblipSource
from pipeline.ingest.source import LEGACY_FIELDS
from pipeline.ingest.tabular import TabularSource
from pipeline.ingest.vqav2 import Vqav2Source, Vqav2VqgSource
from pipeline.ingest.web_capfilt import WebCapfiltSource
from pipeline.ingest.web_match import WebMatchSource

SOURCE_CLASSES = (CocoCaptionsSource, KarpathyCocoSource, Vqav2Source, Vqav2VqgSource, AokvqaSource, LlavaSource,
                  ImagenetSource, TabularSource, ReleasedMblipSource, WebCapfiltSource, WebMatchSource)
SOURCE_TYPES: tuple[str, ...] = tuple(cls.model_fields["type"].default for cls in SOURCE_CLASSES)

SourceConfig = Annotated[Union[SOURCE_CLASSES], Field(discriminator="type")]
SOURCE_ADAPTER: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)
# Fields that name a file or folder, in any type: a config file's relative paths are resolved against it.
PATH_FIELDS: tuple[str, ...] = tuple(sorted({
    name for cls in SOURCE_CLASSES for name, f in cls.model_fields.items()
    if f.annotation is Path or Path in get_args(f.annotation)
}))


def parse_source(values: dict) -> SourceConfig:
    """The config of one source from plain values (``{"type": ..., ...}``)."""
    return SOURCE_ADAPTER.validate_python(values)


def drop_legacy_fields(source: dict) -> dict:
    """``source`` without the fields its type does not define, when it is laid out over every legacy
    field (``pipeline.ingest.source.LEGACY_FIELDS``: a ``config.resolved.yaml`` written before each type
    had its own class); any other source is returned as it is, so an unknown field stays an error."""
    if not isinstance(source, dict) or not set(LEGACY_FIELDS) <= set(source):
        return source
    own = dict(zip(SOURCE_TYPES, SOURCE_CLASSES)).get(source.get("type"))
    return source if own is None else {k: v for k, v in source.items() if k in own.model_fields}
