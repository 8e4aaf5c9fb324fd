"""The pipeline config's translation section builds the engine settings field by field; the filter section
resolves how many contrast sources its margins need."""

from dataclasses import MISSING, fields

import pytest

from pipeline.config import FilterConfig, TranslationConfig
from pipeline.nllb.engine import COMPUTE_TYPES, DEVICES, EngineSettings


def _other_value(name: str, default):
    """A valid value different from the engine default, so a field that is not carried over shows."""
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 3
    if isinstance(default, float):
        return default + 0.5
    if isinstance(default, tuple):
        return (1, 2)
    choices = {"device": DEVICES, "compute_type": COMPUTE_TYPES}[name]
    return next(c for c in choices if c != default)


def test_every_engine_setting_is_a_translation_config_field_and_round_trips():
    engine_fields = [f for f in fields(EngineSettings)]
    assert all(f.default is not MISSING for f in engine_fields)
    missing = [f.name for f in engine_fields if f.name not in TranslationConfig.model_fields]
    assert missing == []
    values = {f.name: _other_value(f.name, f.default) for f in engine_fields}
    settings = TranslationConfig(**values).engine_settings()
    assert settings == EngineSettings(**values)
    assert {f.name: getattr(settings, f.name) for f in engine_fields} == values
    assert settings != EngineSettings()  # every value differs from the default


def test_device_index_from_a_list_stays_hashable():
    settings = TranslationConfig.model_validate({"device_index": [0, 1]}).engine_settings()
    assert settings.device_index == (0, 1)
    assert hash(settings) == hash(EngineSettings(device_index=(0, 1)))


def test_filter_contrasts_follow_the_margin_rules_unless_set():
    assert FilterConfig().margin_contrasts() == 0  # no margin rule on: nothing would read a margin
    assert FilterConfig(min_fwd_margin=0.5).margin_contrasts() == 4
    assert FilterConfig(per_language={"sw": {"min_sentence_margin": 1.0}}).margin_contrasts() == 4
    assert FilterConfig(contrasts=2).margin_contrasts() == 2  # stored for calibration, no rule needed
    assert "contrasts" not in FilterConfig(contrasts=2).rules().model_dump()
    assert FilterConfig(contrasts=0, min_fwd_margin=0.5, backtranslate=False).margin_contrasts() == 0
    with pytest.raises(ValueError, match="filter.contrasts is 0 but a margin rule"):
        FilterConfig(contrasts=0, min_fwd_margin=0.5)
    with pytest.raises(ValueError):
        FilterConfig(contrasts=-1)
