"""`lantern text ...`: the command line of the text-classification application.

Each subcommand is a thin wrapper over a plain function of `apps.text.recipe`.
"""
from __future__ import annotations

import argparse

from apps.common.cli import (HelpFormatter, add_run_args, add_split_seed, add_train_args,
                             add_zoo_commands, lazy_command)

__all__ = ["add_parser", "main"]

EXAMPLES = """examples:
  lantern text train --model fasttext_bag --data rotten-tomatoes --out runs/ft
  lantern text train --model textcnn --data reviews.csv --text-column review --label-column stars
  lantern text train --model minilm_classifier --data rotten-tomatoes --epochs 3 --lr 5e-5
  lantern text eval --checkpoint runs/ft/last.safetensors --data rotten-tomatoes
  lantern text eval --checkpoint runs/ft/last.safetensors --data vader-movies --split all
  lantern text predict --checkpoint runs/ft/last.safetensors "a gorgeous, moving film" "dull"
  cat reviews.txt | lantern text predict --model zoo:fasttext_bag.rotten-tomatoes -
  lantern text embed "first sentence" "second one" --out embeddings.npy
  lantern text tokenizer train --data rotten-tomatoes --kind bpe --vocab-size 8000 --out tok.json
  lantern text zoo-build fasttext_bag.rotten-tomatoes
"""

DATA_HELP = ("a hub source (rotten-tomatoes, vader-movies, vader-amazon, synthetic-reviews), "
             "a .csv/.tsv/.jsonl file, a .txt file of fastText '__label__x text' lines, a "
             "folder of class sub-folders of .txt files, or a folder with train and test files")
TOKENIZERS = "ngrams, wordpiece, bpe, unigram, minilm (the pretrained one) or a tokenizer.json"


def _add_data_args(p, *, split: bool = False) -> None:
    p.add_argument("--data", default="rotten-tomatoes", help=DATA_HELP)
    p.add_argument("--text-column", default="text", help="CSV/TSV/JSONL text column")
    p.add_argument("--label-column", default="label", help="CSV/TSV/JSONL label column")
    p.add_argument("--encoding", default="utf-8", help="the files' text encoding")
    p.add_argument("--skip-empty", action="store_true",
                   help="skip (and count) empty texts instead of failing")
    p.add_argument("--val-fraction", type=float, default=1 / 9,
                   help="share of the non-test data held out for validation (1/9 with the "
                        "default 10%% test part: an 80/10/10 split)")
    add_split_seed(p)
    if split:
        p.add_argument("--split", choices=("train", "val", "test", "all"), default="test")


def _add_model_source(p, *, required: bool = True) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--checkpoint", help="a training checkpoint or exported model")
    g.add_argument("--model", help="zoo:<model>.<weights> (see `lantern text models`)")


def _add_texts(p) -> None:
    p.add_argument("texts", nargs="*", help="texts, or - to read one text per line from stdin")
    p.add_argument("--file", help="read one text per line from this file")
    p.add_argument("--batch-size", type=int, default=64)


