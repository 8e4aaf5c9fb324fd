"""The card's recipe section: this run's settings next to mBLIP's, with the knob where they differ."""

from pipeline.config import PipelineConfig
from pipeline.recipe import recipe_metadata, render_recipe, render_templates


def _config(**karpathy):
    return PipelineConfig.model_validate({"sources": [
        {"type": "coco_karpathy", "path": "dataset_coco.json", "images": ".", **karpathy},
        {"type": "vqav2", "questions": "q.json", "annotations": "a.json", "images": "."}]})


STATS = {"languages": {"en": {"assigned_share": 0.44}, "de": {"assigned_share": 0.56}}}


def test_karpathy_default_is_train_plus_restval_and_the_card_names_the_papers_knob():
    recipe = recipe_metadata(_config())
    assert recipe["karpathy_splits"] == {"coco_karpathy": ["train", "restval"]}
    card = render_recipe(STATS, recipe)
    assert "| coco_karpathy: Karpathy splits | train + restval | train (restval excluded) | " \
           "`sources[coco_karpathy].splits: [train]` |" in card
    paper = render_recipe(STATS, recipe_metadata(_config(splits=["train"])))
    assert "| coco_karpathy: Karpathy splits | train | train (restval excluded) | - |" in paper


def test_recipe_rows_follow_the_run():
    card = render_recipe(STATS, recipe_metadata(_config()))
    assert "| languages | 2 (44.00% English (untranslated)) |" in card
    assert "knob for the paper" in card and "| instructions |" in card
    odd = PipelineConfig.model_validate({**_config().model_dump(mode="json"), "run": {"languages": ["de"]},
                                         "prompts": {"english_share": 0.0}})
    card = render_recipe({"languages": {"de": {"assigned_share": 1.0}}}, recipe_metadata(odd))
    assert "`run.languages: []` (or list `en`)" in card and "`prompts.english_share: null`" in card
    assert "0% English templates" in card


def test_kept_and_dropped_templates_are_listed_per_language():
    stats = {"processing": {"template_texts": {"de": {
        "kept": {"caption": ["Beschrifte das Bild."]},
        "dropped": [["caption", "Ein Bild derschaftschafts.", "filter:source_ignored"]]}}}}
    text = render_templates(stats)
    assert "| de | caption | Beschrifte das Bild. | Ein Bild derschaftschafts. (filter:source_ignored) |" in text
    assert render_templates({}) == ""


def test_every_remaining_difference_has_its_row_and_knob():
    config = PipelineConfig.model_validate({"sources": [
        {"type": "vqav2", "questions": "q.json", "annotations": "a.json", "images": "."},
        {"type": "llava", "name": "detail", "path": "detail_23k.json", "images": "."},
        {"type": "llava", "name": "conv", "path": "conversation_58k.json", "images": ".", "max_sentences": 5},
        {"type": "aokvqa", "path": "aokvqa_v1p0_train.json", "images": ".", "pope": ["pope"]}]})
    card = render_recipe(STATS, recipe_metadata(config))
    assert "| template strings | the reference's, verbatim" in card
    assert "`{1} because {1}.` left out" in card
    assert "bn Bengali, ht Haitian Creole, ny Chichewa" in card and "`prompts.language_names: reference`" in card
    assert "| VQA answers translated | seen >= 15 times in their source, no digits" in card
    assert "`answers.match: exact`" in card and "`answers.pair_yes_no: false`" in card
    assert "| detail: LLaVA detail answers | no limit | no limit (detail) | - |" in card
    assert "| conv: LLaVA conversation answers | at most 5 sentences (spaCy) |" in card
    assert "`sources[conv].max_sentences: 3`" in card
    assert "| aokvqa: POPE images | left out of training (POPE stays zero-shot) |" in card
    reference = PipelineConfig.model_validate({**config.model_dump(mode="json"), "answers": {
        "min_count": 5, "match": "exact", "pair_yes_no": False}, "prompts": {"language_names": "reference"}})
    card = render_recipe(STATS, recipe_metadata(reference))
    assert "bn Bangla, ht Haitian, ny Nyanja |" in card and "`prompts.language_names: reference`" not in card
    assert "seen >= 5 times" in card and "`answers.min_count: 15`" in card
    assert "`answers.match: exact`" not in card and "`answers.pair_yes_no: false`" not in card
