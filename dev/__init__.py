"""Maintainers' tooling, run from a checkout (``python -m dev....``) and never installed by the wheel: the
shipped Multi30k translator's trainer, model card and recovery from CT2 (``dev.mt``), the filter threshold
calibration (``dev.filters``) and the GPU check (``dev.gpu_check``)."""
