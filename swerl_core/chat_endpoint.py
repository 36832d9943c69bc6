"""One client for OpenAI-compatible ``/chat/completions`` servers (vLLM, TGI, hosted APIs).

Used by evaluation's endpoint backend and curation's optional LLM ranker. It posts one request body,
retries what a server may answer differently next time (timeouts, resets, 408/409/425/429/5xx) with
exponential backoff, and raises :class:`EndpointError` with a one-line reason otherwise. The API key
goes only into the ``Authorization`` header, never into a message.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from swerl_core.errors import EndpointError

if TYPE_CHECKING:
    from swerl_core.config import Secret

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def chat_completions_url(base_url: str) -> str:
    """The ``/chat/completions`` URL under an OpenAI-compatible base URL (``…/v1``)."""
    return base_url.rstrip("/") + "/chat/completions"


def post_chat_completion(
    url: str,
    body: dict[str, Any],
    *,
    timeout_s: float,
    api_key: Secret | None = None,
    max_retries: int = 0,
    backoff_s: float = 1.0,
) -> dict[str, Any]:
    """The decoded JSON answer of one chat-completions request to ``url``."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key.reveal()}"
    data = json.dumps(body).encode()
    last = ""
    for attempt in range(max_retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code not in RETRY_STATUS:
                raise EndpointError(f"endpoint {url} refused the request: HTTP {exc.code}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            last = type(exc).__name__ if isinstance(exc, TimeoutError) else str(getattr(exc, "reason", exc))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EndpointError(f"endpoint {url} sent an unreadable answer: {exc}") from None
        else:
            if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
                raise EndpointError(f"endpoint {url} sent an unreadable answer: no choices")
            return answer
    raise EndpointError(f"endpoint {url} failed after {max_retries + 1} attempts (last: {last})")
