"""The induction warm-up: a model that copies from its context, saved with its tokenizer and a record that lets
a second call with the same source model and curriculum reuse it instead of training again."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from eval_world import tiny_model_dir

from swerl_core.demo.errors import DemoError
from swerl_core.demo.induction import PROBE_GAPS, RECORD, InductionSpec, source_fingerprint, warm_up_induction

QUICK = InductionSpec(adjacent_steps=3, adjacent_batch=4, gap_steps=2, gap_batch=2, max_gap=12, warmup_steps=2)


def test_a_warm_up_is_reused_for_the_same_source_and_spec_and_trained_again_when_either_changes(
    tmp_path: Path,
) -> None:
    source, out = tiny_model_dir(), tmp_path / "warm"
    first = warm_up_induction(source, out, QUICK)
    assert not first.reused and set(first.copy_accuracy) == set(PROBE_GAPS)
    assert {"config.json", "model.safetensors", "tokenizer.json", RECORD} <= {p.name for p in out.iterdir()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locks", "warm"], "staging folders left behind"
    record = json.loads((out / RECORD).read_text())
    assert record["source"] == source_fingerprint(source) and record["spec"]["adjacent_steps"] == 3
    weights = (out / "model.safetensors").read_bytes()
    assert weights != (source / "model.safetensors").read_bytes(), "the warm-up did not change the weights"

    again = warm_up_induction(source, out, QUICK)
    assert again.reused and again.copy_accuracy == first.copy_accuracy
    assert (out / "model.safetensors").read_bytes() == weights

    longer = warm_up_induction(source, out, replace(QUICK, gap_steps=3))
    assert not longer.reused and json.loads((out / RECORD).read_text())["spec"]["gap_steps"] == 3

    other_source = tmp_path / "other"
    other_source.mkdir()
    for path in source.iterdir():
        (other_source / path.name).write_bytes(path.read_bytes())
    (other_source / "config.json").write_text((source / "config.json").read_text() + "\n")
    assert not warm_up_induction(other_source, out, replace(QUICK, gap_steps=3)).reused


def test_a_damaged_or_outdated_output_is_trained_again_and_a_bad_output_path_is_refused(tmp_path: Path) -> None:
    source, out = tiny_model_dir(), tmp_path / "warm"
    warm_up_induction(source, out, QUICK)
    (out / "model.safetensors").unlink()  # killed while an older tool deleted the folder
    assert not warm_up_induction(source, out, QUICK).reused
    record = json.loads((out / RECORD).read_text())
    (out / RECORD).write_text(json.dumps({**record, "version": record["version"] - 1}))  # an older curriculum
    assert not warm_up_induction(source, out, QUICK).reused
    assert warm_up_induction(source, out, QUICK).reused

    with pytest.raises(DemoError, match="is the source model"):
        warm_up_induction(out, out, QUICK)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(DemoError, match="is a file"):
        warm_up_induction(source, tmp_path / "a-file", QUICK)


def test_the_same_seed_gives_the_same_weights(tmp_path: Path) -> None:
    a = warm_up_induction(tiny_model_dir(), tmp_path / "a", QUICK)
    b = warm_up_induction(tiny_model_dir(), tmp_path / "b", QUICK)
    assert (a.model_dir / "model.safetensors").read_bytes() == (b.model_dir / "model.safetensors").read_bytes()
    c = warm_up_induction(tiny_model_dir(), tmp_path / "c", replace(QUICK, seed=1))
    assert (c.model_dir / "model.safetensors").read_bytes() != (a.model_dir / "model.safetensors").read_bytes()


def test_a_random_model_copies_nothing() -> None:
    from transformers import AutoModelForCausalLM

    from swerl_core.demo.induction import copy_accuracy

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir())
    assert max(copy_accuracy(model, gap) for gap in (0, 7)) < 0.05  # 512 tokens: chance is 0.002


def test_a_folder_holding_other_files_is_never_replaced_by_a_warm_up(tmp_path: Path) -> None:
    home = tmp_path / "home"  # e.g. `swerl init-model --learnable --tiny . --force`: SWERL_HOME itself
    home.mkdir()
    (home / "swerl.duckdb").write_text("the store")
    with pytest.raises(DemoError, match="holds files but no model"):
        warm_up_induction(tiny_model_dir(), home, QUICK)
    assert (home / "swerl.duckdb").read_text() == "the store"


@pytest.mark.parametrize("tied", [False, True])
def test_the_repeat_loss_and_its_gradients_are_those_of_a_label_mask_before_the_repeat(tied: bool) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from swerl_core.demo.induction import repeat_batch, repeat_loss

    config = AutoConfig.from_pretrained(tiny_model_dir())
    config.tie_word_embeddings = tied  # tied: the learnable world's shape (LEARNABLE_SPEC)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == tied
    generator = torch.Generator().manual_seed(3)
    for max_gap in (0, 30):  # the adjacent phase's rows, then the gap phase's (a lead and a gap before the repeat)
        ids, length = repeat_batch(generator, model.config.vocab_size, 4, max_gap)
        labels = ids.clone()
        labels[:, : ids.size(1) - length + 1] = -100
        model.zero_grad()
        masked = model(input_ids=ids, labels=labels).loss
        masked.backward()
        expected = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        loss = repeat_loss(model, ids, length)
        loss.backward()
        assert float(loss) == pytest.approx(float(masked), rel=1e-5)
        for got, want in zip((p.grad for p in model.parameters()), expected, strict=True):
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="needs 2 to the row"):
        repeat_loss(model, ids, 1)
