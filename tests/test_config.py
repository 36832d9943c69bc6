"""Settings: defaults < YAML file < SWERL_* environment < explicit overrides, with clear errors."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from swerl_core.config import (
    ConfigError,
    DuplicateKeyError,
    Secret,
    Settings,
    as_dict,
    env_var,
    github_token,
    load_settings,
    parse_yaml,
)


def test_defaults_without_file_or_env() -> None:
    settings = load_settings(env={})
    assert settings.home == Path("data")
    assert settings.github.api_url == "https://api.github.com"
    assert settings.db_path == Path("data/swerl.duckdb")
    assert settings.tracking_uri == f"sqlite:///{Path('data').resolve() / 'mlflow.db'}"


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "swerl.yaml"
    config.write_text(
        "home: /srv/swerl\ngithub:\n  api_url: https://ghe.example/api/v3\n  max_retries: 3\n"
        "ingest:\n  repos: [acme/textkit]\n  since: 2025-01-01\n"
    )
    settings = load_settings(
        config,
        env={"SWERL_GITHUB__MAX_RETRIES": "7", "SWERL_GITHUB_API_URL": "http://127.0.0.1:9"},
        overrides={"home": tmp_path, "ingest.repos": ["a/b", "c/d"]},
    )
    assert settings.home == tmp_path
    assert settings.github.api_url == "http://127.0.0.1:9"
    assert settings.github.max_retries == 7
    assert settings.ingest.repos == ("a/b", "c/d")
    assert settings.ingest.since == datetime(2025, 1, 1, tzinfo=UTC)


def test_env_lists_and_booleans_are_parsed() -> None:
    settings = load_settings(env={"SWERL_INGEST__REPOS": "a/b, c/d", "SWERL_GITHUB__USE_GRAPHQL": "no"})
    assert settings.ingest.repos == ("a/b", "c/d")
    assert settings.github.use_graphql is False


def test_mlflow_tracking_uri_from_environment() -> None:
    assert load_settings(env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}).tracking_uri == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SWERL_GITHUB__PER_PAGE": "500"},
            "invalid setting github.per_page (SWERL_GITHUB__PER_PAGE): expected an integer in 1..100, got 500",
        ),
        (
            {"SWERL_GITHUB__MAX_RETRIES": "many"},
            "invalid setting github.max_retries (SWERL_GITHUB__MAX_RETRIES): expected int, got 'many'",
        ),
        ({"SWERL_GITHUB__COLOR": "blue"}, "unknown setting github.color (github); allowed: api_url"),
        (
            {"SWERL_INGEST__REPOS": "not-a-repo"},
            "invalid setting ingest.repos (SWERL_INGEST__REPOS): expected entries like OWNER/NAME",
        ),
        ({"SWERL_GITHUB__USE_GRAPHQL": "maybe"}, "invalid setting github.use_graphql (SWERL_GITHUB__USE_GRAPHQL): "),
        ({"SWERL_HOME__X": "1"}, "invalid setting home (SWERL_HOME): expected "),
        (
            {"SWERL_REGISTRY__ALPHA": "7"},
            "invalid setting registry.alpha (SWERL_REGISTRY__ALPHA): expected a number in (0, 0.5], got 7",
        ),
        (
            {"SWERL_REGISTRY__ALPHA": "1"},
            "invalid setting registry.alpha (SWERL_REGISTRY__ALPHA): expected a number in (0, 0.5], got 1",
        ),
        (
            {"SWERL_REGISTRY__BOOTSTRAP_RESAMPLES": "0"},
            "invalid setting registry.bootstrap_resamples (SWERL_REGISTRY__BOOTSTRAP_RESAMPLES): "
            "expected an integer in 100..1_000_000, got 0",
        ),
        (
            {"SWERL_CURATE__CHARS_PER_TOKEN": "1e-300"},
            "invalid setting curate.chars_per_token (SWERL_CURATE__CHARS_PER_TOKEN): "
            "expected a number in [0.1, 100], got 1e-300",
        ),
        (
            {"SWERL_GITHUB__SECONDS_BETWEEN_REQUESTS": "1e300"},
            "invalid setting github.seconds_between_requests (SWERL_GITHUB__SECONDS_BETWEEN_REQUESTS): "
            "expected a number of seconds in [0, 60], got 1e+300",
        ),
        (  # the refused value in full: rounded, it would read as the accepted 0.5
            {"SWERL_REGISTRY__ALPHA": "0.5000000000000001"},
            "invalid setting registry.alpha (SWERL_REGISTRY__ALPHA): expected a number in (0, 0.5], "
            "got 0.5000000000000001",
        ),
        (  # '@' starts an alias in models:/NAME@ALIAS, so such a name could never be loaded back
            {"SWERL_REGISTRY__MODEL_NAME": "team@swerl"},
            "invalid setting registry.model_name (SWERL_REGISTRY__MODEL_NAME): expected 1 to 100 printable",
        ),
        ({"SWERL_REGISTRY__MODEL_NAME": ".."}, "invalid setting registry.model_name (SWERL_REGISTRY__MODEL_NAME)"),
        (  # an empty keyword matches every title: it would drop every pull request as a bot's
            {"SWERL_CURATE__BOT_KEYWORDS": "dependabot,renovate,"},
            "invalid setting curate.bot_keywords (SWERL_CURATE__BOT_KEYWORDS): expected words, none empty",
        ),
        (
            {"SWERL_TRAIN__KUBERNETES__TIMEOUT_S": "0"},
            "invalid setting train.kubernetes.timeout_s (SWERL_TRAIN__KUBERNETES__TIMEOUT_S): "
            "expected a number of seconds in (0, 2_592_000] (or none), got 0",
        ),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(env=env)
    assert str(excinfo.value).startswith(message)


def _number_settings(cls: type, prefix: str = "") -> Iterator[tuple[str, type]]:
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        kinds = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        if dataclasses.is_dataclass(kinds[0]):
            yield from _number_settings(kinds[0], f"{prefix}{f.name}.")
        elif kinds[0] in (int, float):
            yield f"{prefix}{f.name}", kinds[0]


NUMBER_SETTINGS = list(_number_settings(Settings))


@pytest.mark.parametrize(("key", "kind"), NUMBER_SETTINGS, ids=[key for key, _ in NUMBER_SETTINGS])
def test_every_number_setting_refuses_values_past_its_bounds_naming_key_and_variable(key: str, kind: type) -> None:
    env_name = env_var(key)
    for huge in ("1e300", "-1e300") if kind is float else ("1" + "0" * 30, "-1" + "0" * 30):
        with pytest.raises(ConfigError) as excinfo:
            load_settings(env={env_name: huge})
        assert str(excinfo.value).startswith(f"invalid setting {key} ({env_name}): expected "), excinfo.value


def test_the_defaults_sit_inside_every_bound() -> None:
    assert len(NUMBER_SETTINGS) > 40, NUMBER_SETTINGS
    assert load_settings(env={}) == Settings()


def test_a_key_written_twice_is_refused_naming_key_lines_and_file(tmp_path: Path) -> None:
    config = tmp_path / "twice.yaml"
    config.write_text("registry:\n  alpha: 0.05\n  margin: 0.0\n  alpha: 0.5\n")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(config, env={})
    assert str(excinfo.value) == f"config file {config} sets registry.alpha twice (lines 2 and 4); keep one"


def test_the_recipe_and_demo_data_readers_refuse_a_key_written_twice_too(tmp_path: Path) -> None:
    from swerl_core.demo import spec_yaml
    from swerl_core.train.config import load_train_config

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: r\nbase_model: m\ngrpo:\n  beta: 0.0\n  beta: 0.1\n")
    with pytest.raises(ConfigError, match=r"recipe .*recipe.yaml sets grpo.beta twice \(lines 4 and 5\)"):
        load_train_config(recipe)
    with pytest.raises(DuplicateKeyError, match=r"sets repos\[0\].name twice"):
        spec_yaml.load("repos:\n  - {name: a, name: b}\n")


def test_yaml_merge_keys_and_aliases_are_not_duplicates() -> None:
    text = "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\nsame: *b\n"
    assert parse_yaml(text) == {"base": {"x": 1, "y": 2}, "other": {"x": 3, "y": 2}, "same": {"x": 1, "y": 2}}


def test_bad_file_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping of sections"):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.yaml", env={})


def test_token_is_wrapped_and_never_printed() -> None:
    token = github_token({"GITHUB_TOKEN": "ghp_supersecret"})
    assert isinstance(token, Secret)
    assert token.reveal() == "ghp_supersecret"
    assert "supersecret" not in repr(token) + str(token) + f"{token}"
    assert github_token({}) is None


def test_as_dict_is_plain_data() -> None:
    data = as_dict(load_settings(env={"SWERL_INGEST__REPOS": "a/b"}))
    assert data["ingest"]["repos"] == ["a/b"]
    assert data["home"] == "data"


def test_github_token_loses_the_newline_a_secret_file_leaves_and_refuses_inner_whitespace() -> None:
    token = github_token({"GITHUB_TOKEN": "ghp_abc123\n"})
    assert token is not None and token.reveal() == "ghp_abc123"
    assert github_token({"GITHUB_TOKEN": " \n"}) is None
    with pytest.raises(ConfigError, match="whitespace inside"):
        github_token({"GITHUB_TOKEN": "ghp_abc 123"})


def test_shown_settings_drop_credentials_from_urls_and_keep_everything_else() -> None:
    from swerl_core.config import shown_settings

    tracking = "http://ci:hunter2@mlflow:5000"
    settings = load_settings(env={}, overrides={"mlflow_tracking_uri": tracking, "reward.workers": 3})
    shown = shown_settings(settings)
    assert shown["mlflow_tracking_uri"] == "http://mlflow:5000" and "hunter2" not in repr(shown)
    assert shown["reward"] == as_dict(settings)["reward"] and shown["train"]["launcher"] == "local"


def test_a_section_with_keys_of_mixed_types_is_an_unknown_setting_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text("github:\n  1: a\n  x: b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting github.1"):
        load_settings(path)
