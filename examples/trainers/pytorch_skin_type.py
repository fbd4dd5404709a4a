"""skin-type trainer for `trainer: command`: fine-tunes torchvision's EfficientNet-B0 on the
prepared 224x224 split tensors and exports ONNX per the contract in docs/train.md.

Needs: python3, torch, torchvision, numpy, onnx (a CUDA GPU makes it fast; CPU works, slowly).
Pipeline:  command: python examples/trainers/pytorch_skin_type.py --epochs 20
"""

import argparse
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

data_dir = os.environ["SKINTWIN_DATA"]
out_dir = os.environ["SKINTWIN_OUT"]
with open(os.environ["SKINTWIN_PARAMS"]) as f:
    spec = json.load(f)

ap = argparse.ArgumentParser()
ap.add_argument("--epochs", type=int, default=20)
ap.add_argument("--batch-size", type=int, default=32)
ap.add_argument("--lr", type=float, default=3e-4)
args = ap.parse_args()
torch.manual_seed(spec["params"].get("seed", 42))
device = "cuda" if torch.cuda.is_available() else "cpu"
n_classes = len(spec["classes"])


def load_split(split):
    """images.u8 (N x H x W x 3 uint8, memory-mapped), labels from index.jsonl, mean/std from meta.json."""
    d = os.path.join(data_dir, split)
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    images = np.memmap(os.path.join(d, "images.u8"), dtype=np.uint8, mode="r", shape=tuple(meta["shape"]))
    with open(os.path.join(d, "index.jsonl")) as f:
        labels = np.array([json.loads(line)["label"] for line in f if line.strip()], dtype=np.int64)
    return images, labels, meta


def batches(images, labels, meta, shuffle):
    order = np.random.permutation(len(labels)) if shuffle else np.arange(len(labels))
    mean = torch.tensor(meta["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(meta["std"], device=device).view(1, 3, 1, 1)
    for i in range(0, len(order), args.batch_size):
        idx = np.sort(order[i : i + args.batch_size])
        x = torch.from_numpy(np.ascontiguousarray(images[idx])).to(device).permute(0, 3, 1, 2).float() / 255
        yield (x - mean) / std, torch.from_numpy(labels[idx]).to(device)


train = load_split("train")
val = load_split("val")
model = torchvision.models.efficientnet_b0(weights="IMAGENET1K_V1")
model.classifier[1] = torch.nn.Linear(model.classifier[1].in_features, n_classes)
model.to(device)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
# Class weights against imbalance: inverse training frequency.
counts = np.bincount(train[1], minlength=n_classes).astype(np.float32)
weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / n_classes, device=device)

best = (math.inf, None, 0.0)
for epoch in range(args.epochs):
    model.train()
    for x, y in batches(*train, shuffle=True):
        opt.zero_grad()
        F.cross_entropy(model(x), y, weight=weights).backward()
        opt.step()
    model.eval()
    loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in batches(*val, shuffle=False):
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
    val_loss, val_acc = loss / n, correct / n
    print(f"epoch {epoch + 1}/{args.epochs}: val log loss {val_loss:.4f}, accuracy {val_acc:.4f}", flush=True)
    if val_loss < best[0]:
        best = (val_loss, {k: v.detach().clone() for k, v in model.state_dict().items()}, val_acc)

model.load_state_dict(best[1])
model.eval().cpu()


class WithSoftmax(torch.nn.Module):
    """Clause 5: the output must be probabilities, not logits."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return torch.softmax(self.m(x), dim=1)


torch.onnx.export(
    WithSoftmax(model),
    torch.zeros(1, 3, 224, 224),
    os.path.join(out_dir, "model.onnx"),
    input_names=["input"],
    output_names=["probabilities"],
    dynamic_axes={"input": {0: "N"}, "probabilities": {0: "N"}},
    opset_version=17,
)
with open(os.path.join(out_dir, "metrics.json"), "w") as f:
    json.dump({"val_log_loss": best[0], "val_accuracy": best[2], "epochs": args.epochs}, f)
