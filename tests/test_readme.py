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
    "mblip browse": "test_browse",
    "mblip export": "test_export",
    "mblip train": "test_train",
    "mblip export-model": "test_export_model",
    "mblip eval": "test_eval",
    "mblip caption": "test_caption",
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
        "mblip browse": ("mblip generate",), "mblip train": ("mblip generate",), "mblip export-model": ("mblip train",),
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
