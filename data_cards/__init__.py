"""Source data cards (``<source_type>.md``: licence, citation, homepage as YAML front matter) that the
dataset card is built from, and the shipped translator's model card. Installed as package data."""
