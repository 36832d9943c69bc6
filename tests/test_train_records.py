"""The records a training process hands its launcher: a progress event and the run's result cross the process
boundary as their own JSON (no text is parsed back), and the launcher's reader reports each step once and keeps
a result it cannot read as the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swerl_core.progress import Progress, ProgressReporter
from swerl_core.train.followed import PROGRESS_MARK, RESULT_MARK, TrainingOutput
from swerl_core.train.result import TrainResult

RESULT = TrainResult(
    run_name="r-grpo-s-20260101-000000",
    mlflow_run_id="abc",
    stage="grpo",
    snapshot_id="s",
    base_model="/m/sft/final",
    checkpoint_dir=Path("/h/checkpoints/r"),
    model_dir=Path("/h/checkpoints/r/final"),
    steps=3,
    train_examples=17,
    dropped_too_long=2,
    seconds=12.5,
    metrics={"reward": -0.25, "loss": 0.125},
    checkpoint_uri=None,
    resumed_from_steps=(1, 2),
    restarts=1,
)


def test_a_progress_event_with_metrics_survives_its_json() -> None:
    event = Progress("train", 2, 3, "step 2/3 reward=-0.25", {"reward": -0.25, "kl": 0.01})
    assert Progress.from_json(event.as_json()) == event
    assert Progress.from_json(Progress("curate", 0, None, "reading").as_json()).metrics == {}


@pytest.mark.parametrize(
    ("record", "says"),
    [
        ({"stage": "train", "step": "2", "total": 3, "message": "m"}, "integer step"),
        ({"stage": "train", "step": 2, "total": 3, "message": "m", "metrics": {"reward": "high"}}, "not numbers"),
        ({"step": 2, "total": 3, "message": "m"}, "valid stage"),
    ],
)
def test_a_progress_record_that_is_not_one_says_which_field(record: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Progress.from_json(json.dumps(record))


def test_the_reporter_hands_the_callback_its_metrics_as_numbers() -> None:
    seen: list[Progress] = []
    ProgressReporter("train", seen.append)("step 1/2 loss=0.5", 1, 2, {"loss": 0.5})
    assert seen == [Progress("train", 1, 2, "step 1/2 loss=0.5", {"loss": 0.5})]


def test_the_result_survives_its_json_and_a_partial_record_says_what_it_lacks() -> None:
    assert TrainResult.from_json(RESULT.as_json()) == RESULT
    record = json.loads(RESULT.as_json())
    del record["model_dir"], record["seconds"]
    with pytest.raises(ValueError, match="^lacks model_dir, seconds$"):
        TrainResult.from_json(json.dumps(record))
    with pytest.raises(ValueError, match="stage 'ppo'"):
        TrainResult.from_json(json.dumps({**json.loads(RESULT.as_json()), "stage": "ppo"}))


def test_the_reader_reports_each_step_once_passes_other_lines_on_and_keeps_the_first_result() -> None:
    events: list[Progress] = []
    lines: list[str] = []
    output = TrainingOutput(events.append, lines.append)
    start = Progress("train", 0, None, "train grpo r: 17 examples")
    step = Progress("train", 1, 3, "step 1/3", {"reward": -1.0})
    for line in [PROGRESS_MARK + start.as_json(), "loading weights", PROGRESS_MARK + step.as_json()] * 2:
        output.line(line)  # as two pods of one Job print them
    output.line(PROGRESS_MARK + "not json at all {")
    output.line(RESULT_MARK + RESULT.as_json())
    output.line(RESULT_MARK + "{}")
    assert events == [start, step] and lines == ["loading weights", "loading weights"]
    assert output.result == RESULT and output.bad_result is None and output.tail[-1] == "loading weights"
    unreadable = TrainingOutput(None, lines.append)
    unreadable.line(RESULT_MARK + json.dumps({"run_name": "r"}))
    assert unreadable.result is None and unreadable.bad_result is not None
    assert unreadable.bad_result.startswith("lacks checkpoint_dir, model_dir")
