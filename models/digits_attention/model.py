"""Digits self-attention (8x8 digits as 4 two-row tokens): train deterministically, export for ezkl.

Run from the repository root:  python -m models.digits_attention.model

Each 8x8 digit (pixels scaled to [0, 1]) is a sequence of 4 tokens, one per pair of image rows
(16 pixels). One patch convolution (kernel = stride = 2 rows) gives every token its query and
key (width 4), value and residual stream (width 8), plus a learned position term. A single-head
self-attention block (softmax over the scores, a residual connection and LayerNorm) is
mean-pooled over the tokens and mapped to 10 logits.
This exercises Softmax, LayerNormalization, Conv and ReduceMean; the MLP and CNN lack the first two.

The shape is chosen to keep the ezkl circuit small (2^15 rows, a Solidity verifier under the
24,576-byte EVM limit); see README.md:
- the token products are broadcast Mul + ReduceSum, not MatMul: ezkl proves a MatMul with more
  than one row by a Freivalds check, whose extra columns and challenge phase roughly double the
  verifier; a 1x1 convolution is turned into such a MatMul too, hence one fused patch convolution;
- a training penalty on the variance of the attention scores keeps softmax's inputs within a few
  units, so ezkl's exp lookup table fits a single column of 2^15 rows.

Writes next to this file: network.onnx (input [1, 8, 8]), input.json (one held-out sample),
calibration.json (32 held-out samples) and the accuracy line of README.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from prover.export import export_torch, write_input_json

HERE = Path(__file__).resolve().parent
SEED = 0
N_CALIBRATION = 32
ROW = 8  # pixels per image row = rows per image
ROWS_PER_TOKEN = 2
TOKENS = ROW // ROWS_PER_TOKEN
WIDTH = 8  # value and residual width
QK = 4  # query/key width
EPOCHS = 200
SCORE_PENALTY = 0.3  # weight of the attention-score variance in the training loss


class DigitsAttention(nn.Module):
    """Logits for digits 0-9 from a [N, 8, 8] image (row pairs as tokens), pixels in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        channels = 2 * QK + 2 * WIDTH  # query, key, value, residual
        # No nonlinearity sits between a token embedding and its q/k/v projections, so one
        # patch convolution computes all four straight from the token's 16 pixels.
        self.proj = nn.Conv1d(ROW, channels, kernel_size=ROWS_PER_TOKEN, stride=ROWS_PER_TOKEN)
        # Without a position term the block is permutation-invariant over tokens (mean-pool),
        # so it could not tell a 6 from an upside-down 9.
        self.pos = nn.Parameter(torch.zeros(channels, TOKENS))
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, 10)

    def scores_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention scores [N, tokens, tokens] and logits [N, 10]."""
        z = self.proj(x.transpose(1, 2)) + self.pos  # [N, channels, tokens]
        q, k, v, h = z.split([QK, QK, WIDTH, WIDTH], dim=1)
        # No 1/sqrt(QK) factor: q is learned and absorbs it, and the graph keeps one op fewer.
        scores = (q.unsqueeze(3) * k.unsqueeze(2)).sum(dim=1)  # [N, query, key]
        attended = (torch.softmax(scores, dim=-1).unsqueeze(1) * v.unsqueeze(2)).sum(dim=3)
        h = self.norm((h + attended).transpose(1, 2))  # [N, tokens, WIDTH]
        return scores, self.head(h.mean(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scores_and_logits(x)[1]


def score_spread(model: DigitsAttention, x: torch.Tensor) -> float:
    """Largest max - min of one query's attention scores: the width of softmax's exp inputs."""
    with torch.no_grad():
        scores = model.scores_and_logits(x)[0]
    return float((scores.amax(dim=-1) - scores.amin(dim=-1)).max())


def train(x: torch.Tensor, y: torch.Tensor) -> DigitsAttention:
    """Seeded mini-batch Adam for a fixed number of epochs: same seed, same weights."""
    torch.manual_seed(SEED)
    model = DigitsAttention()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            scores, logits = model.scores_and_logits(x[idx])
            penalty = scores.var(dim=-1, unbiased=False).mean()
            (loss_fn(logits, y[idx]) + SCORE_PENALTY * penalty).backward()
            opt.step()
        sched.step()
    return model.eval()


def update_readme_accuracy(accuracy: float) -> None:
    """Replace the 'Held-out accuracy' line of README.md, if the README exists."""
    readme = HERE / "README.md"
    if readme.exists():
        text = re.sub(
            r"Held-out accuracy: .*",
            f"Held-out accuracy: {accuracy:.4f}",
            readme.read_text(),
        )
        readme.write_text(text)


def main() -> None:
    """Train, print held-out accuracy, export and write the ezkl data files next to this file."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data = load_digits()
    images = data.images / 16.0  # raw pixels are 0..16
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, data.target, test_size=0.25, random_state=SEED, stratify=data.target
    )
    xt_tr = torch.tensor(x_tr, dtype=torch.float32)
    xt_te = torch.tensor(x_te, dtype=torch.float32)
    model = train(xt_tr, torch.tensor(y_tr, dtype=torch.long))

    with torch.no_grad():
        accuracy = float((model(xt_te).argmax(1).numpy() == y_te).mean())
    print(f"held-out accuracy: {accuracy:.4f} ({len(y_te)} samples)")
    # ezkl sizes its exp table to twice the spread seen on the calibration samples.
    spread_cal = score_spread(model, xt_te[:N_CALIBRATION])
    spread_all = score_spread(model, torch.tensor(images, dtype=torch.float32))
    print(f"score spread: {spread_cal:.2f} on calibration.json, {spread_all:.2f} on all images")

    report = export_torch(model, xt_te[:1], HERE / "network.onnx", check_inputs=xt_te)
    print(f"exported {report.path.name}: max |onnx - torch| = {report.max_abs_diff:.2e}")
    write_input_json(HERE / "input.json", xt_te[:1].flatten(1).tolist())
    write_input_json(HERE / "calibration.json", xt_te[:N_CALIBRATION].flatten(1).tolist())
    update_readme_accuracy(accuracy)


if __name__ == "__main__":
    main()
