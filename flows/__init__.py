"""Prefect 3 flows. They only wire the stages in ``pipeline`` and ``model``: tasks, retries,
concurrency, artifacts. No transformation logic lives here."""
