"""Tooling around the production stages: benchmarks (``tools.bench``), the shipped translator's trainer,
card and MT evaluation (``tools.mt``), the filter evaluation and calibration (``tools.filters``), the GPU
check, the demo (``tools.demo``) and the tiny test-model builders (``tools.testmodels``).

``pipeline``, ``flows`` and ``model`` never import it; it imports them."""
