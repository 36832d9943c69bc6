"""Frozen spec dataclasses to and from plain YAML data, so the sample world can live in readable data files.

The mapping is generic, driven by each dataclass's type hints:

- a dataclass becomes a mapping of the fields that differ from their defaults (in field order);
- a field typed as a union of several dataclasses (a file operation) becomes ``{kind: {fields}}``, ``kind`` being
  the class name in lower case;
- a "reference" class (an account) is written as one key field (its login) and looked up on the way back, so a
  person is defined once and named everywhere;
- tuples become lists, ``bytes`` stay bytes (YAML ``!!binary``), everything else stays as it is.

``decode(encode(x)) == x`` for every value this module is given; :func:`dump` writes multi-line strings as
literal blocks so file contents read as the files they are.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any

import yaml

from swerl_core.config import parse_yaml
from swerl_core.demo.errors import SpecDataError


@dataclasses.dataclass(frozen=True)
class Reference:
    """A dataclass stored by one key field (``Account`` by ``login``) and its instances by that key."""

    kind: type
    key: str
    instances: Mapping[str, Any]


def encode(value: Any, reference: Reference | None = None, hint: Any = None) -> Any:
    """Plain data (dicts, lists, scalars, bytes) for ``value``, declared as ``hint`` (default: its own type)."""
    if reference is not None and isinstance(value, reference.kind):
        return getattr(value, reference.key)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = _hints(type(value))
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item != _default(f):
                out[f.name] = encode(item, reference, hints[f.name])
        return {type(value).__name__.lower(): out} if len(_union_classes(hint)) > 1 else out
    if isinstance(value, tuple | list):
        return [encode(item, reference, _item_hint(hint, i)) for i, item in enumerate(value)]
    return value


def decode(hint: Any, value: Any, reference: Reference | None = None, where: str = "") -> Any:
    """The value of type ``hint`` that ``value`` (plain data from :func:`encode`) describes."""
    if reference is not None and hint is reference.kind:
        if value not in reference.instances:
            raise SpecDataError(f"{where}: unknown {reference.kind.__name__.lower()} {value!r}")
        return reference.instances[value]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        classes = _union_classes(hint)
        if len(classes) > 1:
            return _decode_tagged(classes, value, reference, where)
        return decode(kinds[0], value, reference, where) if len(kinds) == 1 else value
    if origin is tuple:
        if not isinstance(value, list):
            raise SpecDataError(f"{where}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], item, reference, f"{where}[{i}]") for i, item in enumerate(value))
        if len(args) != len(value):
            raise SpecDataError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(decode(a, v, reference, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, value, reference, where)
    return value


def dump(data: Any) -> str:
    """YAML text of plain data, multi-line strings as literal blocks."""
    return yaml.dump(data, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False, width=120)


def load(text: str) -> Any:
    """Plain data from YAML text written by :func:`dump` (through swerl's one YAML reader: a key set twice is
    refused)."""
    return parse_yaml(text)


def _decode_dataclass(cls: type, value: Any, reference: Reference | None, where: str) -> Any:
    if not isinstance(value, dict):
        raise SpecDataError(f"{where}: expected a mapping for {cls.__name__}, got {type(value).__name__}")
    hints = _hints(cls)
    unknown = sorted(set(value) - set(hints))
    if unknown:
        raise SpecDataError(f"{where}: {cls.__name__} has no field {unknown[0]!r}")
    fields = {name: decode(hints[name], item, reference, f"{where}.{name}") for name, item in value.items()}
    return cls(**fields)


def _decode_tagged(classes: list[type], value: Any, reference: Reference | None, where: str) -> Any:
    by_tag = {cls.__name__.lower(): cls for cls in classes}
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in by_tag:
        raise SpecDataError(f"{where}: expected one of {', '.join(by_tag)} as a single key")
    tag, fields = next(iter(value.items()))
    return _decode_dataclass(by_tag[tag], fields, reference, f"{where}.{tag}")


def _union_classes(hint: Any) -> list[type]:
    """The dataclasses a union hint allows (empty for anything else)."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return []
    return [a for a in typing.get_args(hint) if isinstance(a, type) and dataclasses.is_dataclass(a)]


def _item_hint(hint: Any, index: int) -> Any:
    """The declared type of item ``index`` of a tuple hint (``None`` when unknown)."""
    if typing.get_origin(hint) is not tuple:
        return None
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return args[index] if index < len(args) else None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


class _BlockDumper(yaml.SafeDumper):
    """A SafeDumper that writes strings containing newlines as ``|`` literal blocks."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text and "\r" not in text and not text.endswith((" ", "\t")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _represent_text)
