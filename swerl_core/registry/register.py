"""Registration of a checkpoint: model version, gate against the champion, aliases — one consistent step.

:func:`register` uploads the checkpoint and creates the version outside the lock (MLflow numbers
versions itself), then, holding :func:`registry_lock`, reads the champion (without one, under
``registry.without_champion: trained_from``, gets the candidate's base evaluated), judges the gate, records
the verdict and moves ``challenger`` (and ``champion`` under policy ``auto``). :func:`recorded_registration`
reads an existing version back, for a training run registered before. Two registrations at
once are therefore serialized: the second is judged against the champion the first may have just
crowned. The lock is a file under ``SWERL_HOME/locks/``; registrations from several machines against one
tracking server need ``SWERL_HOME`` (or at least this lock) on shared storage.
"""

from __future__ import annotations

import getpass
import hashlib
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swerl_core.config import RegistryConfig, Settings
from swerl_core.errors import SwerlError
from swerl_core.locks import LockFolder
from swerl_core.models import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    experiment_id,
    mlflow_client,
    registry_access,
    version_metrics,
)
from swerl_core.registry import RegistryError
from swerl_core.registry.aliases import AliasMove, move_alias, promote, rollback, settle_moves
from swerl_core.registry.gate import GateMetrics, GateVerdict, TrainedFrom, gate, recorded_verdict
from swerl_core.registry.gate_report import REWARDS_TAG, log_gate_report, log_rewards, read_rewards
from swerl_core.registry.versions import (
    REGISTRY_EXPERIMENT,
    Provenance,
    create_version,
    describe_version,
    model_versions,
    training_provenance,
)

ChampionEvaluator = Callable[[str], GateMetrics]
BaseEvaluator = Callable[[], TrainedFrom | None]  # the candidate's direct base under its protocol; None: unknown


@dataclass(frozen=True)
class ReportedMode:
    """An evaluation of the candidate in another mode (greedy or sampled), judged and recorded but not deciding."""

    candidate: GateMetrics
    metrics: Mapping[str, float]
    evaluate_champion: ChampionEvaluator | None = None
    evaluate_base: BaseEvaluator | None = None


@dataclass(frozen=True)
class Registration:
    """What :func:`register` did: the new version, its gate verdict and the alias moves it caused.

    ``verdict.decision`` is ``pass``/``fail``/``inconclusive``; ``verdict.comparison`` holds the paired
    statistics and per-instance table; ``gate_artifacts`` are the MLflow URIs of ``gate.json`` and the
    paired-difference plot; ``reports`` has the verdict of each evaluation mode judged (``greedy``,
    ``sampled``; the deciding one is ``verdict`` itself), or the reason a reporting mode was not judged.
    ``created`` is False when the training run already had this version: nothing was evaluated, judged or moved
    (``verdict`` is then read back from the version's tags, without the per-instance comparison). ``aliases``
    are those the version holds now.
    """

    name: str
    version: str
    source: str
    run_id: str
    verdict: GateVerdict
    moves: tuple[AliasMove, ...] = field(default=())
    gate_artifacts: tuple[str, ...] = field(default=())
    reports: Mapping[str, GateVerdict | str] = field(default_factory=dict)
    created: bool = True
    aliases: tuple[str, ...] = field(default=())


def registry_lock(settings: Settings) -> AbstractContextManager[None]:
    """Hold the inter-process lock around reading the champion and moving aliases (``$SWERL_HOME/locks/registry.lock``).

    Waits up to ``registry.lock_timeout_s``, then raises :class:`~swerl_core.errors.LockTimeout` naming the holder.
    """
    return LockFolder.of_home(settings.home).named("registry").hold(settings.registry.lock_timeout_s)


def current_user() -> str:
    """Who is acting, for the alias log: the MLflow user signed in (``MLFLOW_TRACKING_USERNAME``; a server running
    :mod:`.door` accepts a record only under that name), else ``SWERL_USER``, else the login name."""
    return os.environ.get("MLFLOW_TRACKING_USERNAME") or os.environ.get("SWERL_USER") or getpass.getuser()


