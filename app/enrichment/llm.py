"""An analyzer backed by any OpenAI-compatible chat completions API (`POST /chat/completions`).

It asks for a JSON object and validates it as an Analysis; an answer that is not JSON, or
not a valid Analysis, is an AnalyzerMalformed. Timeouts, 429 and 5xx are retried here first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import get_args

from pydantic import ValidationError

from app import http
from app.enrichment.schemas import EMPTY_TRANSCRIPT, Analysis
from app.outcomes import Outcome
from app.transcripts import Message
from app.validation import first_error

SYSTEM_PROMPT = (
    "You analyse transcripts of phone calls between a voice agent and a caller. Answer with "
    "one JSON object and nothing else, with exactly these keys: "
    '"summary" (string, at most three sentences), '
    '"sentiment" (number from -1, very negative, to 1, very positive: the caller\'s mood), '
    f'"outcome" (one of {", ".join(get_args(Outcome))}), '
    '"key_points" (array of at most 5 short strings), '
    '"topics" (array of at most 5 short lowercase strings).'
)
SPEAKERS = {"MESSAGE_ROLE_USER": "caller", "MESSAGE_ROLE_AGENT": "agent"}


class AnalyzerError(http.ProviderError):
    """The chat completions API refused the request (4xx other than 408/409/429)."""


class AnalyzerRetryable(AnalyzerError, http.RetryableError):
    """Timeout, connection failure, 408/409/429 or 5xx; `retry_after` set if the server said."""


class AnalyzerMalformed(AnalyzerError):
    """The model answered, but not with a JSON object that is a valid Analysis."""


class ChatCompletionsAnalyzer:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        connections: int = 10,
    ) -> None:
        self.name = f"openai:{model}"
        self._url = f"{base_url.rstrip('/')}/chat/completions"
        self._model = model
        self._timeout = timeout
        self._session = http.build_session(
            self._url, {"Authorization": f"Bearer {api_key}"}, connections=connections
        )

    def analyze(self, messages: Sequence[Message]) -> Analysis:
        lines = [
            f"{SPEAKERS[m.role]}: {m.text.strip()}"
            for m in messages
            if m.role in SPEAKERS and m.text.strip()
        ]
        if not lines:
            return EMPTY_TRANSCRIPT
        return self._complete("\n".join(lines))

    @http.retry_transient(AnalyzerRetryable)
    def _complete(self, transcript: str) -> Analysis:
        body = {
            "model": self._model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": transcript},
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0,
        }
        response = http.send(
            self._session,
            "POST",
            self._url,
            json=body,
            timeout=self._timeout,
            retryable=AnalyzerRetryable,
            fatal=AnalyzerError,
        )
        try:
            content = response.json()["choices"][0]["message"]["content"]
            return Analysis.model_validate_json(content)
        except (ValueError, KeyError, IndexError, TypeError) as error:
            reason = _reason(error)
            raise AnalyzerMalformed(f"malformed answer from {self._model}: {reason}") from error


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        if error.errors()[0]["type"] == "json_invalid":
            return "the message content is not JSON"
        return first_error(error, root="content")
    if isinstance(error, json.JSONDecodeError):
        return "the response body is not JSON"
    return f"no choices[0].message.content ({type(error).__name__})"
