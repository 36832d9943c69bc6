"""Building :class:`~.settings.Settings`: defaults < YAML file < ``SWERL_*`` environment < dotted overrides.

Environment variables: ``SWERL_HOME`` and ``SWERL_GITHUB_API_URL`` (documented in DESIGN.md), and
generally ``SWERL_<SECTION>__<KEY>`` (double underscore) for any field, e.g.
``SWERL_GITHUB__MAX_RETRIES=8`` or ``SWERL_STORAGE__URI=s3://bucket/prefix``. ``MLFLOW_TRACKING_URI`` overrides
the MLflow default. Values arrive as text and are coerced to each field's type here; errors name the key and
its environment variable. This is the only module that reads the environment for settings; it never validates a
value itself (each section's ``__post_init__`` does, through :mod:`.checks`). It also holds swerl's one YAML
reader (:func:`parse_yaml`): a mapping that sets a key twice is refused, never resolved to the last value.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from swerl_core.config.checks import ENV_PREFIX, setting_name
from swerl_core.config.settings import Settings
from swerl_core.config.storage import shown_uri
from swerl_core.errors import ConfigError


def load_settings(
    config_file: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build :class:`Settings` from defaults, then ``config_file`` (YAML), then ``env``, then ``overrides``.

    ``overrides`` uses dotted keys (``{"github.api_url": …}``) and is how CLI flags land. Raises
    :class:`ConfigError` naming the offending key and what it accepts.
    """
    env = os.environ if env is None else env
    tree: dict[str, Any] = {}
    if config_file is not None:
        tree = read_yaml_mapping(Path(config_file))
    for key, value in _env_entries(env).items():
        _set_dotted(tree, key, value)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(tree, key, value)
    return build_section(Settings, tree, prefix="", named=setting_name)


def as_dict(settings: Any) -> dict[str, Any]:
    """A plain, JSON/YAML-friendly dict of a settings dataclass (for manifests and MLflow params)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = as_dict(value)
        elif isinstance(value, Path):
            out[f.name] = str(value)
        elif isinstance(value, datetime):
            out[f.name] = value.isoformat()
        elif isinstance(value, tuple):  # a list of values or of sections (execution.environments)
            out[f.name] = [as_dict(v) if dataclasses.is_dataclass(v) else v for v in value]
        else:
            out[f.name] = value
    return out


def shown_settings(settings: Settings) -> dict[str, Any]:
    """:func:`as_dict` of ``settings`` safe to publish (a Prefect artifact, MLflow params): no URL keeps a
    ``user:password@`` part. Secrets are never settings, so nothing else needs hiding."""

    def shown(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shown(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shown(v) for v in value]
        return shown_uri(value) if isinstance(value, str) else value

    return dict(shown(as_dict(settings)))


def read_yaml_mapping(path: Path, what: str = "config file") -> dict[str, Any]:
    """The mapping a YAML file holds (``{}`` when empty); :class:`ConfigError` naming ``what`` otherwise."""
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start} is not valid)") from None
    except DuplicateKeyError as exc:
        raise ConfigError(f"{what} {path} {exc}; keep one") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {_one_line(exc)}") from None
    except (ValueError, OverflowError) as exc:  # YAML's own date parsing: "2025-02-30" looks like a date
        raise ConfigError(f"{what} {path} holds an invalid value: {_one_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping sets one key twice (PyYAML alone keeps the last value and says nothing)."""

    def __init__(self, key: str, first_line: int, again_line: int) -> None:
        where = f"lines {first_line} and {again_line}" if again_line != first_line else f"line {first_line}"
        super().__init__(f"sets {key} twice ({where})")


