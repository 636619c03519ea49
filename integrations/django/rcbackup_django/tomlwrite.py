"""A small TOML writer for the config rcbackup_django generates.

Python's standard library reads TOML (tomllib) but does not write it, and the
bridge needs no dependency beyond Django. Only what a generated config holds
is supported: strings, integers, booleans, lists of those, tables, and lists
of tables (``[[hooks]]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

Value = object


def dumps(table: Mapping[str, Value], header_comment: Sequence[str] = ()) -> str:
    """The TOML text of ``table``; each line of ``header_comment`` becomes a ``#`` comment on top."""
    out: list[str] = [f"# {line}".rstrip() for line in header_comment]
    if out:
        out.append("")
    _table(out, [], table)
    return "\n".join(out).rstrip("\n") + "\n"


def _table(out: list[str], path: list[str], table: Mapping[str, Value]) -> None:
    scalars = [(k, v) for k, v in table.items() if not _is_table(v) and not _is_table_list(v)]
    tables = [(k, v) for k, v in table.items() if _is_table(v)]
    table_lists = [(k, v) for k, v in table.items() if _is_table_list(v)]
    for key, value in scalars:
        if value is None:
            continue
        out.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables:
        sub = [*path, key]
        assert isinstance(value, Mapping)
        # A table holding only tables needs no header of its own.
        if any(not _is_table(v) and not _is_table_list(v) for v in value.values()) or not value:
            out.append("")
            out.append(f"[{'.'.join(_key(k) for k in sub)}]")
        _table(out, sub, value)
    for key, value in table_lists:
        assert isinstance(value, Sequence)
        for item in value:
            out.append("")
            out.append(f"[[{'.'.join(_key(k) for k in [*path, key])}]]")
            assert isinstance(item, Mapping)
            _table(out, [*path, key], item)


def _is_table(v: Value) -> bool:
    return isinstance(v, Mapping)


def _is_table_list(v: Value) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(i, Mapping) for i in v)


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _value(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write a {type(v).__name__} as TOML")


def _string(s: str) -> str:
    parts: list[str] = []
    for ch in s:
        code = ord(ch)
        if ch == '"':
            parts.append('\\"')
        elif ch == "\\":
            parts.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            parts.append(f"\\u{code:04X}")
        else:
            parts.append(ch)
    return '"' + "".join(parts) + '"'
