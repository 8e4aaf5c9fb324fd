"""CLIP image and text embeddings for caption matching, loaded from a hub id or a local folder.

mBLIP mined hard negatives with open_clip ``ViT-L-14`` / ``datacomp_xl_s13b_b90k`` (arXiv 2307.06930).
The same weights are published in transformers' format as ``laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K``,
which is what loads here, through ``transformers.CLIPModel``: the ``open_clip_torch`` package hard-requires
torchvision (its transforms import it), and torchvision has no build for the project's torch. The image
preprocessing is the model's own ``CLIPImageProcessor`` (PIL and numpy: resize shortest side, centre crop,
CLIP mean/std), as open_clip's for these weights.

Embeddings are L2-normalised (cosine similarity under an inner-product index); the reference ranked the
raw vectors by L2 distance, which lets the vector norm, not the direction, decide the neighbours.
Models are cached per process; tests build a tiny random CLIP with ``pipeline.images.tiny_clip``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

DEFAULT_CLIP = "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K"  # open_clip ViT-L-14 / datacomp_xl_s13b_b90k
_CACHE: dict[tuple[str, str], "ClipEncoder"] = {}
_LOCK = threading.Lock()


class ClipEncoder:
    """A CLIP model with its tokenizer and image processor, on one device."""

    def __init__(self, model: str, device: str = "auto"):
        import torch
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        self.model_id = model
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.model = CLIPModel.from_pretrained(model, dtype=dtype).to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.processor = CLIPImageProcessor.from_pretrained(model)
        self.max_tokens = int(self.model.config.text_config.max_position_embeddings)

    def embed_texts(self, texts: Sequence[str]):
        """(len(texts), dim) float32, L2-normalised."""
        import torch

        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                               return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self.model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return _normalise(out)

    def embed_images(self, images: Sequence):
        """(len(images), dim) float32, L2-normalised; ``images`` are RGB PIL images."""
        import torch

        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pixels.to(self.device, self.model.dtype))
        return _normalise(out)


def _normalise(out):
    import torch

    vectors = out if isinstance(out, torch.Tensor) else out.pooler_output
    vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
    return vectors.cpu().numpy()


def load_clip(model: str, device: str = "auto") -> ClipEncoder:
    key = (str(model), device)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = ClipEncoder(str(model), device)
        return _CACHE[key]
