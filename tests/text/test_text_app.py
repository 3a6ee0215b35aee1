"""`lantern text` end to end on the generated corpus: train, eval, predict, embed, tokenizer,
export, resume bit for bit, a transformers-style checkpoint as the encoder, and the bad
inputs the issue lists (each one clear line, exit code 1)."""
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import framework as fw
from apps.cli import main
from datasets.text import generate_reviews

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _train(args, out):
    return main(["text", "train", *args, "--out", str(out), "--no-plots"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert _train(["--model", "fasttext_bag", "--data", "synthetic-reviews", "--epochs", "3",
                   "--buckets", "1024"], out) == 0
    return out


def test_train_writes_the_contract(run):
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["test"]) >= {"accuracy", "macro_f1", "count"} and m["test"]["count"] == 60
    assert m["test"]["accuracy"] > 0.7 and m["epochs"] == 3 and m["seconds"] > 0
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "train/tokens_per_s" in header and "val/accuracy" in header
    meta = fw.load(run / "last.safetensors")["meta"]
    assert meta["classes"] == ["negative", "positive"] and '"ngrams"' in meta["encoder"]


def test_eval_predict_export(run, tmp_path, capsys):
    ck = str(run / "last.safetensors")
    assert main(["text", "eval", "--checkpoint", ck, "--data", "synthetic-reviews",
                 "--out", str(tmp_path / "e")]) == 0
    ev = json.loads((tmp_path / "e" / "metrics.json").read_text())["test"]
    assert ev["accuracy"] == json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
    capsys.readouterr()
    texts = ["a wonderful, moving film", "dull and tedious"]
    assert main(["text", "predict", "--checkpoint", ck, *texts]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == texts
    assert all(r["label"] in ("negative", "positive") and 0.5 <= r["score"] <= 1 for r in rows)
    assert abs(sum(rows[0]["scores"].values()) - 1) < 1e-5
    exported = tmp_path / "ft.safetensors"
    assert main(["text", "export", "--checkpoint", ck, "--out", str(exported)]) == 0
    capsys.readouterr()
    assert main(["text", "predict", "--checkpoint", str(exported), *texts]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == rows


def test_predict_stdin_file_and_long_texts(run, tmp_path, monkeypatch, capsys):
    ck = str(run / "last.safetensors")
    long_text = " ".join(["a great film but the plot is dull"] * 600)   # 4,800 words
    monkeypatch.setattr(sys, "stdin", io.StringIO("fine acting\n\nawful script\n"))
    assert main(["text", "predict", "--checkpoint", ck, "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    f = tmp_path / "texts.txt"
    f.write_text(long_text + "\nshort one\n", encoding="utf-8")
    assert main(["text", "predict", "--checkpoint", ck, "--file", str(f)]) == 0
    truncated = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(truncated) == 2
    assert main(["text", "predict", "--checkpoint", ck, long_text, "--sliding-window", "64"]) == 0
    windowed = json.loads(capsys.readouterr().out)
    assert windowed["label"] in ("negative", "positive") and 0 <= windowed["score"] <= 1


def test_resume_continues_bit_for_bit(tmp_path):
    args = ["--model", "fasttext_bag", "--data", "synthetic-reviews", "--scheduler",
            "constant", "--buckets", "512", "--model-arg", "dropout=0.3", "--batch-size", "16",
            "--seed", "2"]
    assert _train(args + ["--epochs", "3"], tmp_path / "full") == 0
    assert _train(args + ["--epochs", "1"], tmp_path / "part") == 0
    assert _train(args + ["--epochs", "3", "--resume", str(tmp_path / "part")],
                  tmp_path / "part") == 0
    a = fw.load(tmp_path / "full" / "last.safetensors")
    b = fw.load(tmp_path / "part" / "last.safetensors")
    for k in a["model"]:
        assert np.array_equal(a["model"][k].numpy(), b["model"][k].numpy()), k
    drop = ("seconds", "train/tokens_per_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in a["history"]] == \
           [{k: v for k, v in r.items() if k not in drop} for r in b["history"]]


@pytest.mark.parametrize("model", ["bilstm_attn", "transformer_encoder"])
def test_other_architectures_train(model, tmp_path):
    assert _train(["--model", model, "--data", "synthetic-reviews", "--epochs", "1",
                   "--vocab-size", "300"], tmp_path) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["test"]["count"] == 60


def _tiny_bert_folder(tmp_path) -> Path:
    """The tiny transformers BERT fixture with a 99-token vocab.txt of the corpus' words."""
    folder = tmp_path / "tiny_bert"
    shutil.copytree(FIXTURES / "text_tiny_bert", folder)
    texts, _ = generate_reviews()
    words = {}
    for t in texts:
        for w in t.lower().replace(",", " ").replace(".", " ").replace("!", " ").split():
            words[w] = words.get(w, 0) + 1
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = special + sorted(words, key=lambda w: -words[w])[:99 - len(special)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return folder


def test_transformers_checkpoint_as_encoder_and_embed(tmp_path, capsys):
    folder = _tiny_bert_folder(tmp_path)
    out = tmp_path / "run"
    assert _train(["--model", "bert_classifier", "--weights", str(folder), "--tokenizer",
                   str(folder), "--data", "synthetic-reviews", "--epochs", "1", "--max-length",
                   "32", "--lr", "1e-3", "--freeze-encoder", "--unfreeze-after", "0"], out) == 0
    emb = tmp_path / "e.npy"
    assert main(["text", "embed", "--checkpoint", str(out / "last.safetensors"), "good film",
                 "bad film", "--out", str(emb)]) == 0
    e = np.load(emb)
    assert e.shape == (2, 16) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)


def test_tokenizer_train(tmp_path):
    out = tmp_path / "tok.json"
    assert main(["text", "tokenizer", "train", "--data", "synthetic-reviews", "--kind", "bpe",
                 "--vocab-size", "400", "--out", str(out)]) == 0
    from datasets.text import HFTokenizer
    tok = HFTokenizer.from_file(out)
    ids = tok.encode_batch(["a good film"])["input_ids"]
    assert tok.vocab_size <= 400 and ids.shape == (1, ids.shape[1]) and ids.max() < 400


def test_bad_inputs_are_one_line(run, tmp_path, capsys):
    ck = str(run / "last.safetensors")
    cases = []
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\ngood,positive\n  ,negative\n", encoding="utf-8")
    cases.append((["text", "train", "--data", str(empty), "--out", str(tmp_path / "o1")],
                  "empty.csv:3"))
    unseen = tmp_path / "unseen.csv"
    unseen.write_text("text,label\ngood,positive\nmeh,neutral\n", encoding="utf-8")
    cases.append((["text", "eval", "--checkpoint", ck, "--data", str(unseen), "--split", "all",
                   "--out", str(tmp_path / "o2")], "neutral"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\ncaf\xe9 good,positive\n".encode("latin-1"))
    cases.append((["text", "train", "--data", str(latin), "--out", str(tmp_path / "o3")],
                  "--encoding latin-1"))
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("review,label\ngood,positive\n", encoding="utf-8")
    cases.append((["text", "train", "--data", str(nocol), "--out", str(tmp_path / "o4")],
                  "review"))
    big_tok = tmp_path / "big_tok"
    big_tok.mkdir()
    folder = _tiny_bert_folder(tmp_path / "a")
    (big_tok / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                                                 + [f"w{i}" for i in range(200)]) + "\n")
    cases.append((["text", "train", "--model", "bert_classifier", "--weights", str(folder),
                   "--tokenizer", str(big_tok), "--data", "synthetic-reviews",
                   "--out", str(tmp_path / "o5")], "205 tokens but the model's embedding"))
    broken = _tiny_bert_folder(tmp_path / "b")
    sd = fw.load(broken / "model.safetensors")
    sd.pop("encoder.layer.1.output.dense.weight")
    sd["pooler.dense.bias"] = fw.zeros(3)
    fw.serialization.save_safetensors(sd, broken / "model.safetensors")
    cases.append((["text", "train", "--model", "bert_classifier", "--weights", str(broken),
                   "--tokenizer", str(broken), "--data", "synthetic-reviews",
                   "--out", str(tmp_path / "o6")], "encoder.layer.1.output.dense.weight"))
    roberta = _tiny_bert_folder(tmp_path / "c")
    cfg = json.loads((roberta / "config.json").read_text())
    cfg["model_type"] = "roberta"
    (roberta / "config.json").write_text(json.dumps(cfg))
    cases.append((["text", "train", "--model", "bert_classifier", "--weights", str(roberta),
                   "--tokenizer", str(roberta), "--data", "synthetic-reviews",
                   "--out", str(tmp_path / "o7")], "roberta"))
    cases.append((["text", "predict", "--checkpoint", ck, "--file", str(tmp_path / "nope")],
                  "nope: no such file"))
    cases.append((["text", "train", "--model", "textcnn", "--tokenizer", "bpe", "--embeddings",
                   "minilm", "--data", "synthetic-reviews", "--out", str(tmp_path / "o8")],
                  "needs MiniLM's tokenizer"))
    cases.append((["text", "train", "--model", "minilm_classifier", "--embeddings", "minilm",
                   "--data", "synthetic-reviews", "--out", str(tmp_path / "o9")],
                  "not minilm_classifier"))
    cases.append((["text", "train", "--data", "synthetic-reviews", "--bucket-batches", "0",
                   "--out", str(tmp_path / "o10")], "--bucket-batches must be at least 1"))
    cases.append((["text", "train", "--model", "fasttext_bag", "--layer-decay", "0.8",
                   "--data", "synthetic-reviews", "--out", str(tmp_path / "o11")],
                  "--layer-decay applies to pretrained encoders"))
    for argv, needle in cases:
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, (argv, err)


@pytest.mark.realdata
def test_minilm_embed_matches_the_reference(tmp_path):
    out = tmp_path / "e.npy"
    assert main(["text", "embed", "This is an example sentence", "Each sentence is converted",
                 "--out", str(out)]) == 0
    e = np.load(out)
    np.testing.assert_allclose(e[0, :5], [0.067657, 0.063496, 0.048713, 0.079305, 0.037448],
                               atol=1e-5)
    np.testing.assert_allclose(e[1, :5], [0.086439, 0.102763, 0.005395, 0.002044, -0.009963],
                               atol=1e-5)
    assert abs(float(e[0] @ e[1]) - 0.404559) < 1e-5


def test_shipped_fasttext_zoo_entry(capsys):
    """The in-repo fastText weights load by name, hash-checked, and classify obvious reviews."""
    texts = ["a gorgeous, witty and moving film", "a dull, lifeless and tedious mess"]
    assert main(["text", "predict", "--model", "zoo:fasttext_bag.rotten-tomatoes", *texts]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == ["fresh", "rotten"]
    assert main(["text", "models", "fasttext_bag"]) == 0
    assert "0.7611" in capsys.readouterr().out


def test_cache_zoo_entry_not_built_says_how(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANTERN_HOME", str(tmp_path))
    assert main(["text", "predict", "--model", "zoo:textcnn.rotten-tomatoes", "good"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lantern text zoo-build textcnn.rotten-tomatoes" in err


@pytest.mark.realdata
def test_shipped_fasttext_reaches_its_recorded_accuracy(tmp_path):
    """On the real corpus's test split, and on people-rated movie sentences it never saw."""
    import models
    w = models.get_weights("fasttext_bag.rotten-tomatoes")
    for data, split, key in (("rotten-tomatoes", "test", "accuracy"),
                             ("vader-movies", "all", "vader_movies_accuracy")):
        out = tmp_path / data
        assert main(["text", "eval", "--model", "zoo:fasttext_bag.rotten-tomatoes", "--data",
                     data, "--split", split, "--out", str(out)]) == 0
        acc = json.loads((out / "metrics.json").read_text())[split]["accuracy"]
        assert abs(acc - w.metrics[key]) < 1e-3, (data, acc)


@pytest.mark.realdata
def test_textcnn_starts_from_minilm_embeddings(tmp_path):
    """--embeddings minilm (TextCNN's default): MiniLM's tokenizer, and its input embedding
    table as the model's starting embeddings."""
    import argparse
    import models
    from apps.common.modelfiles import zoo_weights
    from apps.text import recipe
    from datasets.text import HFTokenizer
    args = argparse.Namespace(model="textcnn", model_arg=[], embeddings=None, tokenizer=None,
                              epochs=None, batch_size=None, lr=None, optimizer=None,
                              weight_decay=None, max_length=None, weights=None)
    recipe._fill_presets(args)
    assert args.embeddings == "minilm" and args.tokenizer == "minilm" and args.epochs == 3
    encoder = recipe.build_encoder(args.tokenizer, [], args)
    assert isinstance(encoder, HFTokenizer) and encoder.vocab_size == 30522
    model, kwargs, start = recipe.build_model(args, 2, encoder)
    table = models.load_weights_file(zoo_weights(f"zoo:{recipe.MINILM}"))[
        "embeddings.word_embeddings.weight"]
    assert kwargs["embed_dim"] == 384 and "minilm" in start
    np.testing.assert_array_equal(model.embedding.weight.detach().numpy(), np.asarray(table))


def test_rdrop_trains(tmp_path):
    """`--rdrop` runs the two-pass R-Drop loss end to end, and a negative alpha is refused."""
    assert _train(["--model", "textcnn", "--data", "synthetic-reviews", "--epochs", "2",
                   "--embeddings", "random", "--tokenizer", "wordpiece", "--vocab-size", "500",
                   "--rdrop", "1.0"], tmp_path) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["test"]["accuracy"] > 0.6, m
    assert _train(["--model", "fasttext_bag", "--data", "synthetic-reviews", "--rdrop", "-1"],
                  tmp_path / "bad") == 1


def test_freeze_embeddings_keeps_token_embeddings(tmp_path):
    """--freeze-embeddings keeps the pretrained token embeddings as loaded, also after
    --unfreeze-after makes the rest of the encoder trainable; the rest is trained. A model
    without a pretrained encoder refuses it."""
    from safetensors.numpy import load_file
    folder = _tiny_bert_folder(tmp_path)
    out = tmp_path / "run"
    assert _train(["--model", "bert_classifier", "--weights", str(folder), "--tokenizer",
                   str(folder), "--data", "synthetic-reviews", "--epochs", "1", "--max-length",
                   "32", "--lr", "1e-3", "--freeze-encoder", "--unfreeze-after", "0",
                   "--freeze-embeddings"], out) == 0
    before = load_file(str(folder / "model.safetensors"))
    after = fw.load(out / "last.safetensors")["model"]
    np.testing.assert_array_equal(after["bert.embeddings.word_embeddings.weight"].numpy(),
                                  before["embeddings.word_embeddings.weight"])
    assert not np.array_equal(after["bert.embeddings.position_embeddings.weight"].numpy(),
                              before["embeddings.position_embeddings.weight"])
    assert _train(["--model", "textcnn", "--data", "synthetic-reviews", "--freeze-embeddings"],
                  tmp_path / "bad") == 1


def test_split_seed_is_kept_apart_from_seed_and_followed_by_eval(tmp_path):
    """--seed changes the training's randomness but not the split (default split seed 0);
    --split-seed draws another split; eval without the flag uses the checkpoint's split."""
    from apps.common.cli import resolve_split_seed
    from datasets.text import open_text_dataset
    out = tmp_path / "run"
    assert _train(["--model", "fasttext_bag", "--data", "synthetic-reviews", "--epochs", "2",
                   "--buckets", "1024", "--seed", "4", "--split-seed", "2"], out) == 0
    trained = json.loads((out / "metrics.json").read_text())["test"]
    ck = out / "last.safetensors"
    assert fw.load(ck)["meta"]["args"]["split_seed"] == 2
    assert main(["text", "eval", "--checkpoint", str(ck), "--data", "synthetic-reviews",
                 "--out", str(tmp_path / "e")]) == 0
    ev = json.loads((tmp_path / "e" / "metrics.json").read_text())["test"]
    assert (ev["accuracy"], ev["count"]) == (trained["accuracy"], trained["count"])
    tests = {s: open_text_dataset("synthetic-reviews", split="test", seed=s).texts
             for s in (0, 2)}
    assert tests[0] != tests[2]

    class Args:
        split_seed = None
    assert resolve_split_seed(Args()) == 0
    assert resolve_split_seed(Args(), {"args": {"seed": 7}}) == 7  # from before the flag
    assert resolve_split_seed(Args(), {"args": {"seed": 7, "split_seed": 1}}) == 1
    given = Args()
    given.split_seed = 5
    assert resolve_split_seed(given, {"args": {"split_seed": 1}}) == 5
