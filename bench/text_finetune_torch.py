"""The MiniLM fine-tuning recipe of `lantern text train --model minilm_classifier`, run with
PyTorch + transformers instead: the same all-MiniLM-L6-v2 weights (the hub's minilm-l6
source), the same rotten-tomatoes split (seed 0, 80/10/10), mean pooling + dropout 0.1 +
linear head, AdamW 5e-5 with weight decay 0.01, cosine decay per step, gradient clipping at
1.0, 3 epochs of batch 32, 64 tokens. A quality comparison, not a dependency: it needs torch
and transformers installed.

    python bench/text_finetune_torch.py --seed 0 --threads 2

Prints the validation accuracy after each epoch and the test accuracy of the final model.
Batches are drawn at random (transformers' usual recipe); Lantern's are length-bucketed.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="training seed (the split stays seed 0)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    import torch
    from transformers import AutoModel, AutoTokenizer

    import datasets as hub
    from datasets.text import open_text_dataset

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    folder = str(hub.fetch("minilm-l6"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    split = dict(val_fraction=1 / 9, seed=0)
    train = open_text_dataset("rotten-tomatoes", split="train", **split)
    val = open_text_dataset("rotten-tomatoes", split="val", classes=train.classes, **split)
    test = open_text_dataset("rotten-tomatoes", split="test", classes=train.classes, **split)

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = AutoModel.from_pretrained(folder)
            self.dropout = torch.nn.Dropout(0.1)
            self.classifier = torch.nn.Linear(self.bert.config.hidden_size, len(train.classes))

        def forward(self, ids, mask):
            hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return self.classifier(self.dropout(pooled))

    def encode(texts):
        b = tokenizer(list(texts), padding=True, truncation=True, max_length=64,
                      return_tensors="pt")
        return b["input_ids"], b["attention_mask"]

    def accuracy(ds) -> float:
        model.eval()
        y = torch.as_tensor(np.asarray(ds.targets))
        correct = 0
        with torch.no_grad():
            for i in range(0, len(ds), 128):
                logits = model(*encode(ds.texts[i:i + 128]))
                correct += int((logits.argmax(1) == y[i:i + 128]).sum())
        model.train()
        return correct / len(ds)

    model = Classifier()
    targets = torch.as_tensor(np.asarray(train.targets))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
    batch = 32
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=args.epochs * math.ceil(len(train) / batch))
    order = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(train), generator=order).tolist()
        for i in range(0, len(train), batch):
            idx = perm[i:i + batch]
            loss = torch.nn.functional.cross_entropy(
                model(*encode([train.texts[j] for j in idx])), targets[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}: val accuracy {accuracy(val):.4f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"seed {args.seed}: test accuracy {accuracy(test):.4f} ({len(test)} texts)")


if __name__ == "__main__":
    main()
