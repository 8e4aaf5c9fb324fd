"""Every command the README shows runs in CI, at tiny size.

The README's shell blocks are parsed here: each command must have a smoke test below (``SMOKE_TESTS``) or
be named in ``NOT_IN_CI`` with the reason, so a new README command without a test fails
``test_every_readme_command_has_a_smoke_test``. The smoke tests run the README's own command lines in a
folder laid out as the README says (``configs/``, ``data/coco/``, ``data/vqav2/``, ``models/``, ``out/``,
``runs/``), filled with tiny inputs: the demo scenes as COCO (Karpathy split file) and VQAv2, tiny random
models. Only what CI cannot have is swapped for a tiny stand-in (``STAND_INS``): the NLLB-200 hub id, the
GPU training config, and the checkpoint step a full training run would reach.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.M | re.S)

# README command -> the smoke test below that runs it
SMOKE_TESTS = {
    "mblip convert-nllb": "test_convert_nllb",
    "mblip generate": "test_generate",
    "mblip verify": "test_verify",
    "mblip calibrate": "test_calibrate_and_regenerate",
    "mblip regenerate": "test_calibrate_and_regenerate",
    "mblip browse": "test_browse",
    "mblip export": "test_export",
    "mblip train": "test_train",
    "mblip export-model": "test_export_model",
    "mblip eval": "test_eval",  # its English baselines and CHAIR: test_eval_english_baselines_and_chair
    "mblip eval-report": "test_eval_report",
    "mblip caption": "test_caption",
    "mblip finetune": "test_finetune",
}
# README commands CI does not run, and why (README: "what CI cannot run")
NOT_IN_CI = {
    "make demo": "creates .venv with pip (network); the command it runs, `mblip demo`, is tests/flows/test_demo_web.py",
    "make test": "is CI itself (.ci/run)",
    "mblip push": "uploads to the Hugging Face Hub (network); its commit plan is tests/pipeline/test_hub.py",
    "tensorboard --logdir": "starts TensorBoard's viewer; the event files it reads are tests/model/test_trackers.py",
}
# README arguments CI cannot have (hub downloads, a GPU, 10,000 training steps) -> what the smoke tests pass
STAND_INS = {
    "facebook/nllb-200-distilled-1.3B": "a tiny random NLLB checkpoint (Hugging Face format)",
    "configs/train_mt0xl.yaml": "model/demo/train_tiny.yaml on the tiny BLIP-2 and mT5, 2 steps",
    "runs/mt0xl/checkpoints/step-0010000": "the tiny run's last checkpoint",
    **{f"configs/finetune/{recipe}.yaml": "the same config at tiny size: batch 2, 2 steps, 2 items of 2 languages"
       for recipe in ("xgqa", "xvnli", "marvl", "xflickrco")},
}


def readme_commands(text: str) -> list[list[str]]:
    """The argv of every command in the README's shell blocks (comments dropped, ``&&`` / ``;`` split)."""
    commands = []
    for block in SHELL_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            argv: list[str] = []
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)  # ``a;b`` splits at the ``;``
            lexer.whitespace_split = True
            for token in [*lexer, ";"]:
                if token in ("&&", ";", "||", "|"):
                    if argv:
                        commands.append(argv)
                    argv = []
                else:
                    argv.append(token)
    return commands


def command_key(argv: list[str]) -> str:
    """``mblip SUBCOMMAND``, ``make TARGET`` or ``python -m MODULE``: what a smoke test covers."""
    program = Path(argv[0]).name
    if program.startswith("python") and argv[1:2] == ["-m"]:
        return f"python -m {argv[2]}"
    return f"{program} {argv[1]}" if len(argv) > 1 else program


def readme_argv(key: str) -> list[str]:
    """The README's arguments of ``key`` (after ``mblip``), as the README writes them."""
    (argv,) = [a for a in readme_commands(README.read_text(encoding="utf-8")) if command_key(a) == key][:1]
    return argv[1:]


