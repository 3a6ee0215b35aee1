"""The documentation cannot rot: the generated pages match the code, the examples run, and
every documented `lantern` command line parses with the real parser.

What is checked, in README.md and docs/*.md:
- docs/zoo.md and docs/cli.md are what `python -m apps.suite.docgen` writes today;
- every ```python block runs: the blocks of one file in order, sharing one namespace (a fresh
  one per file), in an empty temporary working directory;
- every `lantern ...` command line in ```bash, ```sh, ```shell, ```console and unlabelled
  blocks parses with `apps.cli.build_parser()` (`python -m apps.X ...` counts as
  `lantern X ...`, `.venv/bin/lantern` as `lantern`; `\\` continuations are joined, `# ...`
  comments dropped, and a command after `|`, `&&`, `;` is checked like one at the start), and
  so does every example in the parsers' own descriptions and epilogs (what docs/cli.md shows);
- the `lantern ...` commands in inline code spans name real subcommands and flags;
- a few cheap documented commands really run and exit 0.

To keep a python block from running, make its first line

    # doctest: skip <why it cannot run here>

The reason is required (a marker without one fails the test); the block is still compiled.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from apps import cli
from apps.suite import docgen

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_MARKER = re.compile(r"#\s*doctest:\s*skip\b[\s:,;-]*(?P<reason>.*)$")
SHELL_LANGS = {"", "bash", "sh", "shell", "console"}
PYTHON_LANGS = {"python", "py", "python3"}


# ------------------------------------------------------------------------ the blocks

@dataclass(frozen=True)
class Block:
    path: Path
    line: int            # the line of the block's first content line (1-based)
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{_file_id(self.path)}:{self.line}"


_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (CommonMark fences, also indented ones
    inside list items), with their language and first line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i].rstrip())
        if not m:
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        lang = (m["info"].split() or [""])[0].lower()
        body, j = [], i + 1
        while j < len(lines):
            close = re.match(r"^ {0,3}(`{3,}|~{3,})\s*$", lines[j])
            if close and close[1][0] == fence[0] and len(close[1]) >= len(fence):
                break
            line = lines[j]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            j += 1
        blocks.append(Block(path, i + 2, lang, "\n".join(body)))
        i = j + 1
    return blocks


def _file_id(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _files_with(langs: set[str]) -> list[Path]:
    return [p for p in DOC_FILES if any(b.lang in langs for b in fenced_blocks(p))]


def test_fence_parser_finds_the_blocks(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("text\n```python\na = 1\n```\n1. item\n\n   ```\n   lantern zoo list\n   ```\n"
                  "~~~bash title\nlantern data list\n~~~\n````\n```\n````\n")
    blocks = fenced_blocks(md)
    assert [(b.line, b.lang, b.text) for b in blocks] == [
        (3, "python", "a = 1"), (8, "", "lantern zoo list"), (11, "bash", "lantern data list"),
        (14, "", "```")]


# ------------------------------------------------------------------ generated pages

def test_generated_docs_are_up_to_date(capsys):
    rc = docgen.main(["--check"])
    err = capsys.readouterr().err
    assert rc == 0, err


def test_check_names_each_stale_file_and_writes_nothing(tmp_path, monkeypatch, capsys):
    generated = docgen.generate()
    (tmp_path / "docs").mkdir()
    zoo_md = tmp_path / "docs" / "zoo.md"
    zoo_md.write_text(generated["docs/zoo.md"].replace("61,706", "61,707"))
    monkeypatch.setattr(docgen, "ROOT", tmp_path)
    assert docgen.main(["--check"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["docs/zoo.md is out of date: run `python -m apps.suite.docgen`",
                   "docs/cli.md is out of date: run `python -m apps.suite.docgen`"]
    assert "61,707" in zoo_md.read_text() and not (tmp_path / "docs" / "cli.md").exists()
    assert docgen.main([]) == 0
    assert docgen.stale(tmp_path) == []
    assert (tmp_path / "docs" / "cli.md").read_text() == generated["docs/cli.md"]


def test_zoo_page_does_not_depend_on_this_machines_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LANTERN_HOME", str(tmp_path / "empty-home"))
    empty = docgen.zoo_markdown()
    home = tmp_path / "home"
    (home / "zoo").mkdir(parents=True)     # a built record, and one with a wrong hash
    (home / "zoo" / "textcnn.rotten-tomatoes.safetensors").write_bytes(b"not the weights")
    monkeypatch.setenv("LANTERN_HOME", str(home))
    assert docgen.zoo_markdown() == empty
    cells = {c.strip() for row in empty.splitlines() if row.startswith("|")
             for c in row.split("|")}
    assert cells.isdisjoint({"shipped", "fetched", "not fetched", "built", "not built",
                             "HASH DIFFERS", "missing from the source tree"})
    assert str(tmp_path) not in empty and "/root/" not in empty


def test_zoo_page_lists_every_model_and_record_under_its_domain():
    import models
    text = (ROOT / "docs" / "zoo.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## [^\n]*\(`(\w+)`\)\n(.*?)(?=^## |\Z)", text,
                               re.M | re.S))
    assert list(sections) == list(models.DOMAINS)
    for name in models.list_models():
        entry = models.get_entry(name)
        section = sections[entry.domain]
        for w in entry.weights.values():
            row = [r for r in section.splitlines() if r.startswith(f"| `{w.name}` |")]
            assert len(row) == 1, w.name
            assert f"| {w.num_params:,} |" in row[0] and w.recipe.split()[0] in row[0]
            assert f"{w.file.partition(':')[0]}:" in row[0]
        if not entry.weights:
            assert f"| `{name}` | {models.num_parameters(name):,} |" in section


def _parsers(parser):
    """`parser` and every subcommand's parser under it, in the order they were added."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_cli_page_has_every_command_in_order_independent_of_width(monkeypatch):
    text = docgen.cli_markdown()
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setattr(sys, "argv", ["/somewhere/else/lantern-renamed"])
    assert docgen.cli_markdown() == text
    assert len(max(text.splitlines(), key=len)) > 40
    progs = [p.prog for p in _parsers(cli.build_parser())]
    assert len(progs) > 30
    headings = re.findall(r"^#{2,6} `(lantern[^`]*)`\n\n```text\nusage: (\S+(?: [a-z-]+)*)",
                          text, re.M)
    assert [h for h, _ in headings] == progs
    assert all(usage == prog for prog, usage in headings)
    toc_anchors = re.findall(r"^\s*- \[`[^`]+`\]\(#([a-z0-9-]+)\)", text, re.M)
    assert toc_anchors == [docgen._anchor(p) for p in progs]


