"""Final outputs: Parquet shards (zstd) for kept, rejected and quarantined rows, stats, the card, the manifest.

Layout under the output root::

    data/{lang}/part-00000.parquet     kept rows, one folder (one `datasets` config) per target language
    rejects/{lang}/part-00000.parquet  rejected rows with every score and the reason, per language
    quarantine/part-00000.parquet      records the readers could not turn into rows
    plots/*.png                        figures the card shows
    stats.json                         every counter the card shows
    README.md                          dataset card with Hugging Face metadata (see pipeline/card/)
    manifest.json                      every file with rows, bytes and sha256 -- written last

The manifest's presence means the output is complete. Rows are sorted by example_id within a
language, so the same inputs and seed give identical shards. A split with no rows gets no shard: an
empty Parquet file would be a `datasets` split that "corresponds to no data".

One mechanism covers resume and "rewrite only what changed": ``write_outputs`` builds the complete
output in ``_work/staging``, recording each shard group as it is finished there (``_work/shard-groups/``),
then publishes it: only files whose bytes differ move into the output folder, the manifest is removed
before the first one moves and written last, and stale files are deleted only when this tool owns them.
A rerun after a kill anywhere reuses the recorded groups (from staging, or from the output folder after
a kill during the publish) and publishes again.

Modules: ``sort`` (spill and bounded sort), ``shards`` (layout, groups and their records), ``stats``
(stats.json), ``publish`` (staging, the move into the output folder, ownership, the manifest's
creation time), ``write`` (``write_outputs``).
"""