def register(
    settings: Settings,
    checkpoint: Path,
    candidate: GateMetrics,
    metrics: Mapping[str, float],
    *,
    who: str,
    git_sha: str = "unknown",
    evaluate_champion: ChampionEvaluator | None = None,
    evaluate_base: BaseEvaluator | None = None,
    mode: str = "",
    also: Mapping[str, ReportedMode] | None = None,
) -> Registration:
    """Register ``checkpoint`` as a version of ``settings.registry.model_name`` and judge it against the champion,
    or finish the registration a killed call left half done (never a second version).

    ``candidate``/``metrics`` come from the checkpoint's evaluation on a held-out snapshot. The
    champion's numbers under the same protocol (snapshot, K, instances, decoding) come from its
    ``eval.*`` tags or, failing that, from ``evaluate_champion(version)``. Without a champion, under
    ``registry.without_champion: trained_from``, the candidate is paired with ``evaluate_base()`` (its training
    run's base under the same protocol; unknown without it). Passing versions get
    ``challenger``; under policy ``auto`` they become ``champion`` at once. The verdict is recorded on
    the version either way. ``mode`` names the deciding evaluation (``greedy``/``sampled``); each of
    ``also`` is judged the same way and recorded under ``eval.<mode>.*`` / ``gate.<mode>.*`` tags and in
    :attr:`Registration.reports`, without deciding anything.

    A registration is a state machine on its version (tag ``registration.state``): ``created`` (the version and
    its evidence), ``judged`` (the gate's tags, ``gate.verdict`` written last), ``done`` (the alias moves). Its
    version is found again by :func:`registration_key`, so a rerun after a kill at any step resumes at that step,
    and a create that the client retried after the server acted leaves one version, not two.
    """
    cfg = settings.registry
    name = cfg.model_name
    client = mlflow_client(settings.tracking_uri)
    provenance = training_provenance(client, checkpoint, candidate.snapshot_id, git_sha)
    key = registration_key(provenance, checkpoint, candidate)
    tags = {
        **provenance.tags(),
        **{f"eval.{k}": repr(float(v)) for k, v in metrics.items()},
        "eval.mean_reward": repr(float(candidate.mean_reward)),
        "eval.format_error_rate": repr(float(candidate.format_error_rate)),
        "eval.snapshot_id": candidate.snapshot_id,
        "eval.samples": str(candidate.samples),
        "eval.protocol": candidate.protocol,
        "eval.measure": candidate.measure,
        "gate.decided_by": mode or "the given evaluation",
        "registered_by": who,
        KEY_TAG: key,
    }
    also = dict(also or {})
    for reported_name, reported in also.items():
        tags.update(_mode_tags(reported_name, reported))
    found = registration_version(client, name, key)
    if found is None:
        run_id = provenance.training_run_id or _registry_run(client, settings, checkpoint)
        create_version(client, name, checkpoint, run_id, tags | {"gate.verdict": "pending", STATE_TAG: CREATED})
        found = registration_version(client, name, key)
        if found is None:  # created and then deleted under us: not ours to recreate silently
            raise RegistryError(f"the version of {checkpoint} vanished from {name} right after it was created")
    version, source, run_id = str(found.version), str(found.source), str(found.run_id)
    if registration_state(found.tags) == CREATED:  # a new version, or one a killed call left here: its evidence
        for tag, value in tags.items():
            if found.tags.get(tag) != value:
                client.set_model_version_tag(name, version, tag, value)
        for rewards_of, rewards in [("", candidate.rewards)] + [(n, r.candidate.rewards) for n, r in also.items()]:
            if rewards:
                path = log_rewards(client, run_id, version, rewards, rewards_of)
                tag = REWARDS_TAG if not rewards_of else REWARDS_TAG.replace("eval.", f"eval.{rewards_of}.")
                client.set_model_version_tag(name, version, tag, path)
    with registry_lock(settings):
        settle_moves(client, name)  # a move a killed caller left half made is finished or undone first
        version_tags = dict(client.get_model_version(name, version).tags)  # another caller may have moved it on
        state = registration_state(version_tags)
        if state == DONE:
            return recorded_registration(settings, version)
        champion_version = alias_version(client, name, CHAMPION)
        judged_against = version_tags.get("gate.champion_version", "none")
        if state == JUDGED and champion_version not in (version, None) and champion_version != judged_against:
            state = CREATED  # the champion changed since this version was judged: judge it again
        reports: dict[str, GateVerdict | str] = {}
        artifacts: tuple[str, ...] = ()
        if state == CREATED:
            verdict, artifacts, reports = _judge(
                client, settings, checkpoint, candidate, version, run_id, champion_version, evaluate_champion,
                evaluate_base, mode, also,
            )  # fmt: skip
        else:
            verdict = recorded_verdict(version_tags)
        moves = _finish_moves(client, cfg, version, verdict, who)
        client.set_model_version_tag(name, version, STATE_TAG, DONE)
        held = held_aliases(client, name, version)
    return Registration(name, version, source, run_id, verdict, moves, artifacts, reports, aliases=held)


