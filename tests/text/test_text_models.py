"""The text model zoo's from-scratch classifiers (fastText bag, TextCNN, BiLSTM/BiGRU with
attention, Transformer encoder) against torch written here with the same weights: logits and
every parameter's gradient, padding invariance, masking, shapes, parameter counts, errors;
and the registry entries of the text domain."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import models

TEXT = ["bert", "bert_classifier", "bigru_attn", "bilstm_attn", "fasttext_bag",
        "minilm_classifier", "minilm_l6", "textcnn", "transformer_encoder"]
CLASSIFIERS = ["fasttext_bag", "textcnn", "bilstm_attn", "bigru_attn", "transformer_encoder"]
V, C, PAD = 50, 3, 0


def small(name: str, **kw):
    """A small instance of a from-scratch classifier (vocab 50, 3 classes)."""
    sizes = {"fasttext_bag": dict(dim=12),
             "textcnn": dict(embed_dim=10, widths=(2, 3, 5), channels=6),
             "bilstm_attn": dict(embed_dim=10, hidden=7),
             "bigru_attn": dict(embed_dim=10, hidden=7),
             "transformer_encoder": dict(d_model=16, heads=4, layers=2, ffn=24, max_len=20)}
    return models.get_model(name, vocab_size=V, num_classes=C, pad_id=PAD,
                            **{**sizes[name], **kw})


def padded_batch(lengths, length=None, seed=0):
    """Right-padded random ids (no PAD inside a text) and the mask, as int64 arrays."""
    rng = np.random.default_rng(seed)
    length = length or max(lengths)
    ids = np.full((len(lengths), length), PAD, np.int64)
    mask = np.zeros((len(lengths), length), np.int64)
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(1, V, n)
        mask[i, :n] = 1
    return ids, mask


def num_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# --- registry -----------------------------------------------------------------------------

def test_every_text_model_is_registered_keyword_only_with_a_docstring():
    assert set(TEXT) <= set(models.list_models("text"))
    for name in TEXT:
        entry = models.get_entry(name)
        assert entry.domain == "text" and entry.doc, name
        params = inspect.signature(entry.builder).parameters.values()
        assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params), name
        assert models.num_parameters(name) > 0       # buildable with defaults (zoo list)


@pytest.mark.parametrize("name", CLASSIFIERS + ["bert_classifier", "minilm_classifier"])
def test_num_classes_sizes_only_the_head(name):
    kw = {} if "bert" in name or "minilm" in name else dict(vocab_size=V)
    if name == "bert_classifier":
        kw = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=8, vocab_size=V)
    a = [(k, tuple(v.shape)) for k, v in models.get_model(name, num_classes=7, **kw)
         .state_dict().items()]
    b = [(k, tuple(v.shape)) for k, v in models.get_model(name, num_classes=9, **kw)
         .state_dict().items()]
    assert [k for k, _ in a] == [k for k, _ in b]
    differ = [(x[0], x[1][0], y[1][0]) for x, y in zip(a, b) if x != y]
    assert len(differ) == 2 and {d[1:] for d in differ} == {(7, 9)}, differ


def test_num_params_follow_the_architectures():
    e, h, d = 10, 7, 12
    assert num_params(small("fasttext_bag")) == V * d + d * C + C
    assert num_params(small("textcnn")) == V * e + sum(6 * e * w + 6 for w in (2, 3, 5)) + \
        18 * C + C
    lstm = 2 * (4 * h * e + 4 * h * h + 8 * h)
    gru = 2 * (3 * h * e + 3 * h * h + 6 * h)
    attn = (2 * h) * (2 * h) + 2 * h + 2 * h
    assert num_params(small("bilstm_attn")) == V * e + lstm + attn + 2 * h * C + C
    assert num_params(small("bigru_attn")) == V * e + gru + attn + 2 * h * C + C
    layer = 16 * 48 + 48 + 16 * 16 + 16 + 16 * 24 + 24 + 24 * 16 + 16 + 4 * 16
    assert num_params(small("transformer_encoder")) == V * 16 + 20 * 16 + 2 * layer + 32 + \
        16 * C + C
    assert models.num_parameters("fasttext_bag") == 30522 * 100 + 100 * 2 + 2


# --- torch references ---------------------------------------------------------------------

def _torch_reference(torch, name: str, model):
    """The same classifier written in torch (a Module with the same attribute names, so the
    framework's state dict loads key for key)."""
    tnn, tF = torch.nn, torch.nn.functional

    def mask_of(ids, mask):
        return torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()

    class Ref(tnn.Module):
        pass
    ref = Ref()
    if name == "fasttext_bag":
        dim = model.embedding.embedding_dim
        ref.embedding = tnn.EmbeddingBag(V, dim, mode="sum", padding_idx=PAD)
        ref.dropout = tnn.Dropout(0.0)
        ref.fc = tnn.Linear(dim, C)

        def forward(ids, mask):
            w = mask_of(ids, mask).float()
            w = w / w.sum(1, keepdim=True).clamp_min(1.0)
            return ref.fc(ref.embedding(ids, per_sample_weights=w))
    elif name == "textcnn":
        e = model.embedding.embedding_dim
        ref.embedding = tnn.Embedding(V, e, padding_idx=PAD)
        ref.convs = tnn.ModuleList([tnn.Conv1d(e, 6, w) for w in model.widths])
        ref.dropout = tnn.Dropout(0.5)
        ref.fc = tnn.Linear(6 * len(model.widths), C)

        def forward(ids, mask):
            m = mask_of(ids, mask)
            x = ref.embedding(ids) * m.unsqueeze(-1).float()
            x = tF.pad(x.transpose(1, 2), (0, max(model.widths) - 1))
            feats = [tF.relu(conv(x))[:, :, :ids.shape[1]].masked_fill(
                ~m.unsqueeze(1), float("-inf")).amax(2).clamp_min(0.0) for conv in ref.convs]
            return ref.fc(ref.dropout(torch.cat(feats, 1)))
    elif name in ("bilstm_attn", "bigru_attn"):
        e, h = model.embedding.embedding_dim, model.rnn.hidden_size
        ref.embedding = tnn.Embedding(V, e, padding_idx=PAD)
        ref.dropout = tnn.Dropout(0.3)
        ref.rnn = (tnn.LSTM if name == "bilstm_attn" else tnn.GRU)(
            e, h, batch_first=True, bidirectional=True)
        ref.attention = tnn.Module()
        ref.attention.proj = tnn.Linear(2 * h, 2 * h)
        ref.attention.score = tnn.Linear(2 * h, 1, bias=False)
        ref.fc = tnn.Linear(2 * h, C)

        def forward(ids, mask):
            m = mask_of(ids, mask)
            lengths = m.sum(1)
            packed = tnn.utils.rnn.pack_padded_sequence(ref.embedding(ids), lengths,
                                                        batch_first=True, enforce_sorted=False)
            out, _ = tnn.utils.rnn.pad_packed_sequence(ref.rnn(packed)[0], batch_first=True,
                                                       total_length=ids.shape[1])
            s = ref.attention.score(torch.tanh(ref.attention.proj(out))).squeeze(-1)
            a = torch.softmax(s.masked_fill(~m, float("-inf")), 1)
            return ref.fc((a.unsqueeze(-1) * out).sum(1))
    else:
        d = model.embedding.embedding_dim
        layer = model.encoder.layers[0]
        ref.embedding = tnn.Embedding(V, d, padding_idx=PAD)
        ref.position = tnn.Embedding(model.max_len, d)
        ref.dropout = tnn.Dropout(0.1)
        ref.encoder = tnn.TransformerEncoder(
            tnn.TransformerEncoderLayer(d, layer.self_attn.num_heads,
                                        layer.linear1.out_features, 0.1, activation="gelu",
                                        batch_first=True, norm_first=True),
            len(model.encoder.layers), norm=tnn.LayerNorm(d), enable_nested_tensor=False)
        ref.fc = tnn.Linear(d, C)

        def forward(ids, mask):
            m = mask_of(ids, mask)
            x = ref.embedding(ids) + ref.position.weight[:ids.shape[1]].unsqueeze(0)
            x = ref.encoder(x, src_key_padding_mask=~m)
            if model.pooling == "mean":
                mf = m.unsqueeze(-1).float()
                p = (x * mf).sum(1) / mf.sum(1).clamp_min(1e-9)
            elif model.pooling == "max":
                p = x.masked_fill(~m.unsqueeze(-1), float("-inf")).amax(1)
            else:
                p = x[:, 0]
            return ref.fc(p)
    sd = {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
    assert set(sd) == set(ref.state_dict())            # the same names ...
    ref.load_state_dict(sd)                             # ... and shapes
    ref.eval()
    return ref, forward


CASES = [("fasttext_bag", {}), ("textcnn", {}), ("bilstm_attn", {}), ("bigru_attn", {}),
         ("transformer_encoder", {"pooling": "mean"}), ("transformer_encoder", {"pooling": "max"}),
         ("transformer_encoder", {"pooling": "cls"})]


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{k.get('pooling', '')}" for n, k in CASES])
def test_logits_and_gradients_match_torch(name, kw):
    torch = pytest.importorskip("torch", reason="torch (the parity extra) is not installed")
    model = small(name, **kw).eval()
    if name == "fasttext_bag":     # fastText's zero output layer would hide the embedding grads
        nn.init.normal_(model.fc.weight)
    ref, forward = _torch_reference(torch, name, model)
    ids, mask = padded_batch([9, 4, 1, 6], seed=1)
    for with_mask in (True, False):
        m = mask if with_mask else None
        weights = np.random.default_rng(2).standard_normal((4, C)).astype(np.float32)
        logits = model(fw.tensor(ids), None if m is None else fw.tensor(m))
        (logits * fw.tensor(weights)).sum().backward()
        want = forward(torch.from_numpy(ids), None if m is None else torch.from_numpy(m))
        (want * torch.from_numpy(weights)).sum().backward()
        np.testing.assert_allclose(logits.detach().numpy(), want.detach().numpy(), rtol=1e-5,
                                   atol=1e-5)
        grads = dict(ref.named_parameters())
        for pname, p in model.named_parameters():
            np.testing.assert_allclose(p.grad.numpy(), grads[pname].grad.numpy(), rtol=1e-4,
                                       atol=1e-5, err_msg=f"{name} grad {pname}")
            assert np.abs(p.grad.numpy()).sum() > 0, pname
        model.zero_grad()
        ref.zero_grad()


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{k.get('pooling', '')}" for n, k in CASES])
def test_padding_does_not_change_a_samples_logits(name, kw):
    model = small(name, **kw).eval()
    if name == "fasttext_bag":
        nn.init.normal_(model.fc.weight)
    ids, mask = padded_batch([6, 2, 11, 1], length=14, seed=3)
    with fw.no_grad():
        batch = model(fw.tensor(ids), fw.tensor(mask)).numpy()
        for i, n in enumerate([6, 2, 11, 1]):
            alone = model(fw.tensor(ids[i:i + 1, :n]), fw.tensor(mask[i:i + 1, :n])).numpy()
            np.testing.assert_allclose(batch[i], alone[0], rtol=1e-5, atol=1e-5)
        # the ids under the padding are never read
        noisy = np.where(mask == 1, ids, np.random.default_rng(4).integers(1, V, ids.shape))
        np.testing.assert_allclose(model(fw.tensor(noisy), fw.tensor(mask)).numpy(), batch,
                                   rtol=1e-5, atol=1e-5)
    assert not np.allclose(batch[0], batch[1])        # ... while the texts do matter


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_shapes_backward_and_bool_masks(name):
    model = small(name).train()
    if name == "fasttext_bag":
        nn.init.normal_(model.fc.weight)
    ids, mask = padded_batch([5, 3, 8], seed=5)
    out = model(fw.tensor(ids), fw.tensor(mask.astype(bool)))
    assert tuple(out.shape) == (3, C) and out.dtype == fw.float32
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), pname
    pad_row = model.embedding.weight.grad.numpy()[PAD]
    assert (pad_row == 0).all()                        # padding_idx: no gradient
    model.eval()
    with fw.no_grad():
        a = model(fw.tensor(ids), fw.tensor(mask)).numpy()
        b = model(fw.tensor(ids), fw.tensor(mask.astype(bool))).numpy()
    np.testing.assert_array_equal(a, b)


def test_textcnn_reads_texts_shorter_than_its_widest_filter():
    model = small("textcnn").eval()
    with fw.no_grad():
        one = model(fw.tensor([[7]]), fw.tensor([[1]]))
        assert tuple(one.shape) == (1, C) and np.isfinite(one.numpy()).all()
        empty = model(fw.tensor([[0, 0]]), fw.tensor([[0, 0]])).numpy()   # no real token
    np.testing.assert_allclose(empty, model.fc.bias.detach().numpy()[None], atol=1e-6)


def test_fasttext_embedding_gradient_touches_only_the_texts_rows():
    model = small("fasttext_bag")
    nn.init.normal_(model.fc.weight)
    ids, mask = padded_batch([4, 2], length=6, seed=6)
    model(fw.tensor(ids), fw.tensor(mask)).sum().backward()
    rows = np.flatnonzero(np.abs(model.embedding.weight.grad.numpy()).sum(1))
    assert set(rows) == set(ids[mask == 1].tolist())
    # fastText's initialisation: U(-1/dim, 1/dim) embeddings, zero output layer
    fresh = small("fasttext_bag")
    w = fresh.embedding.weight.detach().numpy()
    assert np.abs(w).max() <= 1 / 12 and (w[PAD] == 0).all()
    assert (fresh.fc.weight.detach().numpy() == 0).all()


def test_rnn_attention_weights_are_zero_on_padding():
    model = small("bilstm_attn").eval()
    ids, mask = padded_batch([4, 7], seed=7)
    with fw.no_grad():
        emb = model.embedding(fw.tensor(ids))
        out, _ = model.rnn(emb)
        _, weights = model.attention(out, fw.tensor(mask) != 0)
    w = weights.numpy()
    assert (w[mask == 0] == 0).all()
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-6)