# -------------------------------------------------------------------- python blocks

def _skip_reason(block: Block) -> str | None:
    first = block.text.lstrip("\n").splitlines()[0] if block.text.strip() else ""
    m = SKIP_MARKER.match(first.strip())
    if not m:
        return None
    assert m["reason"].strip(), f"{block.where}: `# doctest: skip` needs a reason after it"
    return m["reason"].strip()


@pytest.mark.parametrize("path", _files_with(PYTHON_LANGS), ids=_file_id)
def test_python_examples_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__docs__"}
    ran = 0
    for block in fenced_blocks(path):
        if block.lang not in PYTHON_LANGS:
            continue
        # pad so that tracebacks give the line numbers of the Markdown file
        code = compile("\n" * (block.line - 1) + block.text, str(block.path), "exec")
        if _skip_reason(block) is not None:
            continue
        try:
            exec(code, namespace)
        except Exception as exc:  # noqa: BLE001 - name the block, keep the traceback
            raise AssertionError(f"{block.where}: the python example fails: "
                                 f"{type(exc).__name__}: {exc}") from exc
        ran += 1
    if not ran:
        pytest.skip(f"every python block of {_file_id(path)} is marked `# doctest: skip`")


def test_skip_marker_needs_a_reason(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("```python\n# doctest: skip\nimport nothing_here\n```\n"
                  "```python\n# doctest: skip - needs a GPU\nx = 1\n```\n")
    a, b = fenced_blocks(md)
    with pytest.raises(AssertionError, match="needs a reason"):
        _skip_reason(a)
    assert _skip_reason(b) == "needs a GPU"


# --------------------------------------------------------------- lantern command lines

@dataclass(frozen=True)
class Command:
    where: str
    text: str            # the command as written (continuations joined)
    argv: list           # the arguments after `lantern`


def _strip_comment(line: str) -> str:
    """The line without a shell comment: a `#` that starts a word, outside quotes."""
    quote, escaped = None, False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


_CONTROL = {"|", "||", "&&", ";", "&", "(", ")", "|&", ";;"}


def _segments(line: str) -> list[list[str]]:
    """The simple commands of a shell line, each cut at its first redirection."""
    line = re.sub(r"(^|\s)\d*(?=[<>])", r"\1", _strip_comment(line))   # 2>&1 -> >&1
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split, lex.commenters = True, ""
    segments, current, redirected = [], [], False
    for tok in lex:
        if tok in _CONTROL:
            segments.append(current)
            current, redirected = [], False
        elif tok[0] in "<>":
            redirected = True
        elif not redirected:
            current.append(tok)
    segments.append(current)
    return [s for s in segments if s]


def _lantern_argv(words: list[str]) -> list[str] | None:
    """The arguments after `lantern` if `words` run the lantern script, else None. A
    `python -m apps...` module that is no lantern group or does not exist is an error."""
    while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in
                     ("time", "env", "sudo")):
        words = words[1:]
    if not words:
        return None
    prog = words[0].rsplit("/", 1)[-1]
    if prog == "lantern":
        return words[1:]
    if re.fullmatch(r"python(\d+(\.\d+)?)?", prog) and words[1:2] == ["-m"] and len(words) > 2:
        module = words[2]
        if module == "apps.cli":
            return words[3:]
        group = re.fullmatch(r"apps\.(?:suite\.)?([\w]+)", module)
        if group and group[1] in cli.GROUPS:
            return [group[1], *words[3:]]
        if module.split(".")[0] == "apps" and importlib.util.find_spec(module) is None:
            raise ValueError(f"no module {module}")
    return None


