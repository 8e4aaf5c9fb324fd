"""Recover a Hugging Face checkpoint from a CTranslate2 conversion of an M2M100/NLLB model.

The shipped model is kept only in its CTranslate2 form (``pipeline/assets/nllb-multi30k``). To continue
training it (``train_small --init-from``) this reads ``model.bin`` (CTranslate2's documented layout: binary
version, spec name, revision, then every variable as name, shape, dtype and bytes, then the aliases) and
inverts what ``ctranslate2.converters.TransformersConverter`` did for M2M100: fused q/k/v projections are
split again and int8 weights are de-quantised (``weight / weight_scale``, one scale per output row).

The result is faithful to the int8 model: converting it back with the same quantisation gives the same
int8 weights (each row's largest value maps back to 127, so the scale and every rounded value are
reproduced); ``roundtrip_mismatches`` checks exactly that.

    python -m dev.mt.from_ct2 pipeline/assets/nllb-multi30k runs/nllb-multi30k-shipped
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
from pathlib import Path

from pipeline.nllb.convert import convert_nllb
from pipeline.nllb.shapes import SPM_FILENAME, NllbShape, build_random_nllb

RECOVERED_MARKER = "recovered_from.json"  # written into a recovered checkpoint; its training/ holds the history
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


def read_ct2_variables(model_bin: str | Path) -> dict:
    """name -> numpy array of every variable in a CTranslate2 ``model.bin`` (aliases resolved)."""
    import numpy as np

    data = Path(model_bin).read_bytes()
    offset = 0

    def take(fmt: str):
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal offset
        n = take("H")
        value = data[offset: offset + n - 1].decode("utf-8")
        offset += n
        return value

    version = take("I")
    if version < 5:
        raise ValueError(f"{model_bin}: CTranslate2 binary version {version} is not supported (need >= 5)")
    string()  # spec name
    take("I")  # revision
    variables = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype = _DTYPES[take("B")]
        n_bytes = take("I")
        if dtype == "bfloat16":
            raise ValueError(f"{model_bin}: variable {name} is bfloat16; convert with another quantisation")
        variables[name] = np.frombuffer(data[offset: offset + n_bytes], dtype=dtype).reshape(shape)
        offset += n_bytes
    for _ in range(take("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return variables


def _weight(variables: dict, prefix: str):
    """De-quantised float32 weight of the linear/embedding ``prefix``."""
    import numpy as np

    w = variables[f"{prefix}/weight"]
    scale = variables.get(f"{prefix}/weight_scale")
    if scale is None:
        return w.astype(np.float32)
    return (w.astype(np.float32) / scale.astype(np.float32)[:, None]).astype(np.float32)


def m2m100_state_dict(variables: dict, d_model: int) -> dict:
    """The ``M2M100ForConditionalGeneration`` state dict (without positions, which are sinusoidal)."""
    import torch

    sd = {}

    def put(name, array):
        sd[name] = torch.from_numpy(array.copy()).float()

    def linear(hf: str, ct2: str, rows: slice | None = None):
        w, b = _weight(variables, ct2), variables[f"{ct2}/bias"]
        put(f"{hf}.weight", w if rows is None else w[rows])
        put(f"{hf}.bias", b if rows is None else b[rows])

    def norm(hf: str, ct2: str):
        put(f"{hf}.weight", variables[f"{ct2}/gamma"])
        put(f"{hf}.bias", variables[f"{ct2}/beta"])

    q, k, v = slice(0, d_model), slice(d_model, 2 * d_model), slice(2 * d_model, 3 * d_model)
    emb = _weight(variables, "decoder/embeddings")
    for name in ("model.shared.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
                 "lm_head.weight"):
        put(name, emb)
    for side in ("encoder", "decoder"):
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
        i = 0
        while f"{side}/layer_{i}/ffn/linear_0/weight" in variables:
            hf, ct2 = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            sa = f"{ct2}/self_attention"
            for name, rows in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                linear(f"{hf}.self_attn.{name}", f"{sa}/linear_0", rows)
            linear(f"{hf}.self_attn.out_proj", f"{sa}/linear_1")
            norm(f"{hf}.self_attn_layer_norm", f"{sa}/layer_norm")
            if side == "decoder":
                ca = f"{ct2}/attention"
                linear(f"{hf}.encoder_attn.q_proj", f"{ca}/linear_0")
                linear(f"{hf}.encoder_attn.k_proj", f"{ca}/linear_1", slice(0, d_model))
                linear(f"{hf}.encoder_attn.v_proj", f"{ca}/linear_1", slice(d_model, 2 * d_model))
                linear(f"{hf}.encoder_attn.out_proj", f"{ca}/linear_2")
                norm(f"{hf}.encoder_attn_layer_norm", f"{ca}/layer_norm")
            linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
            linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
            norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
            i += 1
    return sd


def recover_checkpoint(ct2_dir: str | Path, out_dir: str | Path) -> Path:
    """Write an HF checkpoint (weights, config, tokenizer) equivalent to the CTranslate2 model in ``ct2_dir``."""
    import numpy as np
    from transformers import M2M100ForConditionalGeneration

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    variables = read_ct2_variables(ct2_dir / "model.bin")
    vocab = json.loads((ct2_dir / "shared_vocabulary.json").read_text())
    n_vocab, d_model = variables["decoder/embeddings/weight"].shape
    layers = {side: sum(1 for k in variables if k.startswith(f"{side}/layer_") and k.endswith("ffn/linear_0/weight"))
              for side in ("encoder", "decoder")}
    shape = NllbShape(
        d_model=d_model, encoder_layers=layers["encoder"], decoder_layers=layers["decoder"],
        attention_heads=int(variables["encoder/num_heads"]),
        ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_position_embeddings=variables["decoder/position_encodings/encodings"].shape[0], vocab_size=n_vocab,
        dropout=0.0,
    )
    build_random_nllb(out_dir, ct2_dir / SPM_FILENAME, shape)  # config + tokenizer; weights replaced below
    model = M2M100ForConditionalGeneration.from_pretrained(out_dir)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in vocab]
    if ids != list(range(len(vocab))) or model.config.vocab_size != n_vocab:
        raise ValueError(f"{ct2_dir}: shared_vocabulary.json does not match the vocabulary built from {SPM_FILENAME}")
    positions = model.model.encoder.embed_positions
    ours = positions.weights[positions.offset:].numpy()
    if not np.allclose(ours, variables["decoder/position_encodings/encodings"], atol=1e-5):
        raise ValueError(f"{ct2_dir}: position encodings are not M2M100's sinusoids")
    missing, unexpected = model.load_state_dict(m2m100_state_dict(variables, d_model), strict=False)
    if unexpected or [k for k in missing if "embed_positions" not in k]:
        raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.save_pretrained(out_dir)
    if (ct2_dir / "training").is_dir():  # the run artifacts of the stages that made it (for the model card)
        shutil.copytree(ct2_dir / "training", out_dir / "training", dirs_exist_ok=True)
    (out_dir / RECOVERED_MARKER).write_text(json.dumps({"ct2_dir": str(ct2_dir)}, indent=2) + "\n")
    return out_dir


def roundtrip_mismatches(ct2_dir: str | Path, hf_dir: str | Path, scratch: str | Path) -> list[str]:
    """Variables whose values differ between ``ct2_dir`` and a fresh int8 conversion of ``hf_dir``."""
    import numpy as np

    again = convert_nllb(str(hf_dir), Path(scratch), quantization="int8", force=True)
    a, b = read_ct2_variables(Path(ct2_dir) / "model.bin"), read_ct2_variables(Path(again) / "model.bin")
    bad = sorted(set(a) ^ set(b))
    for k in set(a) & set(b):
        x, y = a[k], b[k]
        if x.shape != y.shape or not np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=1e-5, atol=1e-6):
            bad.append(k)
    return bad


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ct2_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    args = p.parse_args(argv)
    recover_checkpoint(args.ct2_dir, args.out_dir)
    bad = roundtrip_mismatches(args.ct2_dir, args.out_dir, args.out_dir.with_name(args.out_dir.name + "-roundtrip"))
    print(f"recovered {args.out_dir}; int8 round trip: {'identical' if not bad else f'{len(bad)} variables differ'}")
    return 0 if not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
