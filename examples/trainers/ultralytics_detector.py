"""skin-detection trainer for `trainer: command`: trains an Ultralytics YOLOv8 detector on the
prepared (letterboxed) split tensors and exports ONNX per the contract in docs/train.md.

Needs: python3, ultralytics, numpy, pillow (a CUDA GPU).
Pipeline:  command: python examples/trainers/ultralytics_detector.py --model yolov8n.pt --epochs 100
"""

import argparse
import json
import os
import shutil
import tempfile

import numpy as np
from PIL import Image
from ultralytics import YOLO

data_dir = os.environ["SKINTWIN_DATA"]
out_dir = os.environ["SKINTWIN_OUT"]
with open(os.environ["SKINTWIN_PARAMS"]) as f:
    spec = json.load(f)

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="yolov8n.pt")
ap.add_argument("--epochs", type=int, default=100)
ap.add_argument("--batch", type=int, default=16)
args = ap.parse_args()
names = [c["name"] for c in spec["classes"]]
work = tempfile.mkdtemp(prefix="skintwin-yolo-")


def export_split(split):
    """The prepared tensors back to a YOLO folder: PNG images and normalised cx cy w h labels."""
    d = os.path.join(data_dir, split)
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    n, h, w, _ = meta["shape"]
    images = np.memmap(os.path.join(d, "images.u8"), dtype=np.uint8, mode="r", shape=(n, h, w, 3))
    os.makedirs(os.path.join(work, "images", split))
    os.makedirs(os.path.join(work, "labels", split))
    with open(os.path.join(d, "index.jsonl")) as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            stem = f"{row['row']:07d}"
            Image.fromarray(np.asarray(images[row["row"]])).save(os.path.join(work, "images", split, stem + ".png"))
            with open(os.path.join(work, "labels", split, stem + ".txt"), "w") as lab:
                for c, x1, y1, x2, y2 in row.get("boxes", []):
                    lab.write(f"{int(c)} {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h}\n")
    return h


size = export_split("train")
export_split("val")
with open(os.path.join(work, "data.yaml"), "w") as f:
    json.dump({"path": work, "train": "images/train", "val": "images/val", "names": names}, f)

model = YOLO(args.model)
model.train(data=os.path.join(work, "data.yaml"), imgsz=size, epochs=args.epochs, batch=args.batch, seed=spec["params"].get("seed", 42), project=work, name="run")
metrics = model.val(data=os.path.join(work, "data.yaml"), imgsz=size)
# Fixed batch 1 and a fixed image side: input `images` [1, 3, S, S], output `output0` [1, 4 + classes, A].
onnx_path = model.export(format="onnx", imgsz=size, dynamic=False, simplify=True, opset=17)
shutil.copyfile(onnx_path, os.path.join(out_dir, "model.onnx"))
with open(os.path.join(out_dir, "metrics.json"), "w") as f:
    json.dump({"val_map50": float(metrics.box.map50), "val_map50_95": float(metrics.box.map), "epochs": args.epochs}, f)
shutil.rmtree(work, ignore_errors=True)