KEY_TAG = "registration.key"
STATE_TAG = "registration.state"
CREATED, JUDGED, DONE = "created", "judged", "done"


def registration_key(provenance: Provenance, checkpoint: Path, candidate: GateMetrics) -> str:
    """What makes two registrations one: the training run when the tracking server knows it (a run is registered
    once), else the checkpoint folder with the snapshot and protocol it was judged on."""
    if provenance.training_run_id:
        return f"run:{provenance.training_run_id}"
    identity = "\0".join(
        [str(Path(checkpoint).resolve()), candidate.snapshot_id, candidate.protocol, str(candidate.samples)]
    )
    return "checkpoint:" + hashlib.sha256(identity.encode()).hexdigest()[:16]


def registration_state(tags: Mapping[str, str]) -> str:
    """``created``, ``judged`` or ``done``; a version registered before the state was recorded is done once
    judged."""
    if STATE_TAG in tags:
        return tags[STATE_TAG] if tags[STATE_TAG] in (CREATED, JUDGED, DONE) else CREATED  # garbage: judge again
    return CREATED if tags.get("gate.verdict", "pending") == "pending" else DONE


def registration_version(client: Any, name: str, key: str) -> Any | None:
    """The one version of registration ``key`` (MLflow ``ModelVersion``), or None. A client that retried a create
    the server had already done leaves a second version of the key, never judged: it is deleted here."""
    from mlflow.exceptions import MlflowException

    try:
        versions = model_versions(client, name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    # A version of a run is that run's registration, including one registered before the key was recorded.
    run_id = key.removeprefix("run:") if key.startswith("run:") else None
    ours = sorted(
        (mv for mv in versions if mv.tags.get(KEY_TAG) == key or (run_id is not None and run_id == mv.run_id)),
        key=lambda mv: int(mv.version),
    )
    if not ours:
        return None
    for duplicate in ours[1:]:
        if registration_state(duplicate.tags) == CREATED and duplicate.tags.get(KEY_TAG) == key:
            try:
                client.delete_model_version(name, str(duplicate.version))
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":  # another caller deleted it first
                    raise
    return ours[0]


def _judge(
    client: Any,
    settings: Settings,
    checkpoint: Path,
    candidate: GateMetrics,
    version: str,
    run_id: str,
    champion_version: str | None,
    evaluate_champion: ChampionEvaluator | None,
    evaluate_base: BaseEvaluator | None,
    mode: str,
    also: Mapping[str, ReportedMode],
) -> tuple[GateVerdict, tuple[str, ...], dict[str, GateVerdict | str]]:
    """Gate the version against ``champion_version`` and record everything about it, ``gate.verdict`` and then the
    state ``judged`` last, so that a kill before that leaves it to be judged again."""
    cfg = settings.registry
    name = cfg.model_name
    try:
        champion = None
        if champion_version is not None:
            champion = _champion_metrics(client, name, champion_version, candidate, evaluate_champion)
        verdict = gate(candidate, champion, cfg, champion_version, _base(cfg, champion, evaluate_base))
    except SwerlError as exc:  # shown failed with the reason, never "pending"; still `created`: a rerun judges it
        client.set_model_version_tag(name, version, "gate.reason", str(exc))
        client.set_model_version_tag(name, version, "gate.verdict", "fail")
        raise
    judged = f"gate {verdict.verdict} against {verdict.against} ({verdict.reason})"
    describe_version(client, name, version, checkpoint, candidate.snapshot_id, judged)
    artifacts = log_gate_report(client, run_id, version, verdict)
    reports: dict[str, GateVerdict | str] = {mode or "deciding": verdict}
    for reported_name, reported in also.items():
        reports[reported_name] = _reported_verdict(client, settings, version, champion_version, reported_name, reported)
    verdict_tags = verdict.tags()
    for key, value in verdict_tags.items():
        if key != "gate.verdict":
            client.set_model_version_tag(name, version, key, value)
    client.set_model_version_tag(name, version, "gate.verdict", verdict_tags["gate.verdict"])
    client.set_model_version_tag(name, version, STATE_TAG, JUDGED)
    return verdict, artifacts, reports


def _finish_moves(
    client: Any, cfg: RegistryConfig, version: str, verdict: GateVerdict, who: str
) -> tuple[AliasMove, ...]:
    """The alias moves a judged version calls for that have not happened yet: a passing version is ``challenger``,
    and under policy ``auto`` the ``champion`` (which clears its ``challenger``); a failing one holds neither."""
    name = cfg.model_name
    if not verdict.passed:  # judged again and failed: a challenger alias from the earlier pass is not earned
        if alias_version(client, name, CHALLENGER) == version:
            return (move_alias(client, name, CHALLENGER, None, "clear", who, f"v{version} failed the gate"),)
        return ()
    moves: list[AliasMove] = []
    is_champion = alias_version(client, name, CHAMPION) == version
    if not is_champion and alias_version(client, name, CHALLENGER) != version:
        moves.append(move_alias(client, name, CHALLENGER, version, "challenger", who, verdict.reason))
    if cfg.policy == "auto" and not is_champion:
        moves.append(promote(client, name, version, who, "policy auto: " + verdict.reason))
    elif is_champion and alias_version(client, name, CHALLENGER) == version:  # killed between promote and clear
        moves.append(move_alias(client, name, CHALLENGER, None, "clear", who, f"v{version} became champion"))
    return tuple(moves)


def _base(cfg: RegistryConfig, champion: GateMetrics | None, evaluate_base: BaseEvaluator | None) -> TrainedFrom | None:
    """The candidate's base under its protocol when the gate will judge against it (no champion, trained_from)."""
    if champion is not None or cfg.without_champion != "trained_from" or evaluate_base is None:
        return None
    return evaluate_base()


def held_aliases(client: Any, name: str, version: str) -> tuple[str, ...]:
    """The aliases of registered model ``name`` that point at ``version``, sorted."""
    aliases = client.get_registered_model(name).aliases
    return tuple(sorted(alias for alias, held in aliases.items() if str(held) == str(version)))


def registered_version(client: Any, name: str, training_run_id: str) -> str | None:
    """The version of ``name`` that training run ``training_run_id`` finished registering, if any (one left half
    done by a killed call is not: registering the run again finishes it)."""
    found = registration_version(client, name, f"run:{training_run_id}")
    return str(found.version) if found is not None and registration_state(found.tags) == DONE else None


def recorded_registration(settings: Settings, version: str) -> Registration:
    """The registration of an existing ``version``, read back from the registry (``created`` False)."""
    client = mlflow_client(settings.tracking_uri)
    name = settings.registry.model_name
    mv = client.get_model_version(name, version)
    verdict = recorded_verdict(dict(mv.tags))
    aliases = held_aliases(client, name, version)
    return Registration(name, version, str(mv.source), str(mv.run_id), verdict, created=False, aliases=aliases)


def _mode_tags(name: str, reported: ReportedMode) -> dict[str, str]:
    c = reported.candidate
    tags = {f"eval.{name}.{k}": repr(float(v)) for k, v in reported.metrics.items()}
    tags.update(
        {
            f"eval.{name}.mean_reward": repr(float(c.mean_reward)),
            f"eval.{name}.format_error_rate": repr(float(c.format_error_rate)),
            f"eval.{name}.snapshot_id": c.snapshot_id,
            f"eval.{name}.samples": str(c.samples),
            f"eval.{name}.protocol": c.protocol,
            f"eval.{name}.measure": c.measure,
        }
    )
    return tags


def _reported_verdict(
    client: Any, settings: Settings, version: str, champion_version: str | None, name: str, reported: ReportedMode
) -> GateVerdict | str:
    """The verdict of a reporting mode, recorded as ``gate.<name>.*`` tags; a refusal is recorded as its reason."""
    model = settings.registry.model_name
    try:
        champion = None
        if champion_version is not None:
            champion = _champion_metrics(
                client, model, champion_version, reported.candidate, reported.evaluate_champion
            )
        base = _base(settings.registry, champion, reported.evaluate_base)
        verdict = gate(reported.candidate, champion, settings.registry, champion_version, base)
    except SwerlError as exc:
        client.set_model_version_tag(model, version, f"gate.{name}.verdict", "not judged")
        client.set_model_version_tag(model, version, f"gate.{name}.reason", str(exc)[:4000])
        return str(exc)
    for key, value in verdict.tags().items():
        client.set_model_version_tag(model, version, key.replace("gate.", f"gate.{name}.", 1), value)
    return verdict


def _champion_metrics(
    client: Any, name: str, version: str, candidate: GateMetrics, evaluate_champion: ChampionEvaluator | None
) -> GateMetrics:
    everything = version_metrics(client, name, version)
    wanted = (candidate.snapshot_id, str(candidate.samples), candidate.protocol, candidate.measure)
    for prefix in ("", *sorted({k.split(".")[0] + "." for k in everything if k.count(".") == 1})):
        tags = {k[len(prefix) :]: v for k, v in everything.items() if k.startswith(prefix)}
        found = (tags.get("snapshot_id"), tags.get("samples"), tags.get("protocol"), tags.get("measure", "reward"))
        if found != wanted:
            continue
        rewards = {}
        if tags.get("rewards_artifact"):
            rewards = read_rewards(client, client.get_model_version(name, version).run_id, tags["rewards_artifact"])
        if rewards or evaluate_champion is None:
            return GateMetrics(
                candidate.snapshot_id,
                candidate.samples,
                float(tags["mean_reward"]),
                float(tags["format_error_rate"]),
                candidate.protocol,
                rewards,
                candidate.measure,
            )
        break
    if evaluate_champion is None:
        raise RegistryError(
            f"champion {name} v{version} has no evaluation on {candidate.snapshot_id} with K={candidate.samples} "
            f"under protocol {candidate.protocol}; evaluate models:/{name}/{version} "
            f"on snapshot {candidate.snapshot_id} with the candidate's evaluate settings first"
        )
    return evaluate_champion(version)


def _registry_run(client: Any, settings: Settings, checkpoint: Path) -> str:
    experiment = experiment_id(client, REGISTRY_EXPERIMENT, settings.home / "mlartifacts")
    run = client.create_run(experiment, run_name=f"register-{Path(checkpoint).name}")
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


RELEASE_MANAGER = "MANAGE"  # the permission on the model that promotes and rolls back (accounts.ROLES)


def promote_version(settings: Settings, version: str, who: str, why: str, force: bool = False) -> AliasMove:
    """Make ``version`` the champion (see :func:`~swerl_core.registry.aliases.promote`), holding the lock."""
    client = mlflow_client(settings.tracking_uri)
    name = settings.registry.model_name
    with registry_lock(settings), registry_access(settings.tracking_uri, name, RELEASE_MANAGER):
        return promote(client, name, version, who, why, force)


def rollback_champion(settings: Settings, who: str, why: str) -> AliasMove:
    """Move the champion back to its previous holder, holding the lock."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings.tracking_uri)
    name = settings.registry.model_name
    with registry_lock(settings), registry_access(settings.tracking_uri, name, RELEASE_MANAGER):
        try:
            return rollback(client, name, who, why)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise  # registry_access reports an unreachable registry as such
            raise RegistryError(f"no registered model {name!r} yet: nothing to roll back") from None


@dataclass(frozen=True)
class VersionRow:
    """One line of ``swerl models``."""

    version: str
    aliases: tuple[str, ...]
    verdict: str
    mean_reward: str
    snapshot_id: str
    created: int
    against: str = ""  # what the gate judged it against (champion vN, its base …, the floor …)


def list_versions(settings: Settings) -> list[VersionRow]:
    """Every version of the registered model, newest first, with aliases and gate verdict."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings.tracking_uri)
    name = settings.registry.model_name
    with registry_access(settings.tracking_uri, name, "READ"):
        try:
            aliases = client.get_registered_model(name).aliases
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise  # registry_access reports an unreachable registry as such
            raise RegistryError(f"no registered model {name!r} yet: nothing has been registered") from None
        versions = model_versions(client, name)
    rows = []
    for mv in versions:
        held = tuple(sorted(a for a, v in aliases.items() if str(v) == str(mv.version)))
        rows.append(
            VersionRow(
                str(mv.version),
                held,
                mv.tags.get("gate.verdict", "pending"),
                mv.tags.get("eval.mean_reward", ""),
                mv.tags.get("snapshot_id", ""),
                int(mv.creation_timestamp or 0),
                _against(mv.tags),
            )
        )
    return sorted(rows, key=lambda r: -int(r.version))


def _against(tags: Mapping[str, str]) -> str:
    if "gate.against" in tags:
        return tags["gate.against"]
    if "gate.champion_version" not in tags:
        return ""  # never judged
    return recorded_verdict(tags).against  # judged before the tag existed: champion or floor
