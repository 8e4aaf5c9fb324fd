"""NLLB-200 on CTranslate2: model building (tiny, for tests and demos), conversion and the translation engine."""