def test_every_readme_command_has_a_smoke_test():
    keys = {command_key(argv) for argv in readme_commands(README.read_text(encoding="utf-8"))}
    assert {"mblip generate", "mblip verify", "make test"} <= keys  # the parser finds the README's commands
    assert keys - set(SMOKE_TESTS) - set(NOT_IN_CI) == set(), "a README command without a smoke test"
    assert all(name in globals() for name in SMOKE_TESTS.values())
    readme = README.read_text(encoding="utf-8")
    assert all(argument in readme for argument in STAND_INS)  # a stand-in for an argument the README dropped
    assert "what CI cannot run" in readme


def test_the_parser_splits_chains_and_drops_comments():
    text = "```bash\n# setup\na/b/mblip x --y 1 && python -m m.n z  # note\nmake t; make u \\\n  --v\n```\n"
    assert readme_commands(text) == [["a/b/mblip", "x", "--y", "1"], ["python", "-m", "m.n", "z"], ["make", "t"],
                                     ["make", "u", "--v"]]
    assert [command_key(a) for a in readme_commands(text)] == ["mblip x", "python -m m.n", "make t", "make u"]


def _karpathy_split_file(demo_root: Path) -> dict:
    """The demo's COCO captions as the Karpathy split file (``dataset_coco.json``), every image in train."""
    coco = json.loads((demo_root / "annotations" / "captions_train2014.json").read_text())
    sentences: dict[int, list] = {}
    for ann in coco["annotations"]:
        sentences.setdefault(ann["image_id"], []).append({"raw": ann["caption"], "sentid": ann["id"],
                                                          "imgid": ann["image_id"], "tokens": []})
    images = [{"filepath": "train2014", "filename": im["file_name"], "split": "train", "cocoid": im["id"],
               "imgid": im["id"], "sentids": [s["sentid"] for s in sentences[im["id"]]],
               "sentences": sentences[im["id"]]} for im in coco["images"]]
    return {"dataset": "coco", "images": images}


def _xm3600(root: Path, colours=("red", "blue")) -> None:
    from PIL import Image

    from model.evaluate.benchmarks import get_benchmark

    rows = []
    for i, colour in enumerate(colours):
        key = f"{i:016x}"
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), colour).save(root / "images" / f"{key}.jpg")
        rows.append({"image/key": key, **{lang: {"caption": [f"a {colour} square"]}
                                          for lang in get_benchmark("xm3600").languages}})
    (root / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


class Walkthrough:
    """The README's real-data section in one folder: each command run once, after what it needs."""

    NEEDS = {
        "mblip generate": ("mblip convert-nllb",), "mblip verify": ("mblip generate",),
        "mblip calibrate": ("mblip generate",), "mblip regenerate": ("mblip calibrate",),
        "mblip browse": ("mblip generate",),
        "mblip train": ("mblip generate",), "mblip export-model": ("mblip train",),
        "mblip eval": ("mblip export-model",), "mblip caption": ("mblip export-model",),
    }

    def __init__(self, root: Path, stand_ins: dict[str, str]):
        self.root, self.stand_ins, self.printed = root, stand_ins, {}

    def argv(self, key: str) -> list[str]:
        argv = readme_argv(key)
        if key == "mblip export-model":  # the checkpoint the tiny run reached, for the README's step-0010000
            self.stand_ins["runs/mt0xl/checkpoints/step-0010000"] = str(
                sorted((self.root / "runs" / "mt0xl" / "checkpoints").glob("step-*"))[-1])
        return [self.stand_ins.get(a, a) for a in argv]

    def run(self, key: str, capsys, extra: tuple[str, ...] = ()) -> str:
        from mblip.cli import main

        if key not in self.printed:
            for need in self.NEEDS.get(key, ()):
                self.run(need, capsys)
            capsys.readouterr()
            with pytest.MonkeyPatch.context() as mp:
                mp.chdir(self.root)
                assert main([*self.argv(key), *extra]) == 0, key
            self.printed[key] = capsys.readouterr().out
        return self.printed[key]


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory, demo_root, tiny_dirs) -> Walkthrough:
    from pipeline.nllb.shapes import NllbShape, build_random_nllb, train_sentencepiece

    root = tmp_path_factory.mktemp("readme")
    (root / "configs").mkdir()
    shutil.copyfile(REPO / "configs" / "example_coco_vqav2.yaml", root / "configs" / "example_coco_vqav2.yaml")
    coco = root / "data" / "coco"
    shutil.copytree(demo_root / "images" / "train2014", coco / "images" / "train2014")
    (coco / "dataset_coco.json").write_text(json.dumps(_karpathy_split_file(demo_root)))
    shutil.copytree(demo_root / "vqa", root / "data" / "vqav2")
    _xm3600(root / "data" / "xm3600")
    shutil.copyfile(next((coco / "images" / "train2014").glob("*.jpg")), root / "photo.jpg")

    texts = json.loads((demo_root / "annotations" / "captions_train2014.json").read_text())["annotations"]
    spm = train_sentencepiece([t["caption"] for t in texts], root / "hub" / "spm" / "spm", vocab_size=100)
    hub = build_random_nllb(root / "hub" / "nllb", spm, NllbShape(d_model=32, encoder_layers=1, decoder_layers=1))
    train = yaml.safe_load((REPO / "model" / "demo" / "train_tiny.yaml").read_text())
    train["model"].update(blip2=str(tiny_dirs["blip2"]), llm=str(tiny_dirs["mt5"]))
    train["train"].update(output_dir="runs/mt0xl", max_steps=2, eval_every=0, save_every=0)
    (root / "configs" / "train_tiny.yaml").write_text(yaml.safe_dump(train))
    return Walkthrough(root, {"facebook/nllb-200-distilled-1.3B": str(hub),
                              "configs/train_mt0xl.yaml": "configs/train_tiny.yaml"})


