"""The trainer's client of a rollout server against a server that misbehaves: it dies, hangs, answers garbage, or
confirms the wrong weights. Each must end in one :class:`RolloutServerError` naming the server and what went wrong,
within the request deadline, never a hang or a ``KeyError`` from inside TRL.

The server is a real HTTP server on 127.0.0.1 speaking the few routes the client uses; a real vLLM server is
exercised in ``test_vllm_server.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_rollout import FakeRolloutServer, serving

from swerl_core.train.rollout_client import RolloutServerError, connect
from swerl_core.weight_sync import write_weights

DEADLINE_S = 1.0


@pytest.fixture
def fake() -> Iterator[FakeRolloutServer]:
    with serving() as server:
        yield server


def _generate(client: object) -> dict:
    return client.generate([[1, 2, 3]], n=2, max_tokens=2)  # type: ignore[attr-defined]


def test_a_healthy_server_generates(fake: FakeRolloutServer) -> None:
    output = _generate(connect(fake.url, 5, DEADLINE_S))
    assert output["completion_ids"] == [[7, 8], [7, 8]]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("hang", f"did not answer /v1/completions within {DEADLINE_S:g} s (grpo.vllm_request_timeout_s)"),
        ("error", "answered /v1/completions with HTTP 500"),
        ("html", "answered /v1/completions with something that is not JSON: <html>proxy error</html>"),
        ("garbage", "answered a generation request with garbage (KeyError('prompt_token_ids'))"),
        ("short", "returned 1 completions for 2 asked"),
    ],
)
def test_a_misbehaving_server_is_one_error_naming_it(fake: FakeRolloutServer, mode: str, reason: str) -> None:
    client = connect(fake.url, 5, DEADLINE_S)
    fake.mode = mode
    with pytest.raises(RolloutServerError) as failure:
        _generate(client)
    assert str(failure.value).startswith(f"rollout server {fake.url} {reason}")
    assert "\n" not in str(failure.value)
    assert str(failure.value.at_step(7)).endswith(" at step 7")


def test_a_server_that_died_is_named_with_the_cause(fake: FakeRolloutServer) -> None:
    client = connect(fake.url, 5, DEADLINE_S)
    fake.shutdown()
    fake.server_close()
    with pytest.raises(RolloutServerError, match=r"cannot be reached for /v1/completions \(connection refused\)"):
        _generate(client)


def test_a_server_that_never_comes_up_is_refused_after_the_start_timeout() -> None:
    with pytest.raises(RolloutServerError, match=r"did not come up within 0.5 s \(grpo.vllm_server_timeout_s\)"):
        connect("http://127.0.0.1:9", 0.5, DEADLINE_S)


def test_a_weight_sync_must_be_confirmed_with_its_version_and_nonce(fake: FakeRolloutServer, tmp_path: Path) -> None:
    import torch

    client = connect(fake.url, 5, DEADLINE_S)
    written = write_weights(tmp_path, 3, [("w", torch.ones(2))])
    fake.confirm = {"version": 3, "nonce": written.nonce}
    client.load_weights(written)  # confirmed: no error
    fake.confirm = {"version": 2, "nonce": written.nonce}  # a server that kept the previous version
    with pytest.raises(RolloutServerError, match="did not confirm weights version 3"):
        client.load_weights(written)
    fake.confirm = {"version": 3, "nonce": "another-write"}  # the same number, another write
    with pytest.raises(RolloutServerError, match="did not confirm weights version 3"):
        client.load_weights(written)
    fake.mode = "error"  # e.g. a version outside the server's --weights-dir: vLLM's error names no path
    with pytest.raises(RolloutServerError) as refused:
        client.load_weights(written)
    said = str(refused.value)
    assert "HTTP 500: " in said and f"loading weights version 3 from {written.path} " in said, said


def test_weights_replaced_by_another_trainer_stop_the_run(fake: FakeRolloutServer, tmp_path: Path) -> None:
    """A second trainer on the same server loads its own versions between this one's sync and its generation: the
    completions may come from another policy, so the generation fails instead of training on them silently."""
    import torch

    client = connect(fake.url, 5, DEADLINE_S)
    written = write_weights(tmp_path, 3, [("w", torch.ones(2))])
    fake.confirm = {"version": 3, "nonce": written.nonce}
    client.load_weights(written)
    assert _generate(client)["completion_ids"] == [[7, 8], [7, 8]]  # still ours: no error
    fake.served = {"version": 1, "nonce": "the-other-run"}
    with pytest.raises(RolloutServerError, match=r"no longer serves this run's weights version 3 but .*the-other-run"):
        _generate(client)
    fake.served = None  # a server restarted between the sync and the generation
    with pytest.raises(RolloutServerError, match=r"version 3 but \[None\] \(it was restarted"):
        _generate(client)


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["--weight-sync", "directory"], "--weight-sync directory needs --weights-dir"),
        (["--weight-sync", "directory", "--weights-dir", "{tmp}/missing"], "is not a directory"),
        (["--port", "0"], "--port must be a positive integer"),
        (["--port", "70000"], "--port must be at most 65535"),
        (["--model", "{tmp}/no-such-model"], "--model {tmp}/no-such-model is not a folder"),
        (["--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization must be in (0, 1]"),
        (["--weight-sync", "nccl"], "--weight-sync nccl needs CUDA; on a CPU use --weight-sync directory"),
        (["--weight-sync", "directory", "--weights-dir", "{tmp}"], "takes attention head sizes"),
    ],
)
def test_the_rollout_launcher_refuses_what_cannot_serve_in_one_line(
    args: list[str], refusal: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from swerl_core import rollout_server

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"hidden_size": 64, "num_attention_heads": 4}))  # head size 16
    with pytest.raises(SystemExit) as stopped:
        rollout_server.main(["--model", str(model), *(arg.replace("{tmp}", str(tmp_path)) for arg in args)])
    message = str(stopped.value.code) if stopped.value.code not in (0, 1, 2) else capsys.readouterr().err
    assert stopped.value.code != 0 and refusal.replace("{tmp}", str(tmp_path)) in message, message
