"""The demo's HTML report: one self-contained file (plots inlined as base64 PNG/GIF, no
scripts, no external links) that opens in any browser, offline."""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Sequence

from apps.common.files import write_text

from .stages import StageResult

__all__ = ["write_report"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.7em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
section { border-top: 2px solid #eee; margin-top: 2em; padding-top: 0.5em; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figure img { max-width: 520px; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
code { background: #f5f5f5; padding: 0.1em 0.3em; }
.wrong { color: #b00020; } .right { color: #0a7d32; } .note { color: #8a5a00; }
"""


def _img(path: Path) -> str:
    mime = "image/gif" if path.suffix == ".gif" else "image/png"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:{mime};base64,{data}" alt="{html.escape(path.name)}">'


def _table(rows: Sequence[dict]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        ok = r.get("prediction") == r.get("truth") if "truth" in r else None
        cls = "" if ok is None else (' class="right"' if ok else ' class="wrong"')
        cells = "".join(f"<td{cls if c == 'prediction' else ''}>{html.escape(str(r[c]))}</td>"
                        for c in cols)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _section(r: StageResult) -> str:
    figs = "".join(f"<figure>{_img(p)}<figcaption>{html.escape(cap)}</figcaption></figure>"
                   for cap, p in r.figures if p.is_file())
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in r.notes)
    table = _table(r.table)
    return (f'<section id="{r.app}"><h2>{html.escape(r.app)}: {html.escape(r.title)}</h2>'
            f"<p><b>{html.escape(r.metric)} {r.value:.4g}</b> &middot; model "
            f"<code>{html.escape(r.model)}</code> &middot; data {html.escape(r.data)} &middot; "
            f"{r.seconds:.1f} s</p><p>Command: <code>{html.escape(r.command)}</code></p>"
            f"{notes}{figs}{f'<h3>{html.escape(r.table_title)}</h3>' + table if table else ''}"
            "</section>")


def write_report(path: Path, results: Sequence[StageResult], *, machine: str,
                 wall_seconds: float, failures: Sequence[str] = (),
                 skipped: Sequence[str] = ()) -> Path:
    """Write the report to `path` (atomically) and return it."""
    summary = "".join(
        f'<tr><td><a href="#{r.app}">{html.escape(r.app)}</a></td>'
        f"<td>{html.escape(r.model)}</td><td>{html.escape(r.data)}</td>"
        f"<td>{html.escape(r.metric)}</td><td class=num>{r.value:.4g}</td>"
        f"<td class=num>{r.seconds:.1f} s</td></tr>" for r in results)
    failed = "".join(f'<p class="wrong">failed: {html.escape(f)}</p>' for f in failures)
    failed += "".join(f'<p class="note">skipped: {html.escape(s)}</p>' for s in skipped)
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lantern demo report</title>
<style>{_STYLE}</style></head><body>
<h1>Lantern demo</h1>
<p class="sub">Each application trained and evaluated briefly on its embedded data.
Wall time {wall_seconds:.1f} s &middot; {html.escape(machine)}</p>
<table><tr><th>application</th><th>model</th><th>data</th><th>metric</th><th>value</th>
<th>time</th></tr>{summary}</table>{failed}
{''.join(_section(r) for r in results)}
</body></html>
"""
    write_text(path, doc)
    return path
