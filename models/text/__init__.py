"""Text-classification architectures of the model zoo. Importing this package registers
every builder (and the pretrained weights records) in `models.registry`; build them with
`models.get_model(name, ...)` or call `models.text.<family>.<builder>` directly.

Every classifier's forward is `forward(input_ids, attention_mask=None, token_type_ids=None)
-> logits (N, num_classes)`: int64 ids (N, L) padded with `pad_id`, the mask (N, L) with
1 = real token (None: every position is real). An id at or past the model's vocab_size is
a ValueError naming both sizes.

Families: `bag` (fastText), `textcnn` (Kim 2014), `rnn` (BiLSTM/BiGRU with attention
pooling), `transformer` (a Transformer encoder trained from scratch) and `bert` (BERT with
transformers' names and checkpoints, all-MiniLM-L6-v2's weights from the hub).
"""
from . import bag, bert, inputs, pooling, rnn, textcnn, transformer, zoo
from .bag import FastTextBag
from .bert import (BertClassifier, BertConfig, BertEncoderOutput, BertForSequenceClassification,
                   BertModel, encode_sentences, load_bert, mean_pooling)
from .pooling import l2_normalize
from .rnn import AdditiveAttention, RNNAttentionClassifier
from .textcnn import TextCNN
from .transformer import TransformerClassifier

__all__ = ["bag", "bert", "inputs", "pooling", "rnn", "textcnn", "transformer",
           "FastTextBag", "TextCNN", "AdditiveAttention", "RNNAttentionClassifier",
           "TransformerClassifier", "BertConfig", "BertEncoderOutput", "BertModel",
           "BertForSequenceClassification", "BertClassifier", "load_bert", "mean_pooling",
           "encode_sentences", "l2_normalize"]