def test_input_errors_name_the_problem():
    for name in CLASSIFIERS:
        model = small(name).eval()
        with pytest.raises(ValueError, match=rf"id {V} \(a vocabulary of at least {V + 1}\) "
                                             rf"but the embedding table has {V} rows"):
            model(fw.tensor([[1, V, 2]]))
        with pytest.raises(ValueError, match="attention_mask has shape"):
            model(fw.tensor([[1, 2, 3]]), fw.tensor([[1, 1]]))
        with pytest.raises(TypeError, match="integer token ids"):
            model(fw.tensor([[1.0, 2.0]]))
        with pytest.raises(ValueError, match="negative id -1"):
            model(fw.tensor([[1, -1]]))
    with pytest.raises(ValueError, match="right padding"):
        small("bigru_attn")(fw.tensor([[0, 4, 5]]), fw.tensor([[0, 1, 1]]))
    with pytest.raises(ValueError, match="longer than max_len 20"):
        small("transformer_encoder")(fw.tensor(np.ones((1, 21), np.int64)))
    with pytest.raises(ValueError, match="unknown pooling 'sum'"):
        small("transformer_encoder", pooling="sum")


def test_each_classifier_learns_a_keyword_task():
    """Training from scratch behaves: class = which of three keyword ids a text holds."""
    rng = np.random.default_rng(8)
    n, length = 96, 12
    lengths = rng.integers(4, length + 1, n)
    ids, mask = padded_batch(lengths.tolist(), length=length, seed=9)
    ids = np.where(np.isin(ids, [1, 2, 3]), 4, ids)        # keywords appear only where put
    y = rng.integers(0, C, n)
    ids[np.arange(n), rng.integers(0, lengths)] = y + 1
    x, m, t = fw.tensor(ids), fw.tensor(mask), fw.tensor(y)
    for name in CLASSIFIERS:
        model = small(name, dropout=0.0)
        opt = fw.optim.Adam(model.parameters(), lr=0.5 if name == "fasttext_bag" else 0.02)
        for _ in range(40):
            loss = nn.functional.cross_entropy(model(x, m), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with fw.no_grad():
            acc = (model(x, m).argmax(1).numpy() == y).mean()
        assert acc > 0.9, (name, acc)
