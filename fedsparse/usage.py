"""`--help` (or `-h`) of every entry, generated from its settings dataclasses and their CHECKS.

Each setting is listed with its type (the dataclass annotation), its default (the entry's default
config file applied to the dataclass defaults), what is allowed (`config.describe` of its check)
and, where the code has one, a one-line meaning: the field's `metadata["help"]`, an attribute
docstring after the field, or a comment on the field's line. Own-line comments in the dataclass
body head groups of fields. Fields added to a dataclass appear without further work.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import os
import sys
import textwrap
import tokenize
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fedsparse.config import Check, describe

HELP_FLAGS = ("-h", "--help")
RUN_NOTES = ("config=NAME_OR_PATH: the YAML file (under configs/, or a path) that the key=value "
             "arguments apply to.\nMeanings, derived values and special cases: docs/config.md.")


@dataclass(frozen=True)
class Section:
    """A block of settings: a dataclass instance (its values are the defaults shown), the checks
    of its fields, and a prefix for keys nested under another (e.g. `pretrain.`). `flat`: list
    the fields of nested dataclasses (the run config's sections) by their own names, under a group
    naming the section, instead of pointing to `key.*`."""

    title: str
    settings: Any
    checks: Mapping[str, Check] = field(default_factory=dict)
    prefix: str = ""
    flat: bool = False


def exit_if_help(argv: Sequence[str], prog: str, usage: str,
                 sections: Callable[[], Sequence[Section]], notes: str = "") -> None:
    """When `argv` holds -h or --help: print the help of `prog` (`python -m <prog>`) and exit 0."""
    if not any(a in HELP_FLAGS for a in argv):
        return
    try:
        print(help_text(prog, usage, sections(), notes), flush=True)
    except BrokenPipeError:  # `--help | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
    raise SystemExit(0)


def help_text(prog: str, usage: str, sections: Sequence[Section], notes: str = "") -> str:
    """The whole help: usage line, the entry module's docstring, every section, `notes`."""
    parts = [f"usage: python -m {prog} {usage}".rstrip()]
    doc = _module_doc(prog)
    if doc:
        parts.append(doc)
    parts += [section_text(s) for s in sections]
    if not sections:
        parts.append("It takes no settings.")
    if notes:
        parts.append(notes)
    return "\n\n".join(parts) + "\n"


def _module_doc(module: str) -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    doc = getattr(main, "__doc__", None) if spec is not None and spec.name == module else None
    return inspect.cleandoc(doc) if doc else ""


def section_text(section: Section) -> str:
    """One line per field: key, type, default, what is allowed; the meaning on the next line."""
    rows = _rows(section.settings, section, "")
    wk = max(len(r[1]) for r in rows)
    wt = max(len(r[2]) for r in rows)
    wd = min(max(len(r[3]) for r in rows), 24)
    lines = [f"{section.title}:", f"  {'key':<{wk}}  {'type':<{wt}}  {'default':<{wd}}  allowed"]
    group = ""
    for grp, key, typ, default, allowed, meaning in rows:
        if grp and grp != group:
            lines.append(f"  # {grp}")
            group = grp
        lines.append(f"  {key:<{wk}}  {typ:<{wt}}  {default:<{wd}}  {allowed}".rstrip())
        if meaning:
            lines.append(f"  {'':<{wk}}  {meaning}")
    return "\n".join(lines)


def _rows(settings: Any, section: Section, path: str) -> list[tuple[str, str, str, str, str, str]]:
    """(group, key, type, default, allowed, meaning) of each field of `settings`; with
    `section.flat`, those of nested dataclasses too, grouped under their path (`train.fedavgm`)."""
    cls = type(settings)
    meanings, groups = field_notes(cls)
    rows: list[tuple[str, str, str, str, str, str]] = []
    for f in dataclasses.fields(cls):
        value = getattr(settings, f.name)
        key = section.prefix + f.name
        if dataclasses.is_dataclass(value) and section.flat:
            sub = f"{path}{f.name}"
            doc = (type(value).__doc__ or "").strip().splitlines()[0]
            rows += [(f"{sub}: {doc}" + (f" ({g})" if g and g != doc else ""), *rest)
                     for g, *rest in _rows(value, section, f"{sub}.")]
            continue
        if dataclasses.is_dataclass(value):
            default, allowed = "", f"see {key}.* below"
        else:
            check = section.checks.get(f.name)
            default = yaml_text(value)
            allowed = describe(check) if check is not None else _unchecked(f.type)
        meaning = f.metadata.get("help") or meanings.get(f.name, "")
        rows.append((groups.get(f.name, ""), key, _type_text(f.type), default, allowed, meaning))
    return rows


def _unchecked(annotation: Any) -> str:
    """What a field without a check takes: any value of its type."""
    kinds = [k for k in _type_text(annotation).split(" | ") if k != "None"]
    text = "true or false" if kinds == ["bool"] else f"any {' | '.join(kinds)}"
    return f"null or {text}" if "None" in _type_text(annotation).split(" | ") else text


def _type_text(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def yaml_text(value: Any) -> str:
    """A value as it is written in `key=value` / YAML: null, true, [a, b], {k: v}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and not value:
        return "''"
    return str(value)


def field_notes(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """(meaning, group) of the fields of dataclass `cls`, read from its source: an attribute
    docstring or a comment on the field's line; the last own-line comment above a field is its
    group. Empty when the source cannot be read."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        body = ast.parse(source).body[0]
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, TypeError, SyntaxError, tokenize.TokenError, IndexError):
        return {}, {}
    comments = {t.start[0]: (t.string.lstrip("#").strip(), not t.line[: t.start[1]].strip())
                for t in tokens if t.type == tokenize.COMMENT}
    meanings: dict[str, str] = {}
    groups: dict[str, str] = {}
    if not isinstance(body, ast.ClassDef):
        return meanings, groups
    group, after = "", body.lineno
    statements = body.body
    for i, node in enumerate(statements):
        for line in range(after + 1, node.lineno):
            text, alone = comments.get(line, ("", False))
            if alone and text:
                group = text
        after = node.end_lineno or node.lineno
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        groups[name] = group
        nxt = statements[i + 1] if i + 1 < len(statements) else None
        if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            meanings[name] = " ".join(inspect.cleandoc(nxt.value.value).split())
            continue
        for line in (node.lineno, after):
            text, alone = comments.get(line, ("", True))
            if not alone and text:
                meanings[name] = text
    return meanings, groups


def run_settings(config: str) -> Section:
    """The run config's section (`fedsparse.config.Config`, CHECKS), defaults from config file
    `config` (a name under configs/ or a YAML path, with its `extends`) over the dataclass's."""
    from omegaconf import OmegaConf

    from fedsparse.config import CHECKS, Config, _config_path, _file_layers
    from fedsparse.errors import ConfigError

    try:
        merged = OmegaConf.structured(Config)
        for _, layer in _file_layers(_config_path(config)):
            merged = OmegaConf.merge(merged, layer)
        settings = OmegaConf.to_object(merged)
        source = f"defaults: {config} over the Config dataclass"
    except (ConfigError, ValueError):  # a file that does not load: show the dataclass's own
        settings, source = Config(), "defaults: the Config dataclass"
    return Section(f"Run settings (key=value, or section.key=value; {source})", settings, CHECKS,
                   flat=True)
