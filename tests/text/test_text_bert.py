"""BERT with transformers' names against transformers itself: a tiny random BertModel and
BertForSequenceClassification saved by transformers (safetensors, torch.save .bin, and a
legacy gamma/beta checkpoint; tests/fixtures/text_tiny_bert*, from
scripts/make_text_bert_fixture.py) load without torch and give its hidden states, pooled
outputs, logits and gradients; the checkpoint and config errors name what is wrong; and
(realdata) all-MiniLM-L6-v2 from the hub gives the reference sentence embeddings."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import framework as fw
import models
from models.text import (BertClassifier, BertConfig, BertForSequenceClassification, BertModel,
                         encode_sentences, load_bert, mean_pooling)
from models.text.bert import MINILM_L6_CONFIG, hf_bert_state_dict

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TINY, TINY_CLS, TINY_LEGACY = (FIXTURES / n for n in
                               ("text_tiny_bert", "text_tiny_bert_cls", "text_tiny_bert_legacy"))
REF = np.load(FIXTURES / "text_tiny_bert_ref.npz", allow_pickle=False)


def batch():
    return tuple(fw.tensor(REF[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))


def safetensors_keys(path: Path) -> dict:
    from safetensors.numpy import load_file
    return load_file(str(path))


def tiny_config(**kw) -> BertConfig:
    return BertConfig.from_dict({**json.loads((TINY / "config.json").read_text()), **kw})


# --- transformers parity ------------------------------------------------------------------

@pytest.mark.parametrize("files", ["folder", "bin"])
def test_bert_model_matches_transformers(files):
    source = TINY if files == "folder" else [TINY / "config.json", TINY / "pytorch_model.bin"]
    model, config = load_bert(source)
    assert type(model) is BertModel and not model.training
    assert config.hidden_size == 16 and config.num_hidden_layers == 2 and \
        config.layer_norm_eps == 1e-12
    with fw.no_grad():
        out = model(*batch())
    # every position, padding included: transformers masks keys, not queries
    np.testing.assert_allclose(out.last_hidden_state.numpy(), REF["last_hidden_state"],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.pooler_output.numpy(), REF["pooler_output"], rtol=1e-5,
                               atol=1e-5)
    assert set(model.state_dict()) == set(safetensors_keys(TINY / "model.safetensors"))


@pytest.mark.parametrize("folder", [TINY_CLS, TINY_LEGACY], ids=["safetensors", "legacy-bin"])
def test_sequence_classifier_logits_and_gradients_match_transformers(folder):
    model, config = load_bert(folder)
    assert type(model) is BertForSequenceClassification and config.num_labels == 3
    logits = model(*batch())
    np.testing.assert_allclose(logits.detach().numpy(), REF["logits"], rtol=1e-5, atol=1e-5)
    (logits * fw.tensor(REF["grad_weights"])).sum().backward()
    names = [k[5:] for k in REF.files if k.startswith("grad/")]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), REF[f"grad/{name}"], rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    assert set(model.state_dict()) == set(safetensors_keys(TINY_CLS / "model.safetensors"))


def test_legacy_checkpoint_is_the_same_model():
    new, _ = load_bert(TINY_CLS)
    old, _ = load_bert(TINY_LEGACY)
    a, b = new.state_dict(), old.state_dict()
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k].detach().numpy(), b[k].detach().numpy(), err_msg=k)


def test_padding_does_not_change_a_rows_states():
    model, _ = load_bert(TINY)
    ids, mask, types = batch()
    with fw.no_grad():
        full = model(ids, mask, types).last_hidden_state.numpy()
        for i, n in enumerate(REF["attention_mask"].sum(1)):
            alone = model(ids[i:i + 1, :n], mask[i:i + 1, :n], types[i:i + 1, :n])
            np.testing.assert_allclose(alone.last_hidden_state.numpy()[0], full[i, :n],
                                       rtol=1e-5, atol=1e-5)
        unmasked = model(ids, None, types).last_hidden_state.numpy()
    assert not np.allclose(unmasked[2, :2], full[2, :2], atol=1e-3)   # the mask is used


def test_bert_classifier_pools_the_real_tokens():
    encoder, _ = load_bert(TINY)
    ids, mask, types = batch()
    hidden = REF["last_hidden_state"]
    m = REF["attention_mask"][..., None].astype(np.float32)
    pooled = {"mean": (hidden * m).sum(1) / m.sum(1),
              "max": np.where(m > 0, hidden, -np.inf).max(1), "cls": hidden[:, 0]}
    for how, want in pooled.items():
        model, _ = load_bert(TINY, pooling=how, num_classes=4)
        assert type(model) is BertClassifier and model.bert.pooler is None
        assert not any(k.startswith("bert.pooler") for k in model.state_dict())
        with fw.no_grad():
            logits = model(ids, mask, types).numpy()
        w, b = model.classifier.weight.detach().numpy(), model.classifier.bias.detach().numpy()
        np.testing.assert_allclose(logits, want @ w.T + b, rtol=1e-5, atol=1e-5, err_msg=how)
    np.testing.assert_allclose(mean_pooling(fw.tensor(hidden), mask).numpy(), pooled["mean"],
                               rtol=1e-6, atol=1e-6)
    emb = encode_sentences(encoder, ids, mask, types).detach().numpy()
    np.testing.assert_allclose(emb, pooled["mean"] / np.linalg.norm(pooled["mean"], axis=1,
                                                                    keepdims=True), atol=1e-5)
    wrapped = BertClassifier.from_encoder(encoder, num_classes=2)
    assert wrapped.bert is encoder and encoder.pooler is None
    # a classifier checkpoint's encoder and head load into the pooled classifier too
    cls_pooled, _ = load_bert(TINY_CLS, pooling="cls")
    ref_cls, _ = load_bert(TINY_CLS)
    np.testing.assert_array_equal(cls_pooled.classifier.weight.detach().numpy(),
                                  ref_cls.classifier.weight.detach().numpy())


def test_training_mode_backward_and_dropout_from_config():
    model = models.get_model("bert_classifier", pooling="mean", num_classes=3,
                             config=tiny_config(hidden_dropout_prob=0.2,
                                                attention_probs_dropout_prob=0.3).to_dict())
    assert model.dropout.p == 0.2 and model.bert.embeddings.dropout.p == 0.2
    assert model.bert.encoder.layer[1].attention.self.dropout_p == 0.3
    hf = models.get_model("bert_classifier", num_classes=3, config=tiny_config().to_dict(),
                          classifier_dropout=0.4)
    assert type(hf) is BertForSequenceClassification and hf.dropout.p == 0.4
    model.train()
    ids, mask, types = batch()
    a = model(ids, mask, types)
    a.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name
    assert not np.allclose(a.detach().numpy(), model(ids, mask, types).detach().numpy())
    assert (model.bert.embeddings.word_embeddings.weight.grad.numpy()[0] == 0).all()   # pad row


def test_initialisation_follows_transformers():
    model = models.get_model("bert", config=tiny_config(initializer_range=0.05).to_dict())
    w = model.encoder.layer[0].intermediate.dense.weight.detach().numpy()
    assert abs(w.std() - 0.05) < 0.01 and (model.encoder.layer[0].intermediate.dense.bias
                                          .detach().numpy() == 0).all()
    assert (model.embeddings.word_embeddings.weight.detach().numpy()[0] == 0).all()
    assert (model.embeddings.LayerNorm.weight.detach().numpy() == 1).all()


# --- configs, checkpoints and their errors -----------------------------------------------

def test_config_from_json_and_unsupported_models(tmp_path):
    cls_cfg = BertConfig.from_json(TINY_CLS / "config.json")
    assert cls_cfg.num_labels == 3 and cls_cfg.architectures == ("BertForSequenceClassification",)
    assert BertConfig.from_dict(cls_cfg.to_dict()) == cls_cfg
    base = json.loads((TINY / "config.json").read_text())
    for change, pattern in [({"model_type": "roberta"}, "model_type 'roberta' is not supported"),
                            ({"architectures": ["BertForTokenClassification"]},
                             "architecture 'BertForTokenClassification' is not supported"),
                            ({"position_embedding_type": "relative_key"},
                             "position_embedding_type 'relative_key'"),
                            ({"hidden_act": "mish"}, "hidden_act 'mish' is not supported"),
                            ({"num_attention_heads": 5}, "not a multiple of")]:
        folder = tmp_path / pattern.split()[0].strip("'")
        shutil.copytree(TINY, folder)
        path = folder / "config.json"
        path.write_text(json.dumps({**base, **change}))
        with pytest.raises(ValueError, match=pattern) as info:
            load_bert(folder)
        assert str(path) in str(info.value)
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="bad.json: not a JSON config"):
        BertConfig.from_json(tmp_path / "bad.json")


def test_checkpoint_errors_name_the_keys(tmp_path):
    from safetensors.numpy import save_file
    sd = safetensors_keys(TINY / "model.safetensors")
    config = TINY / "config.json"

    def write(name, tensors):
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path))
        return [config, path]
    missing = {k: v for k, v in sd.items() if k != "encoder.layer.1.output.dense.weight"}
    with pytest.raises(ValueError, match=r"missing.safetensors: does not match BertModel.*"
                                         r"missing from the file: encoder.layer.1.output.dense"):
        load_bert(write("missing", missing))
    shaped = {**sd, "embeddings.word_embeddings.weight": np.zeros((98, 16), np.float32)}
    with pytest.raises(ValueError, match=r"embeddings.word_embeddings.weight file \[98, 16\] vs "
                                         r"model \[99, 16\]"):
        load_bert(write("shaped", shaped))
    extra = {**sd, "encoder.layer.2.output.dense.bias": np.zeros(16, np.float32)}
    with pytest.raises(ValueError, match="not in the model: encoder.layer.2.output.dense.bias"):
        load_bert(write("extra", extra))
    loose, _ = load_bert(write("extra2", extra), strict=False)      # non-strict: loads the rest
    want, _ = load_bert(TINY)
    np.testing.assert_array_equal(loose.pooler.dense.weight.detach().numpy(),
                                  want.pooler.dense.weight.detach().numpy())
    # the bert. prefix, position_ids and masked-LM heads of pre-training checkpoints are fine
    pretraining = {"bert." + k: v for k, v in sd.items()} | {
        "bert.embeddings.position_ids": np.arange(40)[None],
        "cls.predictions.bias": np.zeros(99, np.float32)}
    model, _ = load_bert(write("pretraining", pretraining))
    assert type(model) is BertModel
    with pytest.raises(FileNotFoundError, match="no model.safetensors or pytorch_model.bin"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text(config.read_text())
        load_bert(tmp_path / "empty")
    with pytest.raises(ValueError, match="one config .json and one weights file"):
        load_bert([config])


def test_hf_state_dict_names():
    got = hf_bert_state_dict({"bert.embeddings.LayerNorm.gamma": 1,
                              "bert.embeddings.LayerNorm.beta": 2,
                              "bert.embeddings.position_ids": 3, "classifier.weight": 4,
                              "cls.predictions.decoder.weight": 5,
                              "encoder.layer.0.output.LayerNorm.gamma": 6})
    assert got == {"embeddings.LayerNorm.weight": 1, "embeddings.LayerNorm.bias": 2,
                   "classifier.weight": 4, "encoder.layer.0.output.LayerNorm.weight": 6}


def test_input_errors_name_both_sizes():
    model, _ = load_bert(TINY)
    ids, mask, types = batch()
    with pytest.raises(ValueError, match=r"BertModel: input_ids holds id 99 \(a vocabulary of at "
                                         r"least 100\) but the word embedding table has 99 rows"):
        model(fw.tensor([[2, 99, 3]]))
    with pytest.raises(ValueError, match=r"token_type_ids holds id 2 .* token type embedding "
                                         r"table has 2 rows"):
        model(ids, mask, fw.full(tuple(ids.shape), 2, dtype=fw.int64))
    with pytest.raises(ValueError, match="41 tokens are longer than max_position_embeddings 40"):
        model(fw.ones(1, 41, dtype=fw.int64))
    with pytest.raises(TypeError, match="not a BertModel"):
        encode_sentences(fw.nn.Linear(2, 2), ids)


# --- the zoo ------------------------------------------------------------------------------

def test_minilm_records_and_builders():
    w = models.get_weights("minilm_l6")
    assert w.name == "minilm_l6.sentence-transformers"
    assert w.file == "hub:minilm-l6/model.safetensors" and w.categories == ()
    assert w.sha256 == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert w.transforms == {"tokenizer": "hub:minilm-l6/tokenizer.json", "max_length": 256,
                            "pooling": "mean", "normalize": True}
    assert w.num_params == models.num_parameters("minilm_l6") == 22_713_216
    assert w.metrics["cosine"] == 0.404559
    json.dumps(w.meta())
    assert models.num_parameters("bert") == 109_482_240           # bert-base-uncased
    clf = models.get_model("minilm_classifier", num_classes=5)
    assert type(clf) is BertClassifier and clf.pooling == "mean"
    assert clf.bert.config == BertConfig(**MINILM_L6_CONFIG)
    assert models.num_parameters("minilm_classifier") == 22_713_216 - 384 * 385 + 384 * 2 + 2


def test_layer_decay_groups():
    from models.text.bert import layer_decay_groups
    clf = BertClassifier(tiny_config(), num_classes=3)
    layers = clf.bert.config.num_hidden_layers
    groups = layer_decay_groups(clf, 1e-3, 0.5, weight_decay=0.01)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in clf.parameters())   # each once
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = dict(clf.named_parameters())
    assert lr_of[id(named["classifier.weight"])] == (1e-3, 0.01)
    assert lr_of[id(named["classifier.bias"])] == (1e-3, 0.0)
    top = f"bert.encoder.layer.{layers - 1}.output.dense.weight"
    assert lr_of[id(named[top])] == (1e-3 * 0.5, 0.01)
    assert lr_of[id(named["bert.encoder.layer.0.attention.self.query.weight"])][0] == \
        pytest.approx(1e-3 * 0.5 ** layers)
    assert lr_of[id(named["bert.embeddings.word_embeddings.weight"])] == \
        (pytest.approx(1e-3 * 0.5 ** (layers + 1)), 0.01)
    assert lr_of[id(named["bert.embeddings.LayerNorm.weight"])][1] == 0.0
    opt = fw.optim.AdamW(groups, lr=1e-3)          # the optimizer takes them as they are
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in groups]
    with pytest.raises(ValueError, match="layer_decay"):
        layer_decay_groups(clf, 1e-3, 0.0)
    with pytest.raises(ValueError, match="BertModel"):
        layer_decay_groups(fw.nn.Linear(2, 2), 1e-3, 0.8)


# --- all-MiniLM-L6-v2 from the hub -------------------------------------------------------

ORACLE = [([101, 2023, 2003, 2019, 2742, 6251, 102],
           [0.067657, 0.063496, 0.048713, 0.079305, 0.037448]),
          ([101, 2169, 6251, 2003, 4991, 102], [0.086439, 0.102763, 0.005395, 0.002044, -0.009963])]


@pytest.fixture(scope="module")
def minilm():
    return models.get_model("minilm_l6", weights="sentence-transformers").eval()


@pytest.mark.realdata
def test_minilm_reproduces_the_reference_embeddings(minilm):
    embs = []
    for ids, first5 in ORACLE:
        with fw.no_grad():
            e = encode_sentences(minilm, [ids], [[1] * len(ids)]).numpy()[0]
        np.testing.assert_allclose(e[:5], first5, atol=1e-5)
        embs.append(e)
    assert abs(float(embs[0] @ embs[1]) - 0.404559) < 1e-5
    w = models.get_weights("minilm_l6")
    np.testing.assert_allclose(embs[0][:5], w.metrics["embedding_first5"][0], atol=1e-5)


@pytest.mark.realdata
def test_minilm_matches_transformers_on_a_padded_batch(minilm):
    z = np.load(FIXTURES / "text_minilm_ref.npz", allow_pickle=False)
    assert z["input_ids"][0, :7].tolist() == ORACLE[0][0]
    with fw.no_grad():
        e = encode_sentences(minilm, fw.tensor(z["input_ids"]), fw.tensor(z["attention_mask"]))
    np.testing.assert_allclose(e.numpy(), z["embeddings"], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(e.numpy(), axis=1), 1.0, atol=1e-6)


@pytest.mark.realdata
def test_load_bert_reads_the_hub_folder(minilm):
    import datasets
    model, config = load_bert(datasets.fetch("minilm-l6"))
    assert config == BertConfig(**MINILM_L6_CONFIG, architectures=("BertModel",))
    a, b = model.state_dict(), minilm.state_dict()
    assert list(a) == list(b)
    assert all(np.array_equal(a[k].detach().numpy(), b[k].detach().numpy()) for k in a)
    clf, _ = load_bert(datasets.fetch("minilm-l6"), pooling="mean", num_classes=2)
    ids = fw.tensor([ORACLE[0][0]])
    with fw.no_grad():
        logits = clf(ids)
        feats = encode_sentences(clf, ids, normalize=False)
    head = clf.classifier
    want = feats.numpy() @ head.weight.detach().numpy().T + head.bias.detach().numpy()
    np.testing.assert_allclose(logits.numpy(), want, rtol=1e-5, atol=1e-5)
