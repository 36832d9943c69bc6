"""Snapshot loading, oracle answers, the reward adapter, checkpoint bookkeeping and the tiny model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from swerl_core.config import Settings
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID, write_sample_snapshot
from swerl_core.reward import search_replace_reward
from swerl_core.runs import last_checkpoint, remove_incomplete_checkpoints
from swerl_core.snapshots import SnapshotError, as_files, read_manifest
from swerl_core.train.examples import oracle_completion
from swerl_core.train.reward_fn import SweRLReward
from swerl_core.train.snapshot import load_snapshot


@pytest.fixture
def snapshot(swerl_home: Path) -> Path:
    """The snapshots directory holding the sample snapshot."""
    write_sample_snapshot(swerl_home)
    return Settings(home=swerl_home).snapshots_dir


def test_load_snapshot_returns_train_and_heldout_rows(snapshot: Path) -> None:
    train, heldout = load_snapshot(snapshot, SAMPLE_SNAPSHOT_ID)
    manifest = json.loads((snapshot / SAMPLE_SNAPSHOT_ID / "manifest.json").read_text())
    assert (len(train), len(heldout)) == (manifest["train_rows"], manifest["heldout_rows"])
    assert max(train["merged_at"]) < min(heldout["merged_at"]), "held-out rows must be merged after train rows"
    assert len(set(train["instance_id"]) | set(heldout["instance_id"])) == len(train) + len(heldout)


def test_unknown_snapshot_is_a_one_line_error(snapshot: Path) -> None:
    with pytest.raises(SnapshotError, match=f"snapshot 'nope' not found.*known: {SAMPLE_SNAPSHOT_ID}"):
        load_snapshot(snapshot, "nope")


def test_unreadable_manifest_is_reported_by_the_one_snapshot_reader(snapshot: Path) -> None:
    directory = snapshot / SAMPLE_SNAPSHOT_ID
    (directory / "manifest.json").write_text('{"id": "' + SAMPLE_SNAPSHOT_ID + '", ')
    with pytest.raises(SnapshotError) as read:
        read_manifest(snapshot, SAMPLE_SNAPSHOT_ID)
    with pytest.raises(SnapshotError) as trained:
        load_snapshot(snapshot, SAMPLE_SNAPSHOT_ID)
    assert str(trained.value) == str(read.value), "training must report what the snapshot reader reports"
    assert "unreadable manifest.json" in str(trained.value) and "\n" not in str(trained.value)


def test_snapshot_missing_a_column_is_rejected(snapshot: Path) -> None:
    import pyarrow.parquet as pq

    path = snapshot / SAMPLE_SNAPSHOT_ID / "train.parquet"
    pq.write_table(pq.read_table(path).drop(["oracle_new_content"]), path)
    manifest = json.loads((path.parent / "manifest.json").read_text())  # written so by its writer: hashes hold
    manifest["files"]["train.parquet"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (path.parent / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match="lacks column.*oracle_new_content"):
        load_snapshot(snapshot, SAMPLE_SNAPSHOT_ID)


def test_oracle_answer_scores_one_on_every_snapshot_row(snapshot: Path) -> None:
    train, heldout = load_snapshot(snapshot, SAMPLE_SNAPSHOT_ID)
    for row in [*train, *heldout]:
        result = search_replace_reward(
            as_files(row["code_context"]), as_files(row["oracle_new_content"]), oracle_completion(row)
        )
        assert result.reward == 1.0, f"{row['instance_id']}: derived answer scored {result}"


def test_reward_adapter_scores_a_batch_with_format_errors(snapshot: Path, tmp_path: Path) -> None:
    train, _ = load_snapshot(snapshot, SAMPLE_SNAPSHOT_ID)
    row = train[0]
    oracle = oracle_completion(row)
    no_think = oracle.split("</think>")[1]
    wrong_search = oracle.replace("<<<<<<< SEARCH\n", "<<<<<<< SEARCH\nnot in the file\n")
    texts = [oracle, "I do not know.", no_think, wrong_search]
    logged: dict[str, float] = {}
    reward = SweRLReward(workers=1, samples_to_keep=8, order_log=tmp_path / "order.jsonl")
    rewards = reward(
        prompts=[[{"role": "user", "content": "fix"}]] * 4,
        completions=[[{"role": "assistant", "content": t}] for t in texts],
        code_context=[row["code_context"]] * 4,
        oracle_new_content=[row["oracle_new_content"]] * 4,
        instance_id=[row["instance_id"]] * 4,
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert rewards == [1.0, -1.0, -1.0, -1.0]
    assert logged["format_error_rate"] == 0.75 and logged["reward_time_s"] >= 0
    assert [s.error is None for s in reward.samples] == [True, False, False, False]
    order = [json.loads(line) for line in (tmp_path / "order.jsonl").read_text().splitlines()]
    assert order == [{"step": 1, "instance_ids": [row["instance_id"]]}]


def test_reward_adapter_accepts_plain_text_completions(snapshot: Path) -> None:
    train, _ = load_snapshot(snapshot, SAMPLE_SNAPSHOT_ID)
    row = train[1]
    rewards = SweRLReward(workers=1)(
        prompts=["p"],
        completions=[oracle_completion(row)],
        code_context=[row["code_context"]],
        oracle_new_content=[row["oracle_new_content"]],
    )
    assert rewards == [1.0]


def test_half_written_checkpoint_is_ignored_and_removed(tmp_path: Path) -> None:
    for step in (1, 2):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-3" / "model.safetensors").write_bytes(b"partial")
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    assert remove_incomplete_checkpoints(tmp_path) == [tmp_path / "checkpoint-3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1", "checkpoint-2"]


def test_tiny_model_loads_offline_and_renders_chat(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from swerl_core.demo.tiny_model import TinyModelSpec, init_tiny_model, parameter_count
    from swerl_core.prompts import render_prompt

    out = init_tiny_model(tmp_path / "tiny", TinyModelSpec(hidden_size=64, intermediate_size=128, num_layers=2))
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    text = render_prompt(tokenizer, "bug", {"a.py": "x = 1\n"})
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n"), text[-80:]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text, "the byte-level tokenizer must round-trip the prompt"
    assert model.config.eos_token_id == tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert 100_000 < parameter_count(out) == sum(p.numel() for p in model.parameters())


def test_sft_trains_on_the_prompt_tokens_that_grpo_and_evaluation_generate_from(snapshot: Path) -> None:
    # SFT tokenizes prompt + answer in one go; GRPO and evaluation tokenize the prompt alone. Unless the
    # prompt's tokens are a prefix of the pair's, SFT teaches answers after a context never seen later.
    from swerl_core.demo.tiny_model import build_tokenizer
    from swerl_core.prompts import chat_messages

    tokenizer = build_tokenizer()
    train, _ = load_snapshot(snapshot, SAMPLE_SNAPSHOT_ID)
    for row in train.select(range(4)):
        prompt = chat_messages(row["problem_statement"], as_files(row["code_context"]))
        answer = [{"role": "assistant", "content": oracle_completion(row)}]
        alone = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
        pair = tokenizer.apply_chat_template(prompt + answer, tokenize=True, return_dict=True)
        n = len(alone["input_ids"])
        boundary = tokenizer.convert_ids_to_tokens(pair["input_ids"][n - 3 : n + 1])
        assert pair["input_ids"][:n] == alone["input_ids"], boundary


def test_sft_leaves_out_rows_without_an_exact_oracle_answer(snapshot: Path) -> None:
    from datasets import Dataset

    from swerl_core.demo.tiny_model import build_tokenizer
    from swerl_core.train.examples import sft_examples

    train, _ = load_snapshot(snapshot, SAMPLE_SNAPSHOT_ID)
    rows = [dict(train[0]), dict(train[1])]
    marker_file = "a = 0\nx = 1\n=======\nz = 9\n"
    rows[1]["code_context"] = [{"path": "docs.py", "content": marker_file}]
    rows[1]["oracle_new_content"] = [{"path": "docs.py", "content": marker_file.replace("x = 1", "x = 2")}]
    examples = sft_examples(Dataset.from_list(rows), build_tokenizer(), 4096, 4096)
    assert (len(examples.dataset), examples.dropped_unanswerable, examples.dropped_too_long) == (1, 1, 0)
    assert examples.dataset[0]["instance_id"] == rows[0]["instance_id"]


def test_curate_counts_a_rows_prompt_tokens_exactly_as_training_does(snapshot: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from swerl_core.curate.tokens import PromptCounter
    from swerl_core.demo.tiny_model import build_tokenizer
    from swerl_core.train.examples import prompt_tokens

    build_tokenizer().save_pretrained(tmp_path / "tok")  # type: ignore[attr-defined]
    counter = PromptCounter(tmp_path / "tok", chars_per_token=4.0)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
    train, heldout = load_snapshot(snapshot, SAMPLE_SNAPSHOT_ID)
    quoting = {**train[0], "problem_statement": "Output stops at <|eot_id|> in the text\n\nSee <|begin_of_text|>."}
    for row in [*train, *heldout, quoting]:
        curated = counter.count(row["problem_statement"], as_files(row["code_context"]))
        trained = prompt_tokens(tokenizer, row)
        assert curated == trained, f"{row['instance_id']}: curate counts {curated} tokens, training {trained}"


def test_curate_refuses_a_tokenizer_training_could_not_use(tmp_path: Path) -> None:
    from swerl_core.curate import CurateError
    from swerl_core.curate.tokens import PromptCounter
    from swerl_core.demo.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.chat_template = None  # type: ignore[attr-defined]
    tokenizer.save_pretrained(tmp_path / "tok")  # type: ignore[attr-defined]
    with pytest.raises(CurateError, match="has no chat template"):
        PromptCounter(tmp_path / "tok", chars_per_token=4.0)
