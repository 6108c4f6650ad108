"""Breast-cancer MLP (30 -> 16 -> 8 -> 2): train deterministically and export for ezkl.

Run from the repository root:  python -m models.breast_cancer_mlp.model

Writes next to this file: network.onnx, input.json (one held-out sample), calibration.json
(32 held-out samples), scaler.json (the standardization the inputs need) and the accuracy line
of README.md. The ONNX input and output have a symbolic leading ``batch`` axis (a plain
``zkinfer compile`` fixes it to 1; ``--batch N`` proves N samples in one proof). The model takes
STANDARDIZED features; the scaler is not baked into the network because raw features span
0.001..4254 and would force a wide fixed-point input range in ezkl.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

from prover.export import export_torch, write_input_json

HERE = Path(__file__).resolve().parent
SEED = 0
N_CALIBRATION = 32


class BreastCancerMLP(nn.Module):
    """Logits [malignant, benign] (sklearn classes 0 and 1) from 30 standardized features."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train(x: torch.Tensor, y: torch.Tensor) -> BreastCancerMLP:
    """Full-batch Adam for a fixed number of epochs: same seed, same weights."""
    torch.manual_seed(SEED)
    model = BreastCancerMLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(300):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
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
    data = load_breast_cancer()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=0.25, random_state=SEED, stratify=data.target
    )
    scaler = StandardScaler().fit(x_tr)  # fit on the training split only
    xt_tr = torch.tensor(scaler.transform(x_tr), dtype=torch.float32)
    xt_te = torch.tensor(scaler.transform(x_te), dtype=torch.float32)
    model = train(xt_tr, torch.tensor(y_tr, dtype=torch.long))

    with torch.no_grad():
        accuracy = float((model(xt_te).argmax(1).numpy() == y_te).mean())
    print(f"held-out accuracy: {accuracy:.4f} ({len(y_te)} samples)")

    # a symbolic leading "batch" axis: `zkinfer compile --batch N` proves N rows at once
    report = export_torch(
        model, xt_te[:1], HERE / "network.onnx", check_inputs=xt_te, batch_axis="batch"
    )
    print(f"exported {report.path.name}: max |onnx - torch| = {report.max_abs_diff:.2e}")
    write_input_json(HERE / "input.json", xt_te[:1].tolist())
    write_input_json(HERE / "calibration.json", xt_te[:N_CALIBRATION].tolist())
    scaler_json = {
        "feature_names": [str(n) for n in data.feature_names],
        "mean": np.asarray(scaler.mean_).tolist(),
        "scale": np.asarray(scaler.scale_).tolist(),
        "note": "model input = (raw_features - mean) / scale",
    }
    (HERE / "scaler.json").write_text(json.dumps(scaler_json, indent=1) + "\n")
    update_readme_accuracy(accuracy)


if __name__ == "__main__":
    main()