def test_convert_nllb(walkthrough, capsys):
    from pipeline.nllb.convert import read_model_metadata

    walkthrough.run("mblip convert-nllb", capsys)
    model = walkthrough.root / "models" / "nllb-1.3b-int8"
    assert (model / "model.bin").is_file()
    assert read_model_metadata(model)["quantization"] == "int8"


def test_generate(walkthrough, capsys):
    walkthrough.run("mblip generate", capsys)
    manifest = json.loads((walkthrough.root / "out" / "mblip-data" / "manifest.json").read_text())
    assert manifest["totals"]["records"] == 96  # 12 scenes: 5 captions (Karpathy train) and 3 questions each
    assert len(manifest["languages"]) == 96 and manifest["totals"]["kept"] > 0


def test_verify(walkthrough, capsys):
    assert walkthrough.run("mblip verify", capsys).rstrip().endswith("OK")


def test_calibrate_and_regenerate(walkthrough, capsys):
    from pipeline.filters.rules import load_rules

    printed = walkthrough.run("mblip calibrate", capsys)
    out = walkthrough.root / "out" / "mblip-data"
    rules = load_rules(walkthrough.root / "out" / "rules.yaml")
    # about one row per language of 96: every language keeps the global thresholds (fewer than --min-rows)
    assert "too few rows" in printed and rules.per_language == {}
    assert rules.min_script_share == json.loads((out / "manifest.json").read_text())["settings"]["filter"][
        "min_script_share"]
    walkthrough.run("mblip regenerate", capsys)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run"]["flow"] == "regenerate" and manifest["run"]["chunks"]["process"] == 0
    assert manifest["run"]["rules"]["file"] == str((walkthrough.root / "out" / "rules.yaml").resolve())


def test_browse(walkthrough, capsys):
    from pipeline.verify import verify_output

    printed = walkthrough.run("mblip browse", capsys)
    out = walkthrough.root / "out" / "mblip-data"
    assert (out / "browse" / "index.html").is_file() and "links to it" in printed
    assert "[browse/index.html](browse/index.html)" in (out / "README.md").read_text(encoding="utf-8")
    assert verify_output(out).ok  # the manifest certifies the card with its link


