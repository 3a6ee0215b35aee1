"""Write the BERT fixtures of tests/text/test_text_bert.py from HuggingFace transformers.

Run with a Python that has torch, transformers and sentence-transformers (not the project's
venv; this script imports nothing from the project):

    /work/scratch/tv/bin/python scripts/make_text_bert_fixture.py [--minilm DIR]

1. A tiny random BERT (2 layers, hidden 16, 4 heads, vocab 99), weights drawn wider than
   transformers' N(0, 0.02) so attention and masking matter, written as transformers
   writes checkpoints:
     tests/fixtures/text_tiny_bert/         config.json, model.safetensors (a BertModel,
                                            bare keys), pytorch_model.bin (its state dict
                                            through torch.save)
     tests/fixtures/text_tiny_bert_cls/     BertForSequenceClassification, 3 labels
                                            (`bert.` prefix + classifier), save_pretrained
     tests/fixtures/text_tiny_bert_legacy/  the same classifier as an old checkpoint:
                                            LayerNorm.gamma/beta names, the
                                            embeddings.position_ids buffer, the legacy
                                            (non-zip) torch.save format
   and tests/fixtures/text_tiny_bert_ref.npz: a padded batch (input_ids, attention_mask,
   token_type_ids), BertModel's last_hidden_state and pooler_output, the classifier's logits
   (eval mode), and the gradients of sum(logits * grad_weights) for every parameter of the
   classifier (keys "grad/<name>").
2. all-MiniLM-L6-v2 from the hub's cache folder (`datasets.fetch("minilm-l6")`, default
   $LANTERN_HOME/minilm-l6 or ~/.cache/lantern/minilm-l6): transformers' tokenizer and
   BertModel on the oracle sentences and five more, padded in one batch; mean pooling over
   attention_mask then L2 normalisation, checked against sentence-transformers on the same
   folder -> tests/fixtures/text_minilm_ref.npz (ids, mask, embeddings, sentences).
"""
from __future__ import annotations

import argparse
import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import BertConfig, BertForSequenceClassification, BertModel

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

TINY = dict(vocab_size=99, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=32, hidden_act="gelu", max_position_embeddings=40,
            type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0,
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02)

SENTENCES = ["This is an example sentence", "Each sentence is converted",
             "The quick brown fox jumps over the lazy dog.",
             "Lantern runs MiniLM without torch!",
             "A man is playing a guitar on the stage while the crowd sings along loudly.",
             "Hello", "Sentence embeddings: mean pooling, then L2 normalisation."]


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Weights ~ N(0, 0.3), biases ~ N(0, 0.1), LayerNorm scales ~ 1 + N(0, 0.1): far from
    transformers' init, so every tensor (and each head's attention) shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            z = torch.randn(p.shape, generator=g)
            if name.endswith("LayerNorm.weight"):
                p.copy_(1 + 0.1 * z)
            elif p.dim() == 1:
                p.copy_(0.1 * z)
            else:
                p.copy_(0.3 * z)
        emb = model.get_input_embeddings()
        emb.weight[TINY["pad_token_id"]] = 0