def shell_lines(text: str, first_line: int = 1) -> list[tuple[int, str]]:
    """(line number, logical line) of shell text: `\\` continuations joined, console
    prompts (`$ `) dropped."""
    out, pending, start = [], "", None
    for n, raw in enumerate(text.splitlines(), first_line):
        line = re.sub(r"^\s*\$\s+", "", raw) if pending == "" else raw
        if start is None:
            start = n
        code = _strip_comment(line).rstrip()
        if code.endswith("\\"):
            pending += code[:-1] + " "
            continue
        out.append((start, pending + line))
        pending, start = "", None
    if pending:
        out.append((start, pending))
    return out


def lantern_commands(path: Path) -> tuple[list[Command], list[str]]:
    """The `lantern` command lines of a file's shell blocks, and the lines that could not
    be read as shell."""
    commands, problems = [], []
    for block in fenced_blocks(path):
        if block.lang not in SHELL_LANGS:
            continue
        for n, line in shell_lines(block.text, block.line):
            where = f"{_file_id(path)}:{n}"
            try:
                for words in _segments(line):
                    argv = _lantern_argv(words)
                    if argv is not None:
                        commands.append(Command(where, " ".join(line.split()), argv))
            except ValueError as exc:
                if re.search(r"(^|[\s|;&$])((\S*/)?lantern|python\S*\s+-m\s+apps)\s", line):
                    problems.append(f"{where}: {line.strip()}\n    {exc}")
    return commands, problems


