"""``make demo``'s closing report, laid out from the rows the retrain run published (no server needed)."""

from __future__ import annotations

from swerl_core.demo.summary import demo_summary, gate_lines, stage_table

EVALUATIONS = [
    {"stage": "base", "model": "tiny-learnable-induction", "mean reward": -1.0, "90% interval": "[-1.000, -1.000]",
     "format-error rate": 1.0, "apply rate": 0.0, "samples per instance": 4, "held-out instances": 120},
    {"stage": "sft", "model": "final", "mean reward": -0.12, "90% interval": "[-0.210, -0.030]",
     "format-error rate": 0.5, "apply rate": 0.45, "samples per instance": 4, "held-out instances": 120},
    {"stage": "grpo", "model": "checkpoint-30", "mean reward": 0.21, "90% interval": "[+0.120, +0.300]",
     "format-error rate": 0.3, "apply rate": 0.65, "samples per instance": 4, "held-out instances": 120},
    {"stage": "grpo", "model": "checkpoint-60", "mean reward": 0.35, "90% interval": "[+0.270, +0.430]",
     "format-error rate": 0.2, "apply rate": 0.75, "samples per instance": 4, "held-out instances": 120},
]  # fmt: skip
REGISTRATION = [{"registered checkpoint": "/home/checkpoints/run/checkpoint-60", "version": 1, "gate": "pass",
                 "against": "trained_from", "aliases": "challenger, champion"}]  # fmt: skip


def test_the_stage_table_marks_only_the_registered_checkpoint_and_shows_each_interval() -> None:
    lines = stage_table(EVALUATIONS, REGISTRATION[0]["registered checkpoint"])
    assert "120 pull requests, K = 4" in lines[0]
    marked = [line for line in lines if "<- registered" in line]
    assert len(marked) == 1 and "checkpoint-60" in marked[0] and "+0.350" in marked[0]
    assert any("[-0.210, -0.030]" in line and "sft" in line for line in lines)
    assert stage_table([], None) == ["  (no evaluation was published)"]


def test_the_stage_table_shows_resolved_and_auc_beside_the_reward_when_tests_ran() -> None:
    assert not any("resolved" in line for line in stage_table(EVALUATIONS, None)), "no tests ran: no such column"
    columns = zip(EVALUATIONS, (0.0, 0.25, 0.4, 0.5), ("-", 0.61, 0.7, 0.83), strict=True)
    ran = [{**row, "resolved rate": rate, "reward AUC for resolved": auc, "executable instances": 40}
           for row, rate, auc in columns]  # fmt: skip
    lines = stage_table(ran, None)
    assert "resolved" in lines[1] and "AUC" in lines[1]
    base, sft, _, last = lines[2:6]
    assert base.split()[-2:] == ["0%", "-"] and sft.split()[-2:] == ["25%", "0.61"]
    assert last.split()[-2:] == ["50%", "0.83"]
    assert "over 40 executable held-out pull requests" in lines[-1]


def test_the_gate_lines_say_the_verdict_its_baseline_and_why() -> None:
    markdown = "# Gate\nDecision: pass\nWhy: the paired gain over the SFT model is +0.47 [+0.38, +0.56] > 0\n"
    verdict, why = gate_lines(markdown, REGISTRATION)
    assert "pass against trained_from -> version v1" in verdict and "champion" in verdict
    assert why == "  why: the paired gain over the SFT model is +0.47 [+0.38, +0.56] > 0"
    assert gate_lines(None, []) == ["gate: no version was registered"]


def test_the_summary_holds_every_part_in_order() -> None:
    tables = {"held-out-evaluations": EVALUATIONS, "retrain-registration": REGISTRATION}
    text = demo_summary("Completed: registered v1", tables, {}, "reward: -0.4 -> +0.2", ["v1: champion"], ["UI"])
    order = [text.index(part) for part in ("retrain: Completed", "reward: -0.4", "held-out mean reward", "gate: pass",
                                           "registered versions:", "UI")]  # fmt: skip
    assert order == sorted(order)


def test_the_narration_says_the_state_until_a_subflow_starts_then_each_subflow_once() -> None:
    from swerl_core.demo.summary import Narration

    narration = Narration()
    assert narration.update("Scheduled", []) == ["  retrain: Scheduled (waiting for the worker)"]
    assert narration.update("Scheduled", []) == []
    assert narration.update("Running", [(1, "ingest")]) == ["  retrain: Running", "  ingest: started"]
    assert narration.update("Running", [(1, "ingest"), (2, "curate")]) == ["  curate: started"]
    assert narration.update("Completed", [(1, "ingest"), (2, "curate")]) == []


def test_versions_and_links_name_what_a_user_opens_next() -> None:
    from types import SimpleNamespace

    from swerl_core.demo.summary import ui_links, version_lines

    rows = [SimpleNamespace(version="1", aliases=["champion"], verdict="pass", against="its base"),
            SimpleNamespace(version="2", aliases=[], verdict="fail", against=None)]  # fmt: skip
    assert version_lines(rows) == ["v1: aliases champion; gate pass against its base", "v2: aliases -; gate fail"]
    links = ui_links("http://127.0.0.1:4200", "http://127.0.0.1:5000", "abc", "swerl-policy")
    assert links[0].endswith("http://127.0.0.1:4200/runs/flow-run/abc")
    assert links[2].endswith("http://127.0.0.1:5000/#/models/swerl-policy")
