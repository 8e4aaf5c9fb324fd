"""The exported model's card: Hub metadata, usage and the evaluation table, read back by huggingface_hub."""

from __future__ import annotations

import pytest


def test_export_writes_a_model_card_with_hub_metadata_and_the_evaluation_table(tiny_run, benchmark_files,
                                                                                tmp_path):
    from huggingface_hub import ModelCard

    from model.evaluate.runner import run_evaluation
    from model.export import export_checkpoint
    from model.evaluate.paper import load_paper_file
    from model.model_card import read_eval_results

    data, images, languages = benchmark_files("xvnli")
    run_evaluation("xvnli", data, images, tiny_run["export"], tmp_path / "xvnli.json", languages, progress=False)
    results = read_eval_results([tmp_path / "xvnli.json"])
    paper = tmp_path / "paper.json"
    paper.write_text('{"xvnli": {"scores": {"fr": 40.5}, "source": "mBLIP Table 3"}}')
    out = export_checkpoint(tiny_run["checkpoint"], tmp_path / "export", eval_results=results, license="mit",
                            datasets=["me/mblip-data"], name="mblip-tiny", paper=load_paper_file(paper))

    card = ModelCard.load(out / "README.md")
    data_ = card.data.to_dict()
    assert data_["library_name"] == "transformers" and data_["pipeline_tag"] == "image-to-text"
    assert data_["license"] == "mit" and data_["datasets"] == ["me/mblip-data"]
    assert data_["language"] == ["en"]  # the demo output the tiny model trained on is English
    assert "base_model" not in data_  # local tiny models are not Hub ids
    (result,) = card.data.eval_results  # model-index, parsed by huggingface_hub
    assert result.dataset_type == "xvnli" and result.metric_value == pytest.approx(results[0]["mean"], abs=1e-4)
    assert "Blip2ForConditionalGeneration.from_pretrained" in card.text
    # the table of `mblip eval-report --paper`: the paper's number and the difference where the file has one
    rows = {lang: f"| XVNLI (accuracy %) | test | {lang} | {row['n']} | {row['score']:.2f} |"
            for lang, row in results[0]["languages"].items()}
    fr = results[0]["languages"]["fr"]["score"]
    assert f"{rows['fr']} 40.50 | {fr - 40.5:+.2f} |" in card.text and f"{rows['en']} - | - |" in card.text
    assert "Paper numbers: mBLIP Table 3." in card.text


def test_a_card_names_hub_base_models_and_rejects_a_file_that_is_no_eval_result(tmp_path):
    from model.model_card import hub_ids, read_eval_results

    assert hub_ids("Salesforce/blip2-flan-t5-xl", "bigscience/mt0-xl", str(tmp_path)) == \
        ["Salesforce/blip2-flan-t5-xl", "bigscience/mt0-xl"]
    (tmp_path / "x.json").write_text('{"rows": 3}')
    with pytest.raises(ValueError, match="not an `mblip eval` result"):
        read_eval_results([tmp_path / "x.json"])
