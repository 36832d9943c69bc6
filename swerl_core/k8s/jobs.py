"""Apply rendered manifests through the Kubernetes API and follow a training Job to its end, with its pods' logs.

The API is reached with ``kubernetes_asyncio`` (it comes with ``prefect-kubernetes``); the credentials are the
caller's kubeconfig or, inside a pod, its service account, so swerl holds none. Objects other than the Job are
applied server-side (``kubectl apply --server-side`` semantics: created, or updated in place); the Job is
created, because a Job is one run. :func:`job_state` is a pure reading of a Job's ``status``;
:func:`follow_job` polls it, reports each change and streams every started pod's log lines as they come.
The public functions are synchronous: each runs its own event loop (:func:`follow_job` in a thread of its own,
handing what it sees to the caller's thread).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from swerl_core.k8s.manifests import K8sError, Manifest

log = logging.getLogger("swerl.k8s")

Phase = Literal["pending", "running", "succeeded", "failed"]
LogCallback = Callable[[str, str], None]  # (pod name, one log line)
_T = TypeVar("_T")
FIELD_MANAGER = "swerl"
_APPLY = "application/apply-patch+yaml"
_REQUEST_S = 60.0  # one API request (a log stream excepted): an API server that never answers is an error
_LOG_DRAIN_S = 30.0  # after the Job ends, how long its pods' log streams may take to deliver their last lines
# kind -> (API group class in kubernetes_asyncio.client, the snake_case resource in its method names)
_RESOURCES = {
    "PersistentVolumeClaim": ("CoreV1Api", "persistent_volume_claim"),
    "ConfigMap": ("CoreV1Api", "config_map"),
    "Service": ("CoreV1Api", "service"),
    "Deployment": ("AppsV1Api", "deployment"),
    "NetworkPolicy": ("NetworkingV1Api", "network_policy"),
    "Job": ("BatchV1Api", "job"),
}


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach the cluster: a kubeconfig file and context (``None``: ``$KUBECONFIG`` or
    ``~/.kube/config`` and its current context; without any kubeconfig, the pod's service account)."""

    kubeconfig: Path | None = None
    context: str | None = None


@dataclass(frozen=True)
class JobState:
    """Where a Job stands: its phase, pod counts and the reason Kubernetes gave for a terminal state."""

    phase: Phase
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    message: str = ""

    @property
    def done(self) -> bool:
        """True once the Job can change no more."""
        return self.phase in ("succeeded", "failed")


