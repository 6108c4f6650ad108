"""Digits CNN (8x8 handwritten digits, 10 classes): train deterministically and export for ezkl.

Run from the repository root:  python -m models.digits_cnn.model

Writes next to this file: network.onnx (input [1, 1, 8, 8], pixels scaled to [0, 1]),
input.json (one held-out sample), calibration.json (32 held-out samples) and the accuracy
line of README.md.
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


class DigitsCNN(nn.Module):
    """Logits for digits 0-9 from a [N, 1, 8, 8] image with pixels in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU())
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def train(x: torch.Tensor, y: torch.Tensor) -> DigitsCNN:
    """Seeded mini-batch Adam for a fixed number of epochs: same seed, same weights."""
    torch.manual_seed(SEED)
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(40):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
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
    xt_tr = torch.tensor(x_tr, dtype=torch.float32).unsqueeze(1)
    xt_te = torch.tensor(x_te, dtype=torch.float32).unsqueeze(1)
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
