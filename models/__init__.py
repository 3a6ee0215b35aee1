"""Lantern's model zoo: one registry of builders and pretrained weights for every domain
(vision, text, rl, mri), and the import of PyTorch/safetensors checkpoints without torch."""
from .registry import (DOMAINS, ModelEntry, Weights, get_entry, get_model, get_weights,
                       list_models, list_weights, num_parameters, register_model,
                       register_weights)
from .weights import LoadReport, WeightsNotFoundError, load_pretrained, load_weights_file, \
    match_state_dict, read_state_dict, weights_path

__all__ = ["DOMAINS", "ModelEntry", "Weights", "get_entry", "get_model", "get_weights",
           "list_models", "list_weights", "num_parameters", "register_model", "register_weights", "LoadReport",
           "WeightsNotFoundError", "load_pretrained", "match_state_dict", "load_weights_file", "read_state_dict",
           "weights_path"]