class _Refused(K8sError):
    """The API answered with an error status (kept so callers can tell 404 and 409 apart)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def job_state(job: Mapping[str, Any]) -> JobState:
    """Read a Job object (as the API returns it) into a :class:`JobState`."""
    status = job.get("status") or {}
    counts = {key: int(status.get(key) or 0) for key in ("active", "succeeded", "failed")}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        reason, detail = condition.get("reason") or "", condition.get("message") or ""
        message = f"{reason}: {detail}" if reason and detail else reason or detail
        if condition.get("type") == "Complete":
            return JobState("succeeded", counts["active"], counts["succeeded"], counts["failed"], message)
        if condition.get("type") == "Failed":
            return JobState("failed", counts["active"], counts["succeeded"], counts["failed"], message)
    return JobState(
        "running" if counts["active"] else "pending", counts["active"], counts["succeeded"], counts["failed"]
    )


def apply_manifests(
    manifests: Sequence[Manifest], access: ClusterAccess | None = None, dry_run: bool = False
) -> list[str]:
    """Send the objects in order (server-side dry run if asked); returns one ``Kind/name action`` per object.

    Raises :class:`K8sError` when the cluster is unreachable, refuses an object, or already has the Job.
    """
    return _run(_with_api(access, lambda api: _apply_all(api, manifests, dry_run)))


def delete_objects(manifests: Sequence[Manifest], access: ClusterAccess | None = None) -> list[str]:
    """Delete the objects in reverse order (a Job with its pods, in the background); one already gone is no error.
    Returns one ``Kind/name deleted`` (or ``absent``) per object. Raises :class:`K8sError` when the cluster is
    unreachable or refuses."""
    return _run(_with_api(access, lambda api: _delete_all(api, manifests)))


def follow_job(
    name: str,
    namespace: str,
    access: ClusterAccess | None = None,
    poll_s: float = 15.0,
    timeout_s: float | None = None,
    on_change: Callable[[JobState], None] | None = None,
    on_log: LogCallback | None = None,
) -> JobState:
    """Poll Job ``name`` until it is done (or ``timeout_s`` passes); ``on_change`` sees every new state and
    ``on_log`` every log line of its pods as they print it. A failed Job's message adds how its pods ended.

    The API work runs on an event loop in a thread of its own; the callbacks run here, in the caller's thread
    (a Prefect task's, inside a flow), one at a time. Raises :class:`K8sError` when the Job disappears, the
    cluster is unreachable, or the timeout passes.
    """
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    follow = _Follow(name, namespace, poll_s, timeout_s, events.put, streams_logs=on_log is not None)
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(_follow_in_thread, follow, access, events), daemon=True)
    worker.start()
    try:
        while True:
            kind, value = events.get()
            if kind == "state":
                _report(name, namespace, value)
                if on_change is not None:
                    on_change(value)
            elif kind == "line" and on_log is not None:
                on_log(*value)
            elif kind == "error":
                raise value
            elif kind == "done":
                return value  # type: ignore[no-any-return]
    finally:
        follow.stop.set()
        worker.join(timeout=_LOG_DRAIN_S)


def _follow_in_thread(follow: _Follow, access: ClusterAccess | None, events: queue.Queue[tuple[str, Any]]) -> None:
    try:
        events.put(("done", asyncio.run(_with_api(access, follow.run))))
    except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, which raises it
        events.put(("error", exc))


def _report(name: str, namespace: str, state: JobState) -> None:
    log.info(
        "job %s/%s: %s (active %d, succeeded %d, failed %d)%s",
        namespace,
        name,
        state.phase,
        state.active,
        state.succeeded,
        state.failed,
        f": {state.message}" if state.message else "",
    )


def job_logs(name: str, namespace: str, access: ClusterAccess | None = None, tail: int = 200) -> str:
    """The last ``tail`` log lines of every pod of Job ``name``, each line prefixed with ``[pod]``."""
    return _run(_with_api(access, lambda api: _tails(api, name, namespace, tail)))


class _Api:
    """The three API groups on one client, plus the server's address for error messages."""

    def __init__(self, client: Any) -> None:
        from kubernetes_asyncio import client as k8s

        self.host = client.configuration.host
        self.groups = {name: getattr(k8s, name)(client) for name in {group for group, _ in _RESOURCES.values()}}

    def method(self, kind: str, verb: str) -> Callable[..., Awaitable[Any]]:
        """The client method ``verb`` (create, patch, read, list…) for objects of ``kind``."""
        if kind not in _RESOURCES:
            raise K8sError(f"cannot apply a {kind}: swerl applies only {', '.join(_RESOURCES)}")
        group, resource = _RESOURCES[kind]
        return getattr(self.groups[group], f"{verb}_namespaced_{resource}")  # type: ignore[no-any-return]

    async def call(self, what: str, request: Awaitable[Any], text: bool = False) -> Any:
        """Send one request (``_preload_content=False``) and return its JSON body (or its text when ``text``);
        errors become :class:`K8sError`."""
        import aiohttp

        try:
            response = await request
            body = await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise K8sError(f"Kubernetes API at {self.host} is unreachable ({what}): {detail}") from None
        if not 200 <= response.status < 300:
            raise _Refused(f"Kubernetes API refused {what}: {_api_message(response.status, body)}", response.status)
        if text:
            return body.decode("utf-8", "replace")
        return json.loads(body) if body else {}


def _api_message(status: int, body: bytes) -> str:
    try:
        message = str(json.loads(body).get("message") or "")
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace")
    return f"HTTP {status} " + (" ".join(message.split())[:300] or "(no message)")


async def _with_api(access: ClusterAccess | None, work: Callable[[_Api], Awaitable[_T]]) -> _T:
    client = await _client(access or ClusterAccess())
    async with client:
        return await work(_Api(client))


async def _client(access: ClusterAccess) -> Any:
    from kubernetes_asyncio import client as k8s
    from kubernetes_asyncio import config

    configuration = k8s.Configuration()
    kubeconfig = access.kubeconfig
    if kubeconfig is not None and not Path(kubeconfig).is_file():
        raise K8sError(f"cannot use kubeconfig {kubeconfig}: not a file")
    try:
        await config.load_kube_config(
            config_file=str(access.kubeconfig) if access.kubeconfig else None,
            context=access.context,
            client_configuration=configuration,
        )
    except (config.ConfigException, TypeError, ValueError, AttributeError, OSError) as kube_error:
        # A file that is not a kubeconfig (plain text, a list, credentials in the server URL) fails inside
        # the loader with whatever its parser tripped on: one line naming the file instead.
        detail = " ".join(str(kube_error).split())[:160] or type(kube_error).__name__
        if kubeconfig is not None:
            raise K8sError(f"cannot use kubeconfig {kubeconfig}: {detail}") from None
        if not isinstance(kube_error, config.ConfigException):
            raise K8sError(f"cannot use the default kubeconfig ($KUBECONFIG or ~/.kube/config): {detail}") from None
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            raise K8sError(
                "no Kubernetes credentials: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not inside a pod"
            ) from None
    return k8s.ApiClient(configuration)


async def _apply_all(api: _Api, manifests: Sequence[Manifest], dry_run: bool) -> list[str]:
    done = []
    for manifest in manifests:
        kind, meta = manifest["kind"], manifest["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        what = f"{kind} {namespace}/{name}"
        extra = {"dry_run": "All"} if dry_run else {}
        if kind == "Job":  # a Job is one run: never reuse one
            create = api.method(kind, "create")
            try:
                await api.call(
                    what, create(namespace, manifest, _preload_content=False, _request_timeout=_REQUEST_S, **extra)
                )
            except _Refused as exc:
                if exc.status != 409:
                    raise
                raise K8sError(f"job {namespace}/{name} already exists: a new run needs a new name") from None
            done.append(f"{kind}/{name} created")
            continue
        patch = api.method(kind, "patch")
        await api.call(
            what,
            patch(
                name,
                namespace,
                manifest,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=_APPLY,
                _preload_content=False,
                _request_timeout=_REQUEST_S,
                **extra,
            ),
        )
        done.append(f"{kind}/{name} applied")
    return done


async def _delete_all(api: _Api, manifests: Sequence[Manifest]) -> list[str]:
    done = []
    for manifest in reversed(manifests):
        kind, meta = manifest["kind"], manifest["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        delete = api.method(kind, "delete")
        try:
            request = delete(name, namespace, propagation_policy="Background", _preload_content=False,
                             _request_timeout=_REQUEST_S)  # fmt: skip
            await api.call(f"{kind} {namespace}/{name}", request)
        except _Refused as exc:
            if exc.status != 404:
                raise
            done.append(f"{kind}/{name} absent")
            continue
        done.append(f"{kind}/{name} deleted")
    return done


@dataclass
class _Follow:
    """One following of a Job on the event loop: its state, polled; its pods' logs, streamed concurrently.
    Everything seen goes to ``emit`` as ``("state", JobState)`` or ``("line", (pod, line))``."""

    name: str
    namespace: str
    poll_s: float
    timeout_s: float | None
    emit: Callable[[tuple[str, Any]], None]
    streams_logs: bool = True
    stop: threading.Event = field(default_factory=threading.Event)  # the caller stopped listening

    async def run(self, api: _Api) -> JobState:
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        streams: dict[str, asyncio.Task[None]] = {}
        last: JobState | None = None
        try:
            while not self.stop.is_set():
                state = job_state(await self._read_job(api))
                if state != last:
                    self.emit(("state", state))
                    last = state
                pods = await _pods(api, self.name, self.namespace)
                if self.streams_logs:
                    self._stream_new(api, pods, streams)
                if state.done:
                    await _drain(streams.values())
                    return state if state.phase == "succeeded" else _with_pod_endings(state, pods)
                if deadline is not None and time.monotonic() >= deadline:
                    raise K8sError(f"job {self.namespace}/{self.name} still {state.phase} after {self.timeout_s:g} s")
                await _pause(self.stop, self.poll_s)
            raise K8sError(f"following job {self.namespace}/{self.name} was stopped")
        finally:
            for stream in streams.values():
                stream.cancel()

    async def _read_job(self, api: _Api) -> Mapping[str, Any]:
        read = api.method("Job", "read")
        try:
            job: Mapping[str, Any] = await api.call(
                f"reading job {self.namespace}/{self.name}",
                read(self.name, self.namespace, _preload_content=False, _request_timeout=_REQUEST_S),
            )
        except _Refused as exc:
            if exc.status == 404:
                raise K8sError(f"job {self.namespace}/{self.name} does not exist (deleted, or never created)") from None
            raise
        return job

    def _stream_new(self, api: _Api, pods: list[Mapping[str, Any]], streams: dict[str, asyncio.Task[None]]) -> None:
        for pod in pods:
            name = pod["metadata"]["name"]
            started = (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed")
            if started and name not in streams:
                streams[name] = asyncio.create_task(_stream_log(api, name, self.namespace, self.emit))


async def _pods(api: _Api, job: str, namespace: str) -> list[Mapping[str, Any]]:
    listing = api.groups["CoreV1Api"].list_namespaced_pod
    found = await api.call(
        f"listing the pods of job {namespace}/{job}",
        listing(namespace, label_selector=f"job-name={job}", _preload_content=False, _request_timeout=_REQUEST_S),
    )
    return sorted(found.get("items") or [], key=lambda pod: pod["metadata"]["name"])


async def _stream_log(api: _Api, pod: str, namespace: str, emit: Callable[[tuple[str, Any]], None]) -> None:
    """Every line pod ``pod`` prints, until its container ends; a stream that breaks is reported once."""
    read = api.groups["CoreV1Api"].read_namespaced_pod_log
    response = None
    try:
        response = await read(pod, namespace, follow=True, _preload_content=False)
        if response.status != 200:
            body = await response.read()
            log.warning("logs of pod %s/%s: %s", namespace, pod, _api_message(response.status, body))
            return
        pending = b""
        async for chunk in response.content.iter_any():  # no line-length limit, unlike line iteration
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                emit(("line", (pod, line.decode("utf-8", "replace").rstrip("\r"))))
        if pending:
            emit(("line", (pod, pending.decode("utf-8", "replace").rstrip("\r"))))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken log stream must not end the following of the Job
        log.warning("logs of pod %s/%s stopped: %s", namespace, pod, " ".join(str(exc).split()) or type(exc).__name__)
    finally:
        if response is not None:
            response.release()


async def _pause(stop: threading.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less once ``stop`` is set (the caller stopped following: an interrupt ends at once)."""
    end = time.monotonic() + seconds
    while not stop.is_set() and (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(0.2, left))


async def _drain(streams: Any) -> None:
    pending = [stream for stream in streams if not stream.done()]
    if pending:
        await asyncio.wait(pending, timeout=_LOG_DRAIN_S)


def _with_pod_endings(state: JobState, pods: list[Mapping[str, Any]]) -> JobState:
    endings = []
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            ended = (container.get("state") or {}).get("terminated") or {}
            if ended and ended.get("exitCode", 0) != 0:
                why = ended.get("reason") or "terminated"
                code = ended.get("exitCode")
                endings.append(
                    f"pod {pod['metadata']['name']}: {container.get('name')} exited with code {code} ({why})"
                )
    message = "; ".join([state.message or "the job failed", *endings])
    return replace(state, message=message)


async def _tails(api: _Api, name: str, namespace: str, tail: int) -> str:
    read = api.groups["CoreV1Api"].read_namespaced_pod_log
    lines = []
    for pod in await _pods(api, name, namespace):
        pod_name = pod["metadata"]["name"]
        text = await api.call(
            f"reading the logs of pod {namespace}/{pod_name}",
            read(pod_name, namespace, tail_lines=tail, _preload_content=False, _request_timeout=_REQUEST_S),
            text=True,
        )
        lines += [f"[{pod_name}] {line}" for line in text.splitlines()]
    return "\n".join(lines)


def _run(work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work`` to its end from synchronous code, in a thread of its own when a loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    context = contextvars.copy_context()  # the caller's logging context (a Prefect run) follows the work
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, work).result()
