"""Reading curated snapshots: ``<snapshots_dir>/<id>/{train,heldout}.parquet`` + ``manifest.json``, by id.

The one reader that curate (is this snapshot already there?), training (its dataset, and which snapshot
to take when none is named) and evaluation (the held-out instances) share, with one error type,
:class:`SnapshotError`; and :func:`as_files`, the one reading of a row's file lists. The directory comes
from ``Settings.snapshots_dir``. The row format is the contract in ``docs/data-contracts.md``; a split is
checked against its manifest's row count and for the columns the caller needs. This module never
writes a snapshot (:mod:`swerl_core.curate.snapshot` does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swerl_core.errors import SnapshotError

if TYPE_CHECKING:
    import pyarrow as pa

    from swerl_core.config import Settings

log = logging.getLogger("swerl.snapshots")

SPLITS = ("train", "heldout")
MANIFEST_KEYS = ("id", "train_rows", "heldout_rows")
"""Keys every reader of a manifest relies on."""
CURATED_KEYS = ("name", "created_at", "config", "source_watermarks")
"""Keys a manifest written by curate also holds (``files``: each split's SHA-256 and rows)."""


SNAPSHOT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""A snapshot id is one plain name: never a path (no ``/``, no leading dot, so never ``..``)."""


def snapshot_dir(snapshots_dir: Path, snapshot_id: str) -> Path:
    """The directory of snapshot ``snapshot_id``; :class:`SnapshotError` when the id is not a plain name."""
    if not isinstance(snapshot_id, str) or not SNAPSHOT_ID.match(snapshot_id) or ".." in snapshot_id:
        raise SnapshotError(f"{str(snapshot_id)[:80]!r} is not a snapshot id (letters, digits, '.', '_', '-'; no path)")
    return Path(snapshots_dir) / snapshot_id


def read_manifest(snapshots_dir: Path, snapshot_id: str) -> dict[str, Any]:
    """The ``manifest.json`` of snapshot ``snapshot_id``, checked to name that id.

    Raises :class:`SnapshotError` with a one-line message: ``missing`` when there is no such snapshot
    (the message lists the known ones), otherwise when the file is unreadable or names another id.
    """
    path = snapshot_dir(snapshots_dir, snapshot_id)
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = sorted(p.name for p in Path(snapshots_dir).glob("*") if (p / "manifest.json").exists())
        hint = f"known: {', '.join(known)}" if known else "no snapshot curated yet"
        raise SnapshotError(
            f"snapshot {snapshot_id!r} not found under {snapshots_dir} ({hint})", missing=True
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SnapshotError(f"snapshot {snapshot_id!r} has an unreadable manifest.json: {detail}") from None
    if not isinstance(manifest, dict) or manifest.get("id") != snapshot_id:
        raise SnapshotError(f"snapshot {snapshot_id!r}: manifest.json does not name id {snapshot_id!r}")
    lacking = [key for key in MANIFEST_KEYS if key not in manifest]
    if lacking:
        raise SnapshotError(f"snapshot {snapshot_id!r}: manifest.json lacks {', '.join(lacking)}")
    return manifest


def default_snapshot(settings: Settings, recipe_snapshot: str | None) -> str | None:
    """The snapshot a training run takes when none is named: the recipe's when it exists under
    ``settings.snapshots_dir`` (or shared storage is set: it is fetched from there), else the newest curated
    there, else the recipe's as written (``None`` when the recipe names none). A damaged manifest is never picked.
    """
    local = recipe_snapshot and (settings.snapshots_dir / recipe_snapshot / "manifest.json").is_file()
    if recipe_snapshot and (local or settings.storage.uri):
        return recipe_snapshot
    created: dict[str, str] = {}
    for manifest in settings.snapshots_dir.glob("*/manifest.json"):
        try:
            created[manifest.parent.name] = str(json.loads(manifest.read_text(encoding="utf-8"))["created_at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not created:
        return recipe_snapshot
    newest = max(created, key=lambda name: created[name])
    log.info("snapshot: %s (the newest curated)", newest)
    return newest


def snapshot_damage(snapshots_dir: Path, snapshot_id: str, manifest: dict[str, Any]) -> str | None:
    """What is wrong with curated snapshot ``snapshot_id`` against its manifest; None when intact.

    Checks that the manifest holds curate's keys and that each split exists, is readable Parquet, has
    the manifest's row count and, when the manifest records it, the same SHA-256.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    lacking = [key for key in CURATED_KEYS if key not in manifest]
    if lacking:
        return f"manifest.json lacks {', '.join(lacking)}"
    path = snapshot_dir(snapshots_dir, snapshot_id)
    recorded_files = manifest.get("files")
    files = recorded_files if isinstance(recorded_files, dict) else {}
    for split in SPLITS:
        name = f"{split}.parquet"
        if not (path / name).is_file():
            return f"{name} is missing"
        try:
            rows = pq.read_metadata(path / name).num_rows
        except (OSError, pa.ArrowException) as exc:
            return f"{name} is unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        if rows != manifest.get(f"{split}_rows"):
            return f"{name} has {rows} rows, the manifest says {manifest.get(f'{split}_rows')}"
        entry = files.get(name)
        recorded = entry.get("sha256") if isinstance(entry, dict) else None
        if recorded is not None and recorded != file_sha256(path / name):
            return f"{name} does not match the SHA-256 in the manifest"
    return None


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_split(snapshots_dir: Path, snapshot_id: str, split: str, columns: Sequence[str] = ()) -> pa.Table:
    """One split (``train`` or ``heldout``) as an Arrow table, checked against the manifest and for ``columns``."""
    import pyarrow.parquet as pq

    manifest = read_manifest(snapshots_dir, snapshot_id)
    path = snapshot_dir(snapshots_dir, snapshot_id) / f"{split}.parquet"
    if split not in SPLITS or not path.exists():
        raise SnapshotError(f"snapshot {snapshot_id!r} has no {split}.parquet")
    table = pq.read_table(path)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SnapshotError(f"snapshot {snapshot_id!r} {split}.parquet lacks column(s) {', '.join(missing)}")
    expected = manifest.get(f"{split}_rows")
    if expected is not None and expected != table.num_rows:
        raise SnapshotError(
            f"snapshot {snapshot_id!r} {split}.parquet has {table.num_rows} rows, manifest says {expected}"
        )
    return table


def as_files(entries: Sequence[Mapping[str, str]] | Mapping[str, str]) -> dict[str, str]:
    """A snapshot's list of ``{path, content}`` structs as the ``{path: content}`` dict the reward takes."""
    if isinstance(entries, Mapping):
        return dict(entries)
    return {entry["path"]: entry["content"] for entry in entries}
