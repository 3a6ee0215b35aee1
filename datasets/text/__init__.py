"""Text data for the text application (sentiment / text classification): readers for CSV,
TSV, JSON Lines, fastText and class-folder layouts, the hub's and a generated corpus, the
opener behind `--data`, encoders (HuggingFace `tokenizers` and fastText-style n-grams) and
batching (a collate function and a length-bucketed batch sampler)."""
from .batching import BucketBatchSampler, TextCollator
from .corpus import SyntheticReviews, generate_reviews
from .dataset import TextDataset, TextSubset, classes_from_labels
from .embedded import RottenTomatoes, VaderAmazon, VaderMovies, VaderRated
from .encoders import TextEncoder, encoder_from_json
from .ngrams import NgramVocab, tokenize_words
from .open import ACCEPTED, DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION, open_text_dataset
from .readers import read_csv, read_fasttext, read_jsonl, read_text_file, read_text_folder, \
    read_tsv
from .tokenizer import HFTokenizer

__all__ = ["BucketBatchSampler", "TextCollator", "SyntheticReviews", "generate_reviews",
           "TextDataset", "TextSubset", "classes_from_labels", "RottenTomatoes", "VaderMovies", "VaderAmazon", "VaderRated",
           "TextEncoder", "encoder_from_json", "NgramVocab", "tokenize_words", "ACCEPTED",
           "DEFAULT_TEST_FRACTION", "DEFAULT_VAL_FRACTION", "open_text_dataset", "read_csv",
           "read_fasttext", "read_jsonl", "read_text_file", "read_text_folder", "read_tsv",
           "HFTokenizer"]
