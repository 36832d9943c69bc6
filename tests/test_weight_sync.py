"""The directory weight sync's versions on disk: written whole or not at all, read back tensor for tensor, replaced,
pruned, and refused when they are not what a server was asked to load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import swerl_core.weight_sync as weight_sync
from swerl_core.weight_sync import (
    WeightSyncError,
    inside_root,
    prune_weights,
    read_weights,
    remove_weights,
    write_weights,
)


def _weights() -> list[tuple[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [(f"model.layers.{i}.weight", torch.randn(64, 32, generator=generator)) for i in range(5)]


def test_a_version_reads_back_tensor_for_tensor_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weight_sync, "SHARD_BYTES", 3 * 64 * 32 * 4)  # three tensors to a shard: two shards
    written = write_weights(tmp_path, 12, _weights())
    manifest, tensors = read_weights(written.path)
    assert (manifest["version"], manifest["nonce"], manifest["tensors"]) == (12, written.nonce, 5)
    assert len(manifest["shards"]) == 2
    read = list(tensors)
    assert [name for name, _ in read] == [name for name, _ in _weights()]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(read, _weights(), strict=True))


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken() -> object:
        yield from _weights()[:2]
        raise RuntimeError("gather failed")

    with pytest.raises(RuntimeError, match="gather failed"):
        write_weights(tmp_path, 1, broken())
    assert list(tmp_path.iterdir()) == []


def test_writing_a_version_again_replaces_it_and_pruning_keeps_one(tmp_path: Path) -> None:
    first = write_weights(tmp_path, 4, _weights())
    other = write_weights(tmp_path, 5, _weights())
    again = write_weights(tmp_path, 4, [("w", torch.zeros(3))])  # a resumed run syncs step 4 again
    assert again.path == first.path and again.nonce != first.nonce
    assert read_weights(again.path)[0]["nonce"] == again.nonce
    prune_weights(tmp_path, other)
    assert [entry.name for entry in tmp_path.iterdir()] == [other.path.name]


def test_a_version_missing_its_manifest_or_a_shard_is_refused(tmp_path: Path) -> None:
    written = write_weights(tmp_path, 2, _weights())
    (written.path / "shard-00000.safetensors").unlink()
    with pytest.raises(WeightSyncError, match="lacks its shards shard-00000.safetensors"):
        read_weights(written.path)
    (written.path / "weights.json").write_text(json.dumps({"version": 2}))
    with pytest.raises(WeightSyncError, match="no readable weights version"):
        read_weights(written.path)
    with pytest.raises(WeightSyncError, match="no readable weights version"):
        read_weights(tmp_path / "nowhere")


def test_a_manifest_cannot_point_a_server_outside_its_version(tmp_path: Path) -> None:
    written = write_weights(tmp_path / "root", 2, _weights())
    manifest = json.loads((written.path / "weights.json").read_text())
    manifest["shards"] = ["../../secret.safetensors"]
    (written.path / "weights.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightSyncError, match="lacks its shards"):
        read_weights(written.path)


def test_only_folders_inside_the_root_are_inside(tmp_path: Path) -> None:
    root = tmp_path / "weights"
    (root / "v1").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    assert inside_root(root / "v1", root)
    assert not inside_root(root, root)
    assert not inside_root(root / ".." / "elsewhere", root)
    assert not inside_root(root / "link", root)


def test_pruning_and_removing_touch_only_versions(tmp_path: Path) -> None:
    """``grpo.vllm_weights_dir: checkpoints`` makes the run's own folder the weights root: its checkpoints, its
    ``final/`` and any other folder (even one named like ``vocab``) outlive every prune and the end of the run."""
    run_dir = tmp_path / "checkpoints" / "served"
    for kept in ("checkpoint-1", "final", "vocab", "v1-notes"):
        (run_dir / kept).mkdir(parents=True)
    (run_dir / f".v00000003-{'ab' * 16}").mkdir()  # a write killed before its rename
    write_weights(run_dir, 1, _weights())
    latest = write_weights(run_dir, 2, _weights())
    prune_weights(run_dir, latest)
    assert sorted(e.name for e in run_dir.iterdir()) == ["checkpoint-1", "final", "v00000002", "v1-notes", "vocab"]
    remove_weights(run_dir)
    assert sorted(e.name for e in run_dir.iterdir()) == ["checkpoint-1", "final", "v1-notes", "vocab"]
    remove_weights(tmp_path / "weights")  # never written: nothing to do
    only_versions = tmp_path / "rollout-weights"
    write_weights(only_versions, 1, _weights())
    remove_weights(only_versions)
    assert not only_versions.exists()


def test_a_server_refuses_a_version_of_another_shape_before_touching_its_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weights of another model (a server started with another --model than the recipe's) are refused with the
    tensor that does not fit, before vLLM's reload starts: one that fails half-way leaves the engine dead."""
    from types import SimpleNamespace

    from safetensors.torch import save_file

    model = tmp_path / "model"
    model.mkdir()
    save_file(dict(_weights()), str(model / "model.safetensors"))
    root = tmp_path / "weights"
    monkeypatch.setenv(weight_sync.WEIGHTS_DIR_ENV, str(root))
    worker = weight_sync.DirectoryReload()
    worker.model_runner = SimpleNamespace(model_config=SimpleNamespace(model=str(model)))  # no reload_weights
    other = [(name, torch.zeros(3, 3)) if i == 2 else (name, tensor) for i, (name, tensor) in enumerate(_weights())]
    written = write_weights(root, 1, other)
    with pytest.raises(WeightSyncError, match=r"does not fit the served model .*: 1 tensors of another shape, e\.g\. "
                       r"model\.layers\.2\.weight \[3, 3\] \(served: \[64, 32\]\)"):  # fmt: skip
        worker.swerl_load_weights(str(written.path), "1")
    assert worker.swerl_weights_version() is None
