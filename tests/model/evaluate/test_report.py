"""`mblip eval-report`: a run's results next to the paper's numbers from the user's file, and bad files."""

from __future__ import annotations

import json

import pytest


def _results(tiny_run, benchmark_files, root):
    """Two `mblip eval` results of the tiny model (XVNLI en + fr, CHAIR) in ``root/eval``, and a trainer file."""
    from model.evaluate.runner import run_evaluation

    for name in ("xvnli", "chair"):
        data, images, languages = benchmark_files(name)
        run_evaluation(name, data, images, tiny_run["export"], root / "eval" / f"{name}.json", languages,
                       progress=False)
    (root / "state.json").write_text('{"step": 2}')  # a trainer file beside the results: listed, not read
    return {name: json.loads((root / "eval" / f"{name}.json").read_text()) for name in ("xvnli", "chair")}


def test_report_puts_the_papers_numbers_beside_the_scores(tiny_run, benchmark_files, tmp_path, capsys):
    from mblip.cli import main

    results = _results(tiny_run, benchmark_files, tmp_path / "run")
    paper = tmp_path / "paper.json"
    paper.write_text(json.dumps({
        "_about": "typed in from the paper",
        "xvnli": {"source": "mBLIP Table 3", "scores": {"en": 50.0, "fr": 40.5, "ar": None}, "mean": 41.0},
        "chair": {"scores": {"en": 12.25}},
    }))
    assert main(["eval-report", str(tmp_path / "run"), "--paper", str(paper)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "| benchmark | split | language | n | score | paper | run - paper |"
    xvnli, chair = results["xvnli"], results["chair"]
    for lang, value in (("en", 50.0), ("fr", 40.5)):
        score = xvnli["languages"][lang]["score"]
        assert (f"| XVNLI (accuracy %) | test | {lang} | {xvnli['languages'][lang]['n']} | {score:.2f} | "
                f"{value:.2f} | {score - value:+.2f} |") in lines
    assert f"| XVNLI (accuracy %) | test | mean (fr) | - | {xvnli['mean']:.2f} | 41.00 | {xvnli['mean'] - 41:+.2f} |" \
        in lines
    chair_score = chair["languages"]["en"]["score"]
    assert f"| CHAIR (CHAIRs %, lower is better) | test | en | 2 | {chair_score:.2f} | 12.25 | " \
        f"{chair_score - 12.25:+.2f} |" in lines
    # the registry's order (XVNLI before CHAIR); the paper gives no CHAIR mean
    benchmarks = [line.split(" | ")[0] for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert benchmarks == ["| XVNLI (accuracy %)"] * 3 + ["| CHAIR (CHAIRs %, lower is better)"] * 2
    assert next(x for x in lines if "CHAIR" in x and "mean" in x).endswith(" | - | - |")
    assert lines[-1] == "Paper numbers: mBLIP Table 3."
    assert "state.json is not an `mblip eval` result" in err

    assert main(["eval-report", str(tmp_path / "run")]) == 0  # without a paper file: no paper columns
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "| benchmark | split | language | n | score |" and "paper" not in out


@pytest.mark.parametrize(("paper", "message"), [
    ({"xvnli": {"scores": {"fr": "40.5"}}}, "field 'xvnli.scores.fr' is '40.5', not a number or null"),
    ({"xvnli": {"scores": {"de": 40.5}}}, "field 'xvnli.scores.de': xvnli has no language 'de'"),
    ({"xm360": {"scores": {}}}, "field 'xm360' is not a benchmark"),
    ({"xvnli": {"score": {"fr": 1}}}, "field 'xvnli.score' is unknown"),
    ({"pope": {"scores": {"random": 80.0}, "mean": True}}, "field 'pope.mean' is True, not a number"),
    ([1, 2], "expected an object of benchmarks"),
])
def test_a_bad_paper_file_names_file_and_field(paper, message, tmp_path, capsys):
    from mblip.cli import main

    (tmp_path / "run").mkdir()
    path = tmp_path / "paper.json"
    path.write_text(json.dumps(paper))
    assert main(["eval-report", str(tmp_path / "run"), "--paper", str(path)]) == 2
    assert f"error: {path}: {message}" in capsys.readouterr().err


def test_a_folder_without_results_or_with_broken_json_is_an_error(tmp_path, capsys):
    from mblip.cli import main

    (tmp_path / "state.json").write_text('{"step": 2}')
    assert main(["eval-report", str(tmp_path)]) == 2
    assert "no `mblip eval` results file" in capsys.readouterr().err
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "xvnli.json").write_text('{"benchmark": ')
    assert main(["eval-report", str(tmp_path)]) == 2
    assert f"{tmp_path / 'eval' / 'xvnli.json'}: not valid JSON" in capsys.readouterr().err
