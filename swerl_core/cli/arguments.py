"""What every ``swerl`` verb shares: flag types, flags that override a setting, and the help layout.

A flag that overrides a setting is declared with :func:`add_setting_flag`: its value lands in the dotted key of
:func:`~swerl_core.config.load_settings` (``evaluate.samples``), so every override goes through the one settings
loader and its validation, and ``--help`` shows the setting's built-in default.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from swerl_core.config import Settings, parse_utc_datetime

SETTING_PREFIX = "setting:"  # argparse dest of a flag that overrides a setting: "setting:<dotted key>"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their line breaks; a flag's default is shown whenever it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text
        if shown and not action.dest.startswith(SETTING_PREFIX) and action.option_strings:
            text += " (default: %(default)s)"
        return text


def add_verb(
    verbs: Any, name: str, command: Callable[..., int], help: str, description: str
) -> argparse.ArgumentParser:
    """A subcommand running ``command(args, settings)``, with the shared help layout and the common options."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        name, help=help, description=description, formatter_class=HelpFormatter, parents=[_common_options()]
    )
    parser.set_defaults(command=command)
    return parser


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS: a value given before the verb must survive when the verb's copy is not given.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument(
        "--home", dest=SETTING_PREFIX + "home", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return common


def add_setting_flag(parser: argparse.ArgumentParser, flag: str, key: str, help: str, **kwargs: Any) -> None:
    """Add ``flag`` overriding the setting ``key`` (dotted); ``--help`` shows the setting's built-in default."""
    default = setting_default(key)
    shown = "none" if default in (None, "") else default
    if "choices" not in kwargs:
        kwargs.setdefault("metavar", key.rsplit(".", 1)[-1].upper())
    parser.add_argument(
        flag, dest=SETTING_PREFIX + key, default=None, help=f"{help} (default: setting {key} = {shown})", **kwargs
    )


def setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The dotted-key overrides the parsed flags carry, for :func:`~swerl_core.config.load_settings`."""
    return {
        dest[len(SETTING_PREFIX) :]: value
        for dest, value in vars(args).items()
        if dest.startswith(SETTING_PREFIX) and value is not None
    }


def setting_default(key: str) -> Any:
    """The built-in default of a dotted setting key (before any file or environment)."""
    node: Any = Settings()
    for part in key.split("."):
        node = getattr(node, part)
    return list(node) if isinstance(node, tuple) else node if not dataclasses.is_dataclass(node) else None


def iso_datetime(text: str) -> datetime:
    """An ISO-8601 date or time (``2025-01-31``, ``…T12:00:00Z``); a time without a zone is UTC."""
    try:
        return parse_utc_datetime(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date like 2025-01-31, got {text!r}") from None


def repo_name(text: str) -> str:
    """An ``OWNER/NAME`` repository name in GitHub's characters."""
    from swerl_core.repo_names import is_repository_name

    if not is_repository_name(text.strip()):
        raise argparse.ArgumentTypeError(f"expected OWNER/NAME (letters, digits, '-', '_', '.'), got {text!r}")
    return text.strip()
