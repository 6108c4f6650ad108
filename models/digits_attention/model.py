"""Digits self-attention (8x8 digits as 8 row-tokens): train deterministically, export for ezkl.

Run from the repository root:  python -m models.digits_attention.model

Each 8x8 digit (pixels scaled to [0, 1]) is a sequence of 8 tokens, one per image row, of 8
features, embedded to width 16 plus a learned position term. A single-head self-attention
block (q/k of width 8, v of width 16, softmax over the scores, a residual connection and
LayerNorm) is mean-pooled over the tokens and mapped to 10 logits.
This exercises MatMul, Softmax, LayerNormalization and ReduceMean, which the MLP and CNN do not.

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
ROW = 8  # pixels per image row = features per token = tokens per image
WIDTH = 16  # token embedding width
QK = 8  # query/key width
EPOCHS = 200


class DigitsAttention(nn.Module):
    """Logits for digits 0-9 from a [N, 8, 8] image (rows as tokens), pixels in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(ROW, WIDTH)
        # Without a position term the block is permutation-invariant over rows (mean-pool),
        # so it could not tell a 6 from an upside-down 9.
        self.pos = nn.Parameter(torch.zeros(ROW, WIDTH))
        self.q = nn.Linear(WIDTH, QK)
        self.k = nn.Linear(WIDTH, QK)
        self.v = nn.Linear(WIDTH, WIDTH)
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.pos
        # No 1/sqrt(QK) factor: q is learned and absorbs it, and the graph keeps one op fewer.
        scores = self.q(h) @ self.k(h).transpose(1, 2)
        h = self.norm(h + torch.softmax(scores, dim=-1) @ self.v(h))
        return self.head(h.mean(dim=1))


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
            loss_fn(model(x[idx]), y[idx]).backward()
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

    report = export_torch(model, xt_te[:1], HERE / "network.onnx", check_inputs=xt_te)
    print(f"exported {report.path.name}: max |onnx - torch| = {report.max_abs_diff:.2e}")
    write_input_json(HERE / "input.json", xt_te[:1].flatten(1).tolist())
    write_input_json(HERE / "calibration.json", xt_te[:N_CALIBRATION].flatten(1).tolist())
    update_readme_accuracy(accuracy)


if __name__ == "__main__":
    main()
