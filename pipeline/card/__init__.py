"""The dataset card (``README.md`` at the output root), generated from run artifacts only.

Inputs: ``stats.json`` (every counter shown), the shard list, the run record (model, settings,
sources) and the source cards in ``data_cards/`` (licence, citation, homepage: YAML front matter).
Output: Hugging Face metadata (``metadata``: YAML front matter, checked against the values the Hub
documents) and a Markdown body (``sections``, one function per section, with the per-task notes of
``task_notes``, the web-source sections of ``web`` and the other readers' statistics of ``readers``: label
keys, POPE), plus the PNG plots of ``plots`` (``render``).
Nothing here is typed by hand per run, and the same inputs give the same bytes (no timestamps).
"""