def tiny_batch():
    """Three rows of lengths 7, 5, 2 padded to 7, token types 0/1 within each row."""
    rng = np.random.default_rng(11)
    lengths = [7, 5, 2]
    ids = np.zeros((3, 7), np.int64)
    mask = np.zeros((3, 7), np.int64)
    types = np.zeros((3, 7), np.int64)
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(1, TINY["vocab_size"], n)
        ids[i, 0], ids[i, n - 1] = 2, 3            # [CLS]- and [SEP]-like ids
        mask[i, :n] = 1
        types[i, n // 2:n] = 1
    return ids, mask, types


def write_tiny() -> None:
    torch.manual_seed(0)
    cfg = BertConfig(**TINY)
    encoder = BertModel(cfg).eval()
    randomise(encoder, 1)
    cls_cfg = BertConfig(**TINY, num_labels=3)
    classifier = BertForSequenceClassification(cls_cfg).eval()
    randomise(classifier, 2)

    out = FIXTURES / "text_tiny_bert"
    encoder.save_pretrained(out)                                   # config.json, safetensors
    torch.save(encoder.state_dict(), out / "pytorch_model.bin")
    classifier.save_pretrained(FIXTURES / "text_tiny_bert_cls")

    legacy = FIXTURES / "text_tiny_bert_legacy"
    legacy.mkdir(exist_ok=True)
    sd = OrderedDict()
    for k, v in classifier.state_dict().items():
        if k == "bert.embeddings.token_type_embeddings.weight":   # the old position of the buffer
            sd["bert.embeddings.position_ids"] = torch.arange(TINY["max_position_embeddings"]
                                                              ).expand(1, -1).clone()
        sd[k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta")] = v.clone()
    torch.save(sd, legacy / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    (legacy / "config.json").write_text(
        (FIXTURES / "text_tiny_bert_cls" / "config.json").read_text())

    ids, mask, types = tiny_batch()
    t = {k: torch.from_numpy(v) for k, v in
         (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types))}
    with torch.no_grad():
        enc = encoder(**t)
    logits = classifier(**t).logits
    grad_weights = np.random.default_rng(5).standard_normal(logits.shape).astype(np.float32)
    (logits * torch.from_numpy(grad_weights)).sum().backward()
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
              "last_hidden_state": enc.last_hidden_state.numpy(),
              "pooler_output": enc.pooler_output.numpy(),
              "logits": logits.detach().numpy(), "grad_weights": grad_weights}
    for name, p in classifier.named_parameters():
        arrays[f"grad/{name}"] = p.grad.numpy()
    meta = {"torch": torch.__version__, "transformers": transformers.__version__,
            "attn_implementation": encoder.config._attn_implementation}
    np.savez_compressed(FIXTURES / "text_tiny_bert_ref.npz", meta=json.dumps(meta), **arrays)
    print("tiny BERT:", meta, {k: v.shape for k, v in arrays.items() if "/" not in k})


def write_minilm(folder: Path) -> None:
    from sentence_transformers import SentenceTransformer
    try:   # sentence-transformers >= 6 moved the modules
        from sentence_transformers.sentence_transformer import modules as st_models
    except ImportError:
        from sentence_transformers import models as st_models
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = BertModel.from_pretrained(folder).eval()
    batch = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=1)
    # sentence-transformers on the same folder: Transformer -> mean Pooling -> Normalize
    word = st_models.Transformer(str(folder), max_seq_length=256)
    dim = model.config.hidden_size
    st = SentenceTransformer(modules=[word, st_models.Pooling(dim, "mean"),
                                      st_models.Normalize()], device="cpu")
    st_emb = st.encode(SENTENCES, convert_to_numpy=True, batch_size=len(SENTENCES))
    gap = float(np.abs(st_emb - emb.numpy()).max())
    assert gap < 1e-5, gap
    e = emb.numpy()
    print("MiniLM:", e[:2, :5], "cosine", float(e[0] @ e[1]), "sentence-transformers gap", gap)
    meta = {"torch": torch.__version__, "transformers": transformers.__version__,
            "sentence_transformers_max_abs_gap": gap, "sentences": SENTENCES}
    np.savez_compressed(FIXTURES / "text_minilm_ref.npz", meta=json.dumps(meta),
                        input_ids=batch["input_ids"].numpy(),
                        attention_mask=batch["attention_mask"].numpy(),
                        embeddings=e.astype(np.float32))


def main() -> None:
    home = Path(os.environ.get("LANTERN_HOME", Path.home() / ".cache" / "lantern"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minilm", type=Path, default=home / "minilm-l6",
                    help="the hub's minilm-l6 folder (config.json, model.safetensors, "
                         "tokenizer.json)")
    args = ap.parse_args()
    write_tiny()
    write_minilm(args.minilm)


if __name__ == "__main__":
    main()