def test_export(walkthrough, capsys):
    walkthrough.run("mblip export", capsys)
    tars = json.loads((walkthrough.root / "out" / "mblip-data" / "export" / "webdataset" / "manifest.json").read_text())
    assert tars["files"] and all(f["path"].endswith(".tar") for f in tars["files"])


def test_train(walkthrough, capsys):
    walkthrough.run("mblip train", capsys)
    assert [p.name for p in (walkthrough.root / "runs" / "mt0xl" / "checkpoints").glob("step-*")] == ["step-0000002"]


def test_export_model(walkthrough, capsys):
    walkthrough.run("mblip export-model", capsys)
    assert (walkthrough.root / "runs" / "mt0xl" / "export" / "config.json").is_file()


def test_eval(walkthrough, capsys):
    if shutil.which("java") is None:
        pytest.skip("xm3600's CIDEr needs java (pycocoevalcap's PTB tokenizer)")
    # tiny: two of the 36 languages (each language's CIDEr starts java once)
    walkthrough.run("mblip eval", capsys, extra=("--languages", "de", "en", "--no-progress"))
    result = json.loads((walkthrough.root / "runs" / "mt0xl" / "eval" / "xm3600.json").read_text())
    assert list(result["languages"]) == ["de", "en"] and result["scored"] == 4


def test_caption(walkthrough, capsys):
    printed = walkthrough.run("mblip caption", capsys)
    assert len(printed.splitlines()) == 1


# The benchmark languages each tiny fine-tune is scored on (English and one other: the zero-shot transfer).
FINETUNE_LANGUAGES = {"xgqa": ("en", "de"), "xvnli": ("en", "fr"), "marvl": ("en", "tr"), "xflickrco": ("en", "de")}


def _tiny_finetune_config(root: Path, config: dict, recipe: str) -> str:
    """The README's fine-tuning config at tiny size (its paths kept), written under ``root/configs/tiny``."""
    config["data"].update(max_length=32, max_target_length=16, num_workers=0, val_rows=0, shuffle_buffer=16)
    config["train"].update(batch_size=2, global_batch=2, max_steps=2, eval_every=0, save_every=0, log_every=1)
    config["evaluate"].update(languages=list(FINETUNE_LANGUAGES[recipe]), limit=2, batch_size=2)
    path = root / "configs" / "tiny" / f"{recipe}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return str(path.relative_to(root))


@pytest.mark.parametrize("recipe", sorted(FINETUNE_LANGUAGES))
def test_finetune(walkthrough, capsys, recipe):
    """Each README fine-tuning command, from the tiny re-alignment's checkpoint, on its recipe's training file and
    benchmark in their published formats (tiny samples at the config's own paths): trains, then scores."""
    from mblip.cli import main
    from model.demo.benchmarks import SAMPLE_WRITERS, SHAPES
    from model.finetune.samples import write_training_samples

    readme = README.read_text(encoding="utf-8")
    config_path = f"configs/finetune/{recipe}.yaml"
    (argv,) = [a for a in readme_commands(readme) if command_key(a) == "mblip finetune" and config_path in a]
    walkthrough.run("mblip train", capsys)  # the re-aligned checkpoint the fine-tune starts from
    root = walkthrough.root
    config = yaml.safe_load((REPO / config_path).read_text(encoding="utf-8"))
    write_training_samples(recipe, root / config["finetune"]["train_file"], root / config["finetune"]["images"], 4)
    evaluate = config["evaluate"]
    SAMPLE_WRITERS[recipe](root / evaluate["data"], root / evaluate["images"], FINETUNE_LANGUAGES[recipe], list(SHAPES))
    checkpoint = sorted((root / "runs" / "mt0xl" / "checkpoints").glob("step-*"))[-1]
    stand_ins = {config_path: _tiny_finetune_config(root, config, recipe),
                 "runs/mt0xl/checkpoints/step-0010000": str(checkpoint)}
    scored = recipe != "xflickrco" or shutil.which("java") is not None  # CIDEr needs java
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        extra = ["--no-progress"] if scored else ["--no-eval"]
        assert main([*(stand_ins.get(a, a) for a in argv[1:]), *extra]) == 0
    out = root / config["train"]["output_dir"]
    assert [p.name for p in (out / "checkpoints").glob("step-*")] == ["step-0000002"]
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert manifest["finetune"]["counts"]["quarantined"] == 0 and manifest["finetune"]["counts"]["rows"] > 0
    if scored:
        result = json.loads((out / "eval" / f"{recipe}.json").read_text())
        assert list(result["languages"]) == list(FINETUNE_LANGUAGES[recipe]) and result["scored"] == 4
        assert Path(result["model"]).name == "step-0000002"  # the fine-tuned checkpoint, not the re-aligned one


