"""Readers for the published English sources, all producing rows in ``pipeline.schema.SOURCE_SCHEMA``; each
reader module also holds the config class of its source type (``registry.py`` lists them)."""

from pipeline.ingest.base import ReadBatch, SourceError
from pipeline.ingest.coco import CocoCaptionsReader, KarpathyCocoReader
from pipeline.ingest.vqav2 import Vqav2Reader

__all__ = ["ReadBatch", "SourceError", "CocoCaptionsReader", "KarpathyCocoReader", "Vqav2Reader"]
