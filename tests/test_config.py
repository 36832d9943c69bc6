"""Settings: defaults < YAML file < SWERL_* environment < explicit overrides, with clear errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from swerl_core.config import ConfigError, Secret, as_dict, github_token, load_settings


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
        ({"SWERL_GITHUB__PER_PAGE": "500"}, "invalid setting github.per_page: expected an integer in 1..100"),
        ({"SWERL_GITHUB__MAX_RETRIES": "many"}, "invalid setting github.max_retries: expected int, got 'many'"),
        ({"SWERL_GITHUB__COLOR": "blue"}, "unknown setting github.color (github); allowed: api_url"),
        ({"SWERL_INGEST__REPOS": "not-a-repo"}, "invalid setting ingest.repos: expected entries like OWNER/NAME"),
        ({"SWERL_GITHUB__USE_GRAPHQL": "maybe"}, "invalid setting github.use_graphql: expected bool"),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(env=env)
    assert str(excinfo.value).startswith(message)


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