def parse_yaml(text: str) -> Any:
    """The data of YAML ``text`` under PyYAML's safe loader, refusing a mapping that sets a key twice
    (:class:`DuplicateKeyError` naming its dotted path and lines); other problems raise ``yaml.YAMLError``.
    Every YAML that swerl reads (settings, recipes, the demo's data files) goes through here."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(node, "", set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _refuse_duplicate_keys(node: yaml.Node, path: str, seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # an alias repeats a node already checked (and may be recursive)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{path.rstrip('.')}[{i}].", seen_nodes)
    elif isinstance(node, yaml.MappingNode):
        lines: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                line = key.start_mark.line + 1
                if (key.tag, key.value) in lines:
                    raise DuplicateKeyError(f"{path}{key.value}", lines[key.tag, key.value], line)
                lines[key.tag, key.value] = line
                _refuse_duplicate_keys(value, f"{path}{key.value}.", seen_nodes)
            else:
                _refuse_duplicate_keys(value, path, seen_nodes)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _env_entries(env: Mapping[str, str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    aliases = {"SWERL_HOME": "home", "SWERL_GITHUB_API_URL": "github.api_url"}
    for name, value in env.items():
        if name in aliases:
            entries[aliases[name]] = value
        elif name.startswith(ENV_PREFIX) and "__" in name:
            entries[name[len(ENV_PREFIX) :].lower().replace("__", ".")] = value
    if "mlflow_tracking_uri" not in entries and env.get("MLFLOW_TRACKING_URI"):
        entries["mlflow_tracking_uri"] = env["MLFLOW_TRACKING_URI"]
    return entries


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    if not rest:
        tree[head] = value
        return
    node = tree.setdefault(head, {})
    if not isinstance(node, dict):
        raise ConfigError(f"invalid setting {head}: expected a section, got a value")
    _set_dotted(node, rest, value)


def build_section(cls: type, data: Mapping[str, Any], prefix: str = "", named: Callable[[str], str] = str) -> Any:
    """A frozen settings dataclass ``cls`` from plain data, coercing strings; errors name ``prefix`` + key as
    ``named`` shows it (:func:`~.checks.setting_name` adds the environment variable of a setting)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"invalid setting {named(prefix.rstrip('.'))}: expected a section (mapping)")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((set(data) - known), key=str)  # YAML keys need not be strings (`1: a`)
    if unknown:
        where = prefix.rstrip(".") or "top level"
        raise ConfigError(f"unknown setting {prefix}{unknown[0]} ({where}); allowed: {', '.join(sorted(known))}")
    kwargs = {name: _coerce(hints[name], value, f"{prefix}{name}", named) for name, value in data.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str, named: Callable[[str], str]) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build_section(hint, value, key + ".", named)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        is_null = value is None or (isinstance(value, str) and value.lower() in ("", "none", "null"))
        if is_null and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key, named)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"invalid setting {named(key)}: expected a list, got {value!r}")
        return tuple(_coerce(args[0], item.strip() if isinstance(item, str) else item, key, named) for item in items)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"invalid setting {named(key)}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    return _scalar(hint, value, key, named)


def _scalar(hint: Any, value: Any, key: str, named: Callable[[str], str]) -> Any:
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if hint is float:
            if isinstance(value, bool) or not math.isfinite(float(value)):
                raise ValueError
            return float(value)
        if hint is Path:
            if not isinstance(value, str | os.PathLike) or not str(value).strip() or "\x00" in str(value):
                raise ValueError
            return Path(value).expanduser()
        if hint is datetime:
            return parse_utc_datetime(value)
        if hint is str:
            if not isinstance(value, str | int | float):
                raise ValueError
            return str(value)
    except (TypeError, ValueError, OverflowError):
        expected = "a finite number" if hint is float else getattr(hint, "__name__", hint)
        raise ConfigError(f"invalid setting {named(key)}: expected {expected}, got {str(value)[:80]!r}") from None
    return value


def parse_utc_datetime(value: Any) -> datetime:
    """An ISO-8601 date or time (or a datetime) as an aware datetime; no zone means UTC. Raises ValueError."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)  # in range in UTC too, so later comparisons and formatting cannot overflow
    except OverflowError:
        raise ValueError(f"{value!s} is out of range") from None
