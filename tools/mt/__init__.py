"""The shipped Multi30k translator: its trainer, MT evaluation (chrF++/BLEU), model card and CT2 recovery."""
