"""The ``storage`` settings section and the grammar of the URIs it holds: ``s3://BUCKET[/PREFIX]``.

Shared storage is an S3-compatible bucket that snapshots and checkpoints are published to (empty
``storage.uri``: local only). This module owns what such a URI may look like (:func:`storage_uri_problem`),
how it is shown without credentials (:func:`shown_uri`) and the :class:`Location` it names; publishing and
fetching live in :mod:`swerl_core.bucket`. It never talks to a bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from swerl_core.config.checks import DAY_S, require, require_integer, require_number
from swerl_core.config.sections import is_http_url
from swerl_core.errors import StorageError

SCHEME = "s3://"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # S3's bucket naming rules


@dataclass(frozen=True)
class StorageConfig:
    """Shared storage for snapshots and checkpoints: an S3-compatible bucket (empty ``uri``: local only).

    Credentials are never settings: boto3 reads ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (or a role).
    """

    uri: str = ""  # s3://BUCKET[/PREFIX]
    endpoint_url: str = ""  # an S3-compatible server (MinIO, Ceph RGW, R2…); empty: AWS (or AWS_ENDPOINT_URL_S3)
    timeout_s: float = 60.0  # connect and read timeout of one request
    max_attempts: int = 5  # tries per request (boto3's standard retry mode)

    def __post_init__(self) -> None:
        problem = storage_uri_problem(self.uri) if self.uri else None
        require(problem is None, "storage.uri", f"s3://BUCKET[/PREFIX], got {shown_uri(self.uri)!r} ({problem})")
        url = self.endpoint_url
        require(
            not url or (is_http_url(url) and "@" not in urlsplit(url).netloc),
            "storage.endpoint_url",
            f"an http(s)://HOST[:PORT] URL without credentials, got {shown_uri(url)!r}",
        )
        require_number("storage.timeout_s", self.timeout_s, 0, DAY_S, open_low=True, unit="seconds")
        require_integer("storage.max_attempts", self.max_attempts, 1, 100)


@dataclass(frozen=True)
class Location:
    """A place in a bucket: ``s3://bucket/key`` (``key`` without leading or trailing slash; may be empty)."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        """The ``s3://`` URI of this location."""
        return f"{SCHEME}{self.bucket}/{self.key}" if self.key else f"{SCHEME}{self.bucket}"

    def child(self, *parts: str) -> Location:
        """The location ``parts`` below this one."""
        return Location(self.bucket, "/".join(p for p in (self.key, *parts) if p))


def storage_uri_problem(uri: str) -> str | None:
    """What is wrong with ``uri`` as an ``s3://BUCKET[/PREFIX]`` URI (a short phrase), or ``None``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "it is not a URI"
    if parts.scheme != "s3":
        return f"the scheme is {parts.scheme + '://' if parts.scheme else 'missing'}, not s3://"
    if "@" in parts.netloc:
        return "credentials never go in settings: use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
    if not parts.netloc:
        return "it names no bucket"
    if not _BUCKET.match(parts.netloc) or ".." in parts.netloc:
        return f"{parts.netloc!r} is not a valid bucket name"
    if parts.query or parts.fragment:
        return "it has a query or fragment"
    if any(seg in (".", "..") for seg in parts.path.split("/")):
        return "its path has . or .. segments"
    if "//" in parts.path:
        return "its path has an empty segment (//)"
    return None


def shown_uri(uri: str) -> str:
    """``uri`` safe to print: any ``user:password@`` part is dropped."""
    parts = urlsplit(uri) if "://" in uri else None
    if parts is None or "@" not in parts.netloc:
        return uri
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def is_storage_uri(text: str) -> bool:
    """Whether ``text`` names an object-store location (``s3://…``) rather than a local path."""
    return text.startswith(SCHEME)


def parse_location(uri: str) -> Location:
    """The :class:`Location` of an ``s3://`` URI; :class:`StorageError` naming the problem otherwise."""
    problem = storage_uri_problem(uri)
    if problem is not None:
        raise StorageError(f"bad storage URI {shown_uri(uri)!r}: {problem}")
    parts = urlsplit(uri)
    return Location(parts.netloc, parts.path.strip("/"))
