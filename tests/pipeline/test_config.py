"""The pipeline config's translation section builds the engine settings field by field."""

from dataclasses import MISSING, fields

from pipeline.config import TranslationConfig
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
