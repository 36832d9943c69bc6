"""The sample world as data files: the YAML reads back to exactly the specs it was written from, and a typo fails."""

from __future__ import annotations

import pytest

from swerl_core.demo import spec_yaml
from swerl_core.demo.world import ACCOUNTS, LATER_BATCHES, SAMPLE_REPOS, Account, HistoryBatch, RepoSpec, Write


def test_every_sample_repository_survives_a_yaml_round_trip() -> None:
    by_login = spec_yaml.Reference(Account, "login", ACCOUNTS)
    for spec in SAMPLE_REPOS:
        text = spec_yaml.dump(spec_yaml.encode(spec, by_login))
        assert spec_yaml.decode(RepoSpec, spec_yaml.load(text), by_login) == spec
    for batch in LATER_BATCHES:
        data = spec_yaml.load(spec_yaml.dump(spec_yaml.encode(batch, by_login)))
        assert spec_yaml.decode(HistoryBatch, data, by_login) == batch


def test_binary_latin1_and_crlf_file_versions_keep_their_bytes() -> None:
    writes = [op for spec in SAMPLE_REPOS for op in spec.initial.commit.ops if isinstance(op, Write)]
    assert any(w.encoding == "latin-1" for w in writes) and any(w.newline == "\r\n" for w in writes)
    pulls = [pull for spec in SAMPLE_REPOS for pull in spec.pulls]
    logo = next(op for p in pulls for c in p.commits for op in c.ops if getattr(op, "path", "") == "docs/logo.png")
    assert isinstance(logo, Write) and isinstance(logo.content, bytes) and logo.content.startswith(b"\x89PNG")


def test_a_misspelt_field_or_unknown_account_is_named() -> None:
    by_login = spec_yaml.Reference(Account, "login", ACCOUNTS)
    with pytest.raises(spec_yaml.SpecDataError, match=r"x\.initial: PushSpec has no field 'comit'"):
        spec_yaml.decode(RepoSpec, {"initial": {"comit": {}}}, by_login, "x")
    with pytest.raises(spec_yaml.SpecDataError, match="unknown account 'nobody'"):
        spec_yaml.decode(Account, "nobody", by_login, "x")
