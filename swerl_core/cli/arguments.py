"""What every ``swerl`` verb shares: flag types, flags that override a setting, and the help layout.

A flag that overrides a setting is declared with :func:`add_setting_flag`: its value lands in the dotted key of
:func:`~swerl_core.config.load_settings` (``evaluate.samples``), so every override goes through the one settings
loader and its validation, and ``--help`` shows the setting's built-in default.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from swerl_core.config import Settings, parse_utc_datetime
from swerl_core.errors import SwerlError

SETTING_PREFIX = "setting:"  # argparse dest of a flag that overrides a setting: "setting:<dotted key>"
LATEST_MODEL = "latest"  # --model latest: the final checkpoint of the newest finished training run


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions are wrapped paragraph by paragraph (their line breaks stay); a flag's default is shown once,
    when it has a meaningful one and the help text does not already say it."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent) if line.strip() else ""
            for line in text.splitlines()
        )

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        meaningful = action.default not in (None, False, "", argparse.SUPPRESS)
        if meaningful and action.option_strings and "default" not in text:
            text += " (default: %(default)s)"
        return text


def add_verb(
    verbs: Any, name: str, command: Callable[..., int], help: str, description: str, *, needs_home: bool = False
) -> argparse.ArgumentParser:
    """A subcommand running ``command(args, settings)``, with the shared help layout and the common options;
    ``needs_home``: it reads what earlier verbs wrote, so a missing ``SWERL_HOME`` is refused first
    (:func:`require_home`)."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        name, help=help, description=description, formatter_class=HelpFormatter, parents=[_common_options()]
    )
    parser.set_defaults(command=command, needs_home=needs_home)
    return parser


def require_home(settings: Settings) -> None:
    """Refuse, saying where it looked, when ``SWERL_HOME`` does not exist (a verb run from another directory)."""
    if not settings.home.is_dir():
        raise SwerlError(
            f"no SWERL_HOME at {settings.home.absolute()}: cd to the directory that holds it, "
            "or pass --home DIR (or set SWERL_HOME)"
        )


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


def model_argument(text: str, settings: Settings) -> str:
    """The model a ``--model`` flag names: for ``latest``, the ``final/`` checkpoint of the newest finished
    training run under ``$SWERL_HOME/checkpoints`` (said on stderr); anything else as written."""
    if text.strip() != LATEST_MODEL:
        return text
    from swerl_core.runs import FINAL_DIR, newest_finished_run

    run_dir = newest_finished_run(settings.checkpoints_dir)
    if run_dir is None:
        raise SwerlError(f"--model {LATEST_MODEL}: no finished training run under {settings.checkpoints_dir}")
    print(f"model: {run_dir / FINAL_DIR} (the newest finished training run)", file=sys.stderr)
    return str(run_dir / FINAL_DIR)


def version_number(text: str) -> str:
    """A model version number, ``3`` or ``v3`` (returned as ``"3"``)."""
    number = text.strip().removeprefix("v")
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"expected a version number like 3 (or v3), got {text!r}")
    return str(int(number))


def repo_name(text: str) -> str:
    """An ``OWNER/NAME`` repository name in GitHub's characters."""
    from swerl_core.repo_names import is_repository_name

    if not is_repository_name(text.strip()):
        raise argparse.ArgumentTypeError(f"expected OWNER/NAME (letters, digits, '-', '_', '.'), got {text!r}")
    return text.strip()