def _parse_error(parser, argv: list[str]) -> str | None:
    """None if argparse accepts `argv`, else its message (`--help`/`--version` exit 0)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1] if err.getvalue() else str(exc)
    return None


def test_shell_line_reading():
    assert _segments("lantern a --x 'y z'  # a comment") == [["lantern", "a", "--x", "y z"]]
    assert _segments("see a.md#top && lantern b > out.txt 2>&1") == \
        [["see", "a.md#top"], ["lantern", "b"]]
    assert _segments("find . -name '*.png' | lantern v - --f json") == \
        [["find", ".", "-name", "*.png"], ["lantern", "v", "-", "--f", "json"]]
    assert _lantern_argv([".venv/bin/lantern", "demo"]) == ["demo"]
    assert _lantern_argv(["python", "-m", "apps.vision", "models"]) == ["vision", "models"]
    assert _lantern_argv(["python3", "-m", "apps.cli", "--version"]) == ["--version"]
    assert _lantern_argv(["LANTERN_HOME=/x", "lantern", "data", "list"]) == ["data", "list"]
    assert _lantern_argv(["python", "-m", "venv", ".venv"]) is None
    assert _lantern_argv(["lantern:", "error:"]) is None
    with pytest.raises(ValueError, match="no module apps.vison"):
        _lantern_argv(["python", "-m", "apps.vison", "train"])
    text = "$ lantern mri segment --checkpoint c \\\n    --input d  # why\nlantern zoo list"
    assert [(n, " ".join(line.split())) for n, line in shell_lines(text, 10)] == \
        [(10, "lantern mri segment --checkpoint c --input d # why"), (12, "lantern zoo list")]


def test_a_bad_flag_is_caught(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("```bash\nlantern vision train --model lenet5 --epocs 3\n```\n")
    (cmd,), problems = lantern_commands(md)
    assert cmd.where == "x.md:2" and not problems
    assert "unrecognized arguments: --epocs 3" in _parse_error(cli.build_parser(), cmd.argv)
    assert _parse_error(cli.build_parser(), ["vision", "train", "--help"]) is None
    md.write_text("Run `lantern zoo info NAME`, `lantern rl zoo-build <name>`, `lantern vision "
                  "evaluate --data digits` or `python -m apps.text train --epoch 3`.\n")
    spans = inline_commands(md)
    assert [c.argv for c in spans] == [["zoo", "info", "NAME"], ["vision", "evaluate", "--data",
                                                                 "digits"],
                                       ["text", "train", "--epoch", "3"]]
    assert "invalid choice: 'evaluate'" in _parse_error(cli.build_parser(), spans[1].argv)


@pytest.fixture(scope="module")
def parser():
    return cli.build_parser()


@pytest.mark.parametrize("path", [p for p in DOC_FILES if any(lantern_commands(p))],
                         ids=_file_id)
def test_documented_command_lines_parse(path, parser):
    commands, problems = lantern_commands(path)
    for cmd in commands:
        msg = _parse_error(parser, cmd.argv)
        if msg:
            problems.append(f"{cmd.where}: {cmd.text}\n    {msg}")
    assert not problems, "documented lantern commands that do not parse:\n" + \
        "\n".join(problems)


def help_examples(parser) -> list[Command]:
    """The example command lines (indented lines that run `lantern`) in the description and
    epilog of `parser` and of every subcommand's parser."""
    out = []
    for p in _parsers(parser):
        for part in ("description", "epilog"):
            for n, line in shell_lines(getattr(p, part) or ""):
                if not line[:1].isspace():
                    continue                      # prose, not an example
                for words in _segments(line):
                    argv = _lantern_argv(words)
                    if argv is not None:
                        out.append(Command(f"`{p.prog} --help` {part}, line {n}",
                                           " ".join(line.split()), argv))
    return out


def test_help_examples_parse(parser):
    examples = help_examples(parser)
    assert len(examples) > 40 and {c.argv[0] for c in examples} >= set(cli.GROUPS)
    problems = [f"{c.where}: {c.text}\n    {msg}" for c in examples
                if (msg := _parse_error(parser, c.argv))]
    assert not problems, "examples in the --help texts that do not parse:\n" + \
        "\n".join(problems)


