"""How a setting is named to its user, and the checks that refuse a value, worded the same for every section.

A setting has a dotted key (``registry.alpha``: the YAML file's section and key) and an environment variable
(``SWERL_REGISTRY__ALPHA``); a refusal names both and says what is accepted, e.g. ``invalid setting
registry.alpha (SWERL_REGISTRY__ALPHA): expected a number in (0, 0.5], got 7``. Every number goes through
:func:`require_number` or :func:`require_integer` (finite, inside bounds), so a value that would overflow later
(``1e300`` seconds, a chars-per-token of ``1e-300``) or that means nothing (a negative timeout) never leaves the
settings; every name through :func:`is_printable_name`. This module never reads the environment or a file.
"""

from __future__ import annotations

import math

from swerl_core.errors import ConfigError

ENV_PREFIX = "SWERL_"
_TOP_LEVEL_ENV = {"home": "SWERL_HOME", "mlflow_tracking_uri": "MLFLOW_TRACKING_URI"}

DAY_S = 86_400
"""The bound of a timeout, wait or backoff setting, in seconds (following a Kubernetes job: :data:`MONTH_S`)."""
MONTH_S = 30 * DAY_S
SEED_MAX = 2**32 - 1
"""The largest seed every generator swerl seeds accepts (NumPy's ``seed()`` stops there; none takes a negative)."""
NAME_MAX_CHARS = 100
NAME_RULE = f"1 to {NAME_MAX_CHARS} printable characters (no newline, tab or terminal escape)"


def env_var(key: str) -> str:
    """The environment variable that sets the dotted setting ``key``: ``registry.alpha`` → ``SWERL_REGISTRY__ALPHA``."""
    return _TOP_LEVEL_ENV.get(key) or ENV_PREFIX + key.upper().replace(".", "__")


def setting_name(key: str) -> str:
    """``key`` as a message names it: the dotted key and its environment variable."""
    return f"{key} ({env_var(key)})"


def require(ok: bool, key: str, allowed: str) -> None:
    """Raise :class:`ConfigError` for setting ``key`` unless ``ok``; ``allowed`` says what it accepts."""
    if not ok:
        raise ConfigError(f"invalid setting {setting_name(key)}: expected {allowed}")


def require_number(
    key: str,
    value: float,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    open_high: bool = False,
    unit: str = "",
    note: str = "",
) -> None:
    """Refuse setting ``key`` unless ``value`` is a finite number between ``low`` and ``high``, each inclusive
    unless ``open_low`` / ``open_high``. ``unit`` (``"seconds"``) and ``note`` (what a special value means) only
    word the message."""
    ok = (
        _is_number(value, (int, float))
        and (low < value if open_low else low <= value)
        and (value < high if open_high else value <= high)
    )
    span = f"{'(' if open_low else '['}{_shown(low)}, {_shown(high)}{')' if open_high else ']'}"
    _require_within(ok, key, value, "a number" + (f" of {unit}" if unit else ""), span, note)


def require_integer(key: str, value: int, low: int, high: int, *, note: str = "") -> None:
    """Refuse setting ``key`` unless ``value`` is an integer in ``low..high`` (both inclusive); ``note`` says what
    a special value means."""
    ok = _is_number(value, int) and low <= value <= high
    _require_within(ok, key, value, "an integer", f"{_shown(low)}..{_shown(high)}", note)


def is_printable_name(text: str) -> bool:
    """Whether ``text`` is a name that a terminal and a log line show as written (:data:`NAME_RULE`)."""
    return isinstance(text, str) and bool(text.strip()) and len(text) <= NAME_MAX_CHARS and text.isprintable()


def _is_number(value: object, kinds: type | tuple[type, ...]) -> bool:
    if not isinstance(value, kinds) or isinstance(value, bool):
        return False
    return isinstance(value, int) or math.isfinite(value)  # type: ignore[arg-type]


def _require_within(ok: bool, key: str, value: object, what: str, span: str, note: str) -> None:
    require(ok, key, f"{what} in {span}{f' ({note})' if note else ''}, got {_shown(value)}")


def _shown(number: object) -> str:
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:
        number = int(number)
    if isinstance(number, int) and not isinstance(number, bool):
        return f"{number:_}" if abs(number) >= 10_000 else str(number)
    if isinstance(number, float):  # short, unless that rounds a refused 0.5000000000000001 to an accepted 0.5
        short = f"{number:g}"
        return short if float(short) == number else repr(number)
    return repr(number)
