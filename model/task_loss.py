"""Training loss per task, from the logits the loss step already computed (no extra forward pass).

mBLIP trains on a mix of tasks (Geigle et al. 2024, Table 1); one mean loss hides a task that does
not learn. ``TaskLossMeter`` accumulates each example's mean token cross-entropy under its task, in a
fixed task order so that sums from several processes can be reduced as one tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from model.loader import IGNORE_INDEX


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor, decoder_only: bool) -> torch.Tensor:
    """Mean token cross-entropy per example, (B,), as the model's loss computes it over the batch.

    Seq2seq: logits (B, T, V) predict labels (B, T). Decoder-only: the logits of the last
    ``labels.size(1)`` positions, shifted by one (position t predicts label t + 1).
    """
    if decoder_only:
        logits = logits[:, -labels.size(1) :, :][:, :-1, :]
        labels = labels[:, 1:]
    tokens = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    counts = (labels != IGNORE_INDEX).sum(dim=1)
    return tokens.sum(dim=1) / counts.clamp(min=1)


class TaskLossMeter:
    """Sums and counts of per-example losses per task since the last ``take``."""

    def __init__(self, tasks: Sequence[str], decoder_only: bool, device):
        self.tasks = tuple(tasks)
        self.index = {t: i for i, t in enumerate(self.tasks)}
        self.decoder_only = decoder_only
        self.sums = torch.zeros(len(self.tasks), device=device)
        self.counts = torch.zeros(len(self.tasks), device=device)

    def add(self, logits: torch.Tensor, labels: torch.Tensor, tasks: Sequence[str]) -> None:
        losses = per_example_loss(logits.detach(), labels, self.decoder_only)
        ids = torch.tensor([self.index[t] for t in tasks], device=losses.device)
        self.sums.index_add_(0, ids, losses.to(self.sums.dtype))
        self.counts.index_add_(0, ids, torch.ones_like(losses, dtype=self.counts.dtype))

    def take(self, reduce=None) -> dict[str, float]:
        """Mean loss per task seen since the last call (``reduce``: a sum over processes), then reset."""
        sums, counts = (reduce(self.sums), reduce(self.counts)) if reduce else (self.sums, self.counts)
        out = {t: (sums[i] / counts[i]).item() for t, i in self.index.items() if counts[i] > 0}
        self.sums.zero_()
        self.counts.zero_()
        return out