def add_parser(sub, name: str = "text", help_: str = "") -> argparse.ArgumentParser:
    tp = sub.add_parser(name, help=help_, description=__doc__, epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = tp.add_subparsers(dest="command", metavar="COMMAND")
    fmt = HelpFormatter

    t = cmds.add_parser("train", help="train a text classifier", formatter_class=fmt)
    t.add_argument("--model", default="fasttext_bag", help="architecture (lantern text models)")
    t.add_argument("--weights", help="a pretrained encoder: zoo:<model>.<tag> or a folder "
                                     "with config.json + model.safetensors (+ tokenizer.json)")
    _add_data_args(t)
    t.add_argument("--tokenizer", help=f"{TOKENIZERS} (default: the model's)")
    t.add_argument("--vocab-size", type=int, default=16000, help="for trained tokenizers")
    t.add_argument("--min-frequency", type=int, default=2,
                   help="rarest token (or word, for ngrams) kept")
    t.add_argument("--ngrams", type=int, default=2, help="fastText word n-grams")
    t.add_argument("--buckets", type=int, default=2 ** 16, help="fastText n-gram hash buckets")
    t.add_argument("--max-length", type=int, help="tokens per text (default: the model's)")
    t.add_argument("--bucket-batches", type=int, default=100, metavar="N",
                   help="length bucketing: each training batch comes from a bucket of N "
                        "batches' texts sorted by length (less padding); 1 = random batches")
    t.add_argument("--embeddings", choices=("random", "minilm"),
                   help="initial token embeddings of a model trained from scratch: random, or "
                        "all-MiniLM-L6-v2's input embeddings (with its tokenizer; Kim's "
                        "'non-static' variant). Default: the model's")
    t.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="an argument of the model's builder, e.g. dim=10 (repeatable; see "
                        "`lantern text models NAME`)")
    add_train_args(t, epochs=None, batch_size=None, lr=None)
    t.add_argument("--optimizer", choices=("sgd", "adam", "adamw", "rmsprop"))
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--scheduler", default="cosine",
                   choices=("cosine", "step", "constant", "onecycle"))
    t.add_argument("--warmup-epochs", type=float, default=0.0)
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--rdrop", type=float, default=0.0, metavar="ALPHA",
                   help="R-Drop: each batch twice through the model (two dropout masks), "
                        "plus ALPHA times the KL divergence between the two predictions "
                        "(costs a second pass; default: off)")
    t.add_argument("--layer-decay", type=float, metavar="FACTOR",
                   help="pretrained encoders: scale each layer's lr by FACTOR per layer "
                        "below the head (e.g. 0.8; biases and norms get no weight decay)")
    t.add_argument("--freeze-encoder", action="store_true",
                   help="train only the head of a pretrained encoder")
    t.add_argument("--freeze-embeddings", action="store_true",
                   help="keep a pretrained encoder's token embeddings fixed (MiniLM: 11.7M of "
                        "its 22.6M parameters), also after --unfreeze-after")
    t.add_argument("--unfreeze-after", type=int, metavar="EPOCHS",
                   help="with --freeze-encoder: unfreeze the encoder after this many epochs")
    t.add_argument("--amp", action="store_true", help="mixed precision (bfloat16 on CPU)")
    t.add_argument("--grad-clip", type=float, default=1.0)
    t.add_argument("--patience", type=int, default=0, help="early stopping patience (0: off)")
    t.add_argument("--no-plots", action="store_true")
    add_run_args(t, out="runs/text")
    t.set_defaults(func=_run("train"))

    e = cmds.add_parser("eval", help="accuracy, macro-F1, per-class report, confusion matrix",
                        formatter_class=fmt)
    _add_model_source(e)
    _add_data_args(e, split=True)
    e.add_argument("--batch-size", type=int, default=128)
    add_run_args(e, out="runs/text-eval")
    e.set_defaults(func=_run("evaluate"))

    pr = cmds.add_parser("predict", help="a label and score per text, as JSON lines",
                         formatter_class=fmt)
    _add_model_source(pr)
    _add_texts(pr)
    pr.add_argument("--max-length", type=int, help="tokens per text (default: training's)")
    pr.add_argument("--sliding-window", type=int, metavar="STRIDE",
                    help="average the scores of windows STRIDE tokens apart instead of "
                         "truncating long texts")
    add_run_args(pr)
    pr.set_defaults(func=_run("predict"))

    em = cmds.add_parser("embed", help="sentence embeddings to a .npy file",
                         formatter_class=fmt)
    _add_model_source(em, required=False)
    _add_texts(em)
    em.add_argument("--out", required=True, help="the .npy file to write")
    em.add_argument("--max-length", type=int, default=256)
    em.add_argument("--no-normalize", action="store_true", help="skip the L2 normalisation")
    add_run_args(em)
    em.set_defaults(func=_run("embed"))

    tk = cmds.add_parser("tokenizer", help="tokenizer tools", formatter_class=fmt)
    tks = tk.add_subparsers(dest="tokenizer_command", metavar="COMMAND")
    tt = tks.add_parser("train", help="train a tokenizer on a data set's training texts",
                        formatter_class=fmt)
    _add_data_args(tt)
    tt.add_argument("--kind", choices=("wordpiece", "bpe", "unigram"), default="wordpiece")
    tt.add_argument("--vocab-size", type=int, default=16000)
    tt.add_argument("--min-frequency", type=int, default=2)
    tt.add_argument("--cased", action="store_true", help="keep upper case")
    tt.add_argument("--out", required=True, help="the tokenizer.json to write")
    tt.add_argument("--seed", type=int, default=0)
    tt.add_argument("--debug", action="store_true")
    tt.set_defaults(func=_run("train_tokenizer"))
    tk.set_defaults(func=None, _parser=tk)

    x = cmds.add_parser("export", help="the model as safetensors + JSON metadata",
                        formatter_class=fmt)
    _add_model_source(x)
    x.add_argument("--out", required=True, help="the .safetensors file to write")
    x.add_argument("--debug", action="store_true")
    x.set_defaults(func=_run("export"))

    add_zoo_commands(cmds, "text", "fasttext_bag.rotten-tomatoes", _run)

    tp.set_defaults(func=None, _parser=tp)
    return tp


def _run(name: str):
    return lazy_command(f"{__package__}.recipe", name)


def main(argv=None) -> int:
    """`python -m apps.text ...` (the same as `lantern text ...`)."""
    import sys
    from apps.cli import main as lantern_main
    return lantern_main(["text", *(sys.argv[1:] if argv is None else argv)])