def readme_eval_argv(benchmark: str) -> list[str]:
    """The README's ``mblip eval BENCHMARK ...`` line (after ``mblip``)."""
    (argv,) = [a[1:] for a in readme_commands(README.read_text(encoding="utf-8"))
               if command_key(a) == "mblip eval" and a[2] == benchmark]
    return argv


def _coco_annotations(walkthrough: Walkthrough, demo_root: Path) -> None:
    """COCO's ``annotations/`` for the demo scenes (train2014): captions as published, one instance each."""
    folder = walkthrough.root / "data" / "coco" / "annotations"
    if folder.is_dir():
        return
    folder.mkdir()
    captions = json.loads((demo_root / "annotations" / "captions_train2014.json").read_text())
    (folder / "captions_train2014.json").write_text(json.dumps(captions))
    instances = {"images": captions["images"], "categories": [{"id": 38, "name": "kite", "supercategory": "sports"}],
                 "annotations": [{"id": i, "image_id": im["id"], "category_id": 38}
                                 for i, im in enumerate(captions["images"])]}
    (folder / "instances_train2014.json").write_text(json.dumps(instances))


# The tiny walkthrough's COCO and VQAv2 files are the demo's train files: the English baselines and CHAIR
# score those (the README's commands read the Karpathy test split and VQAv2 val2014 of the real files).
TINY_SPLITS = {"coco": ("--split", "train"), "vqav2": ("--split", "train2014"), "chair": ("--split", "train")}


@pytest.mark.parametrize("benchmark", sorted(TINY_SPLITS))
def test_eval_english_baselines_and_chair(benchmark, walkthrough, demo_root, capsys):
    from mblip.cli import main

    if benchmark == "coco" and shutil.which("java") is None:
        pytest.skip("CIDEr needs java (pycocoevalcap's PTB tokenizer)")
    walkthrough.run("mblip export-model", capsys)
    _coco_annotations(walkthrough, demo_root)
    argv = [*readme_eval_argv(benchmark), *TINY_SPLITS[benchmark], "--limit", "2", "--no-progress"]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(walkthrough.root)
        assert main(argv) == 0
    result = json.loads((walkthrough.root / "runs" / "mt0xl" / "eval" / f"{benchmark}.json").read_text())
    assert result["benchmark"] == benchmark and result["scored"] == 2 and result["languages"]["en"]["n"] == 2
    if benchmark == "chair":  # every demo image holds a kite: the references are the ground truth categories
        lines = (walkthrough.root / result["predictions"]).read_text(encoding="utf-8").splitlines()
        predictions = [json.loads(line) for line in lines]
        assert all("kite" in p["references"] for p in predictions)


def test_eval_report(walkthrough, demo_root, capsys):
    from mblip.cli import main

    walkthrough.run("mblip export-model", capsys)
    _coco_annotations(walkthrough, demo_root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(walkthrough.root)
        assert main([*readme_eval_argv("chair"), "--split", "train", "--limit", "2", "--no-progress"]) == 0
    (walkthrough.root / "paper_scores.json").write_text(json.dumps({"chair": {"scores": {"en": 10.0}}}))
    table = walkthrough.run("mblip eval-report", capsys)
    chair = next(line for line in table.splitlines() if line.startswith("| CHAIR") and "| en |" in line)
    assert chair.split(" | ")[5] == "10.00"  # the paper column of the user's file
