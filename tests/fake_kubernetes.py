"""A small Kubernetes API server on 127.0.0.1 for tests: real HTTP, the paths and verbs a real API server serves. It
accepts server-side applies of PersistentVolumeClaims, ConfigMaps, Services and Deployments, creates of Jobs (and
dry runs of both) and deletes of both — each checked against the Kubernetes OpenAPI schema first (422 otherwise), as
the real server would — creates one pod per completion index of a Job, advances the Job on every read (first read:
pods running; second: the ``outcome``), and serves the pods' logs (``logs(job, index)`` decides their lines).
``outcome`` is ``succeeded``, ``failed`` (the pod exits 1, the Job fails with BackoffLimitExceeded), ``hang`` (it
never ends) or ``vanish`` (the Job is deleted behind the follower's back). Requests without the kubeconfig's bearer
token get 401.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import yaml

K8S_VERSION = "1.37.0"
TOKEN = "fake-cluster-token"
_APPLIED = {"persistentvolumeclaims", "configmaps", "services", "deployments", "networkpolicies"}
_OBJECT = re.compile(r"^/(?:api/v1|apis/[a-z0-9.]+/v1)/namespaces/([^/]+)/([a-z]+)(?:/([^/]+))?(?:/(log))?$")

_REQUEST = re.compile(r"^/(?:api/v1|apis/([a-z0-9.]+)/v1)/namespaces/[^/]+/([a-z]+)(/[^/]+)?(/log)?$")

Logs = Callable[[dict[str, Any], int], list[str]]


class FakeKubernetes:
    """The fake API server; ``objects`` maps ``(resource, namespace, name)`` to what was applied or created."""

    def __init__(self, outcome: str = "succeeded", logs: Logs | None = None) -> None:
        self.outcome = outcome
        self.logs: Logs = logs or (lambda job, index: [])
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content type)
        self.job_reads: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, directory: Path) -> Path:
        """A kubeconfig file pointing at this server with its bearer token."""
        path = directory / "kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "users": [{"name": "fake", "user": {"token": TOKEN}}],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def kinds(self) -> list[str]:
        """The kinds of the objects held, in the order they arrived."""
        return [obj["kind"] for obj in self.objects.values() if obj["kind"] != "Pod"]

    def __enter__(self) -> FakeKubernetes:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what the handler calls, under the lock ------------------------------------------------------------

    def apply(self, resource: str, namespace: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if (body.get("metadata") or {}).get("name") != name:
            return 400, _status(400, "the name in the body does not match the URL")
        key = (resource, namespace, name)
        code = 200 if key in self.objects else 201
        self.objects[key] = body
        return code, body

    def create_job(self, namespace: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body["metadata"]["name"]
        if ("jobs", namespace, name) in self.objects:
            return 409, _status(409, f'jobs.batch "{name}" already exists')
        self.objects[("jobs", namespace, name)] = {**body, "status": {}}
        for index in range(int(body["spec"].get("completions") or 1)):
            pod = f"{name}-{index}-x{index}z"
            labels = {"job-name": name, "batch.kubernetes.io/job-completion-index": str(index)}
            meta = {"name": pod, "namespace": namespace, "labels": labels}
            self.objects[("pods", namespace, pod)] = {"kind": "Pod", "metadata": meta, "status": {"phase": "Pending"}}
        return 201, self.objects[("jobs", namespace, name)]

    def read_job(self, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        key = ("jobs", namespace, name)
        if key not in self.objects:
            return 404, _status(404, f'jobs.batch "{name}" not found')
        reads = self.job_reads[(namespace, name)] = self.job_reads.get((namespace, name), 0) + 1
        job = self.objects[key]
        pods = self._pods(namespace, name)
        if reads == 1:
            job["status"] = {"active": len(pods)}
            for pod in pods:
                pod["status"] = {"phase": "Running"}
        elif self.outcome == "hang":
            pass  # the pods keep running
        elif self.outcome == "vanish":
            del self.objects[key]
            return 404, _status(404, f'jobs.batch "{name}" not found')
        elif self.outcome == "succeeded":
            job["status"] = {"succeeded": len(pods), "conditions": [_condition("Complete", "", "")]}
            for pod in pods:
                pod["status"] = _ended("Succeeded", 0, "Completed")
        else:
            reason, message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            job["status"] = {"failed": 1, "conditions": [_condition("Failed", reason, message)]}
            pods[0]["status"] = _ended("Failed", 1, "Error")
        return 200, job

    def delete(self, resource: str, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        gone = self.objects.pop((resource, namespace, name), None)
        if gone is None:
            return 404, _status(404, f'{resource} "{name}" not found')
        if resource == "jobs":  # its pods go with it (propagation in the background)
            for pod in self._pods(namespace, name):
                del self.objects[("pods", namespace, pod["metadata"]["name"])]
        return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200}

    def pod_list(self, namespace: str, selector: str) -> dict[str, Any]:
        job = selector.removeprefix("job-name=")
        return {"kind": "PodList", "apiVersion": "v1", "items": self._pods(namespace, job)}

    def pod_log(self, namespace: str, pod: str) -> str | None:
        found = self.objects.get(("pods", namespace, pod))
        if found is None:
            return None
        job = self.objects.get(("jobs", namespace, found["metadata"]["labels"]["job-name"]))
        index = int(found["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"])
        return "".join(f"{line}\n" for line in self.logs(job or {}, index))

    def not_granted(self, rbac: Path) -> set[tuple[str, str, str]]:
        """The (API group, resource, verb) of every request served so far that the Role in ``rbac`` does not grant."""
        documents = list(yaml.safe_load_all(rbac.read_text(encoding="utf-8")))
        role = next(d for d in documents if d["kind"] == "Role")
        granted = {
            (group, resource, verb)
            for rule in role["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }
        return self.needed() - granted

    def needed(self) -> set[tuple[str, str, str]]:
        """The (API group, resource, verb) of every request served so far."""
        needed = set()
        for method, path, _ in self.requests:
            match = _REQUEST.match(path)
            assert match is not None, path
            group, resource, name, log = match.groups()
            verb = {"PATCH": "patch", "POST": "create", "DELETE": "delete"}.get(method, "get" if name else "list")
            needed.add((group or "", resource + (log or ""), verb))
        return needed

    def _pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        return [
            obj
            for (resource, ns, _), obj in self.objects.items()
            if resource == "pods" and ns == namespace and obj["metadata"]["labels"]["job-name"] == job
        ]


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


def _condition(kind: str, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": "True", "reason": reason, "message": message}


def _ended(phase: str, code: int, reason: str) -> dict[str, Any]:
    terminated = {"exitCode": code, "reason": reason}
    return {"phase": phase, "containerStatuses": [{"name": "trainer", "state": {"terminated": terminated}}]}


def _handler(fake: FakeKubernetes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_PATCH(self) -> None:  # noqa: N802
            self._serve("PATCH")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            with fake.lock:
                fake.requests.append((method, url.path, self.headers.get("Content-Type", "")))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._json(401, _status(401, "Unauthorized"))
            match = _OBJECT.match(url.path)
            if match is None:
                return self._json(404, _status(404, "the server could not find the requested resource"))
            namespace, resource, name, log = match.groups()
            body = self._body() if method in ("POST", "PATCH") else {}
            with fake.lock:
                self._route(method, namespace, resource, name, log, query, body)

        def _route(self, method: str, namespace: str, resource: str, name: str | None, log: str | None,
                   query: dict[str, str], body: dict[str, Any]) -> None:  # fmt: skip
            if method in ("POST", "PATCH"):
                invalid = _invalid(body)
                if invalid:
                    return self._json(422, _status(422, invalid))
                if query.get("dryRun") == "All":  # validated, never stored
                    return self._json(201 if method == "POST" else 200, body)
            if method == "PATCH" and resource in _APPLIED and name:
                if self.headers.get("Content-Type") != "application/apply-patch+yaml" or "fieldManager" not in query:
                    return self._json(415, _status(415, "only server-side apply is served here"))
                return self._json(*fake.apply(resource, namespace, name, body))
            if method == "POST" and resource == "jobs" and not name:
                return self._json(*fake.create_job(namespace, body))
            if method == "GET" and resource == "jobs" and name:
                return self._json(*fake.read_job(namespace, name))
            if method == "DELETE" and name and resource in (*_APPLIED, "jobs"):
                return self._json(*fake.delete(resource, namespace, name))
            if method == "GET" and resource == "pods" and not name:
                return self._json(200, fake.pod_list(namespace, query.get("labelSelector", "")))
            if method == "GET" and resource == "pods" and name and log:
                text = fake.pod_log(namespace, name)
                if text is None:
                    return self._json(404, _status(404, f'pods "{name}" not found'))
                if "tailLines" in query:
                    text = "".join(f"{line}\n" for line in text.splitlines()[-int(query["tailLines"]) :])
                return self._send(200, text.encode(), "text/plain")
            return self._json(405, _status(405, f"{method} {resource} is not served here"))

        def _body(self) -> dict[str, Any]:
            data: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            return data

        def _json(self, code: int, body: dict[str, Any]) -> None:
            self._send(code, json.dumps(body).encode(), "application/json")

        def _send(self, code: int, data: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return

    return Handler


def _invalid(body: dict[str, Any]) -> str | None:
    try:
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{body.get('kind')} is invalid: {exc.message}"
    return None
