"""Defaults of ``mblip calibrate`` and ``pipeline.calibrate.calibrate_output``, in a module of their own so
that the command line parses without loading polars (which ``pipeline.calibrate`` imports)."""

CALIBRATION_BOUNDS = ("global", "none")  # global: never laxer than the global threshold; none: plain percentiles
DEFAULT_BOUND = "global"
# OpusFilter assumes 0.1% noise in a 100k-pair sample; one language's rows of a translated caption set are
# fewer and noisier: 5% per signal.
DEFAULT_NOISY_SHARE = 0.05
DEFAULT_MIN_ROWS = 100  # a language with fewer scored rows of a signal keeps the global threshold