def inline_commands(path: Path) -> list[Command]:
    """The `lantern ...` commands in the inline code spans of a file's prose and tables
    (outside fenced blocks; a span must sit on one line). Spans with a `...` or `<...>`
    placeholder are left out."""
    out, fenced = [], False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if re.match(r"^ {0,3}(```|~~~)", line):
            fenced = not fenced
            continue
        if fenced:
            continue
        for span in re.findall(r"`([^`]+)`", line):
            if "..." in span or re.search(r"<[^>]*>", span):
                continue
            try:
                segments = _segments(span.replace("\\|", "|"))
            except ValueError:
                continue
            for words in segments:
                argv = _lantern_argv(words)
                if argv is not None:
                    out.append(Command(f"{_file_id(path)}:{n}", span, argv))
    return out


# a span may name a command without its required arguments or a flag without its value
_INCOMPLETE = re.compile(r"required|expected (one|at least one) argument|invalid \w+ value")


@pytest.mark.parametrize("path", [p for p in DOC_FILES if inline_commands(p)], ids=_file_id)
def test_inline_commands_name_real_commands_and_flags(path, parser):
    problems = []
    for cmd in inline_commands(path):
        msg = _parse_error(parser, cmd.argv)
        if msg and not _INCOMPLETE.search(msg):
            problems.append(f"{cmd.where}: `{cmd.text}`\n    {msg}")
    assert not problems, "inline lantern commands with unknown commands or flags:\n" + \
        "\n".join(problems)


def test_the_docs_document_commands():
    found = {p.name: lantern_commands(p)[0] for p in DOC_FILES}
    total = sum(len(c) for c in found.values())
    assert total > 30, found
    readme = [c.argv for c in found["README.md"]]
    assert ["demo"] in readme              # `... && .venv/bin/lantern demo`
    groups = {c.argv[0] for cs in found.values() for c in cs if c.argv}
    assert groups >= {"vision", "text", "rl", "mri", "demo"}, groups


# ------------------------------------------------------------------ commands that run

def _documented(words: str) -> bool:
    return any(words in p.read_text(encoding="utf-8") for p in DOC_FILES)


@pytest.fixture
def mri_series(tmp_path):
    from datasets.mri import Volume, write_series
    array = np.arange(4 * 6 * 5, dtype=np.int16).reshape(4, 6, 5)
    vol = Volume(array, (2.5, 1.0, 1.5), np.array([-10.0, 20.0, 30.0]), np.eye(3))
    write_series(vol, tmp_path / "series", series_description="docs test T1")
    return tmp_path / "series"


RUNS = [(["--version"], "lantern "),
        (["zoo", "list"], "lenet5.mnist5k"),
        (["data", "list"], "digits"),
        (["doctor"], "Lantern can run here"),
        (["vision", "models"], "lenet5"),
        (["rl", "models"], "dqn_mlp")]


@pytest.mark.parametrize("argv,expected", RUNS, ids=[" ".join(a) for a, _ in RUNS])
def test_documented_commands_run(argv, expected, tmp_path, monkeypatch, capsys):
    assert _documented("lantern " + " ".join(argv)), f"lantern {' '.join(argv)} is not documented"
    monkeypatch.setenv("LANTERN_HOME", str(tmp_path / "home"))   # no cache: nothing fetched
    monkeypatch.chdir(tmp_path)
    try:
        rc = cli.main(argv)
    except SystemExit as exc:     # --version exits through argparse
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert expected in out, out


def test_mri_info_runs_on_a_dicom_series(mri_series, capsys):
    assert _documented("lantern mri info ")
    assert cli.main(["mri", "info", str(mri_series)]) == 0
    out = capsys.readouterr().out
    assert "1 image series" in out and "docs test T1" in out and "4x6x5" in out
    assert "values 0 .. 119" in out


def test_the_installed_script_runs():
    script = Path(sys.executable).with_name("lantern")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "apps.cli"]
    res = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert re.fullmatch(r"lantern \S+.*\n", res.stdout), res.stdout
