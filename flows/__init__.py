"""Prefect 3 flows. They only wire the stages in ``pipeline`` and ``model``: tasks, retries,
concurrency, artifacts. No transformation logic lives here."""

import os

# Records of the ``pipeline`` loggers go to the Prefect run log (set before Prefect configures logging;
# ``flows.runtime.route_pipeline_logs`` does the same at run time where this came too late).
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "pipeline")
# The stages also run outside flows (CLI summaries, tests, plain Python): no warning per record there.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
# No anonymous usage telemetry by default: the SDK's (DO_NOT_TRACK, the convention Prefect honours)
# and the embedded server's heartbeat. Set DO_NOT_TRACK=0 and PREFECT_SERVER_ANALYTICS_ENABLED=true to
# send it again.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
