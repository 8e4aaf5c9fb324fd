"""``mblip browse OUT``: a static site of an output's rows, for a person to look at the data.

For 95 languages nobody on a team can read, the back-translation beside the image is how the data is
checked. The site opens from disk (``file://``; no server, nothing loads from the network): an index and
one page per language and task with a thumbnail, the prompt, the target, the English source, the
translation, the back-translation, every score and signal column, the status and the reject reason, with
client-side filters (plain JavaScript) by status, reason and task.

- ``sample``: which rows a page shows: a seeded random sample of at most N rows per language and task,
  kept and rejected together, chosen by a hash of (seed, task, example_id), so the same output and seed
  give the same rows and adding rows never reshuffles the rest; the full counts per status and reason are
  counted while the shards stream by (memory: one record batch plus N keys per task).
- ``thumbs``: JPEG thumbnails made with Pillow from the row's embedded image bytes (``output.images:
  embed``) or its file under the source's image root (``image_roots`` in the manifest); each distinct
  image is written once.
- ``html``: the pages, from string templates; every value is escaped (translations are untrusted).
- ``site``: the build (into a temporary folder, swapped into place) and the card link: a site written
  to ``OUT/browse`` is linked from the dataset card, and the site records which shards it shows
  (``site.json``), so a later run that changes the rows drops the link (``site_link``).
"""

# Defaults of ``mblip browse`` (here, so the command line parses without loading polars or Pillow).
DEFAULT_SAMPLE = 200  # rows per page: enough to judge a language and task, few enough to open at once
THUMB_PX = 192  # longest side of a thumbnail, pixels: legible beside the texts, ~10 kB per image
