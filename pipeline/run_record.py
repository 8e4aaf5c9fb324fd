"""What a run records about itself: the values that travel from the flow to the manifest and the card.

``RunRecord`` is built once per run (``pipeline/build.py``) from the config, the model's metadata and
the run's counters; ``write_outputs`` puts ``to_json()`` into ``manifest.json`` (fields in this order,
right after ``schema_version`` and ``created``) and the card reads its attributes. Every field has a
default, so a small record (tests, benchmarks) needs only what it uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class RunRecord:
    config_hash: str | None = None  # PipelineConfig.config_hash()
    model: dict = field(default_factory=dict)  # the converted model's metadata (model_id, revision, quantization...)
    languages: list[str] = field(default_factory=list)  # mC4 codes of the run, in config order
    target_shares: dict[str, float] = field(default_factory=dict)  # assignment weight per language (empty: mC4's)
    image_roots: dict[str, str] = field(default_factory=dict)  # source name -> image root (image_path is relative)
    sources: dict[str, str] = field(default_factory=dict)  # source name -> source type (its data card)
    pretty_name: str | None = None  # card title; None: a generic one
    settings: dict = field(default_factory=dict)  # translation, filter, assignment and prompts settings
    recipe: dict = field(default_factory=dict)  # pipeline.recipe.recipe_metadata
    keys: dict[str, str] = field(default_factory=dict)  # translation and decision keys of the processed chunks
    mix: dict = field(default_factory=dict)  # task mix rules, seed and thresholds
    run: dict = field(default_factory=dict)  # chunk actions and the flow's own values (flow name, changes)
    # source name -> its reader's statistics: web (sampling, fetch, matching), imagenet (label keys), POPE
    web: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The record as plain JSON values, fields in order (what the manifest holds)."""
        return asdict(self)
