"""Confirms on a machine with a GPU that trials train on CUDA with trainer.device=auto.

    python scripts/gpu_check.py   (prints the device of a trial's model and data, then runs a sweep)
"""

import json
import sys

import torch

from sweeps.experiment._build import train
from sweeps.experiment._experiment import prepare


def main() -> None:
    print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                      "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))
    exp, dataset = prepare(["+experiment=quickstart", *sys.argv[1:]])
    params = {"optimizer.lr": 0.1, "optimizer.momentum": 0.9, "model.hidden": 64, "schedule": "constant"}
    cfg = exp.config(params)
    result, built = train(cfg, dataset.train_val(), seed=0)
    device = next(built.model.parameters()).device
    print(json.dumps({"model_device": str(device), "trainer.device": cfg.trainer.device,
                      "best_val_accuracy": result.best_value, "epochs": result.epochs_run}))
    if torch.cuda.is_available() and device.type != "cuda":
        sys.exit("trainer.device=auto did not pick CUDA")


if __name__ == "__main__":
    main()
