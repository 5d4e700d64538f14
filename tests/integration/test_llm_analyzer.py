"""The chat completions analyzer against the fake LLM over HTTP: answers and faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.enrichment.llm import (
    AnalyzerError,
    AnalyzerMalformed,
    AnalyzerRetryable,
    ChatCompletionsAnalyzer,
)
from app.enrichment.schemas import EMPTY_TRANSCRIPT
from app.fakes.llm import FakeLLM
from app.transcripts import Message

KEY = "sk-test-analyzer"
TRANSCRIPT = [
    Message(role="MESSAGE_ROLE_AGENT", text="Hello! I'm calling about a refund."),
    Message(role="MESSAGE_ROLE_USER", text="Thanks. Can you call back tomorrow?"),
    Message(role="MESSAGE_ROLE_TOOL_RESULT", text='{"ok": true}'),
]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeLLM, str]]:
    fake = FakeLLM(KEY)
    with fake.serve() as running:
        yield fake, f"{running.url}/v1"


@pytest.fixture
def fake(served: tuple[FakeLLM, str]) -> Iterator[FakeLLM]:
    served[0].reset()
    yield served[0]
    served[0].reset()


@pytest.fixture
def analyzer(served: tuple[FakeLLM, str]) -> ChatCompletionsAnalyzer:
    return ChatCompletionsAnalyzer(served[1], "fake-analyst", KEY, timeout=0.5)


def test_asks_for_json_and_validates_the_answer(
    fake: FakeLLM, analyzer: ChatCompletionsAnalyzer
) -> None:
    result = analyzer.analyze(TRANSCRIPT)
    assert result.outcome == "callback_requested"
    assert result.sentiment == 0.5
    assert result.key_points == ["Thanks. Can you call back tomorrow?"]
    assert analyzer.name == "openai:fake-analyst"
    [body] = fake.requests
    assert body["model"] == "fake-analyst"
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][1]["content"] == (
        "agent: Hello! I'm calling about a refund.\ncaller: Thanks. Can you call back tomorrow?"
    )


def test_an_empty_transcript_needs_no_request(
    fake: FakeLLM, analyzer: ChatCompletionsAnalyzer
) -> None:
    assert analyzer.analyze([Message(role="MESSAGE_ROLE_USER", text="")]) == EMPTY_TRANSCRIPT
    assert fake.requests == []


def test_a_timeout_fails_the_attempt_without_a_retry_in_the_call(
    fake: FakeLLM, analyzer: ChatCompletionsAnalyzer
) -> None:
    """The item's attempt fails, and the queue's backoff retries it later (http's docstring)."""
    fake.inject("timeout", seconds=2)
    with pytest.raises(
        AnalyzerRetryable, match=r"POST /v1/chat/completions: no answer within 0.5s"
    ) as raised:
        analyzer.analyze(TRANSCRIPT)
    assert raised.value.timed_out
    assert len(fake.requests) == 1
    assert analyzer.analyze(TRANSCRIPT).outcome == "callback_requested"  # the next attempt


def test_429_is_retried_after_the_servers_delay(
    fake: FakeLLM, analyzer: ChatCompletionsAnalyzer
) -> None:
    fake.inject("429", retry_after=0)
    assert analyzer.analyze(TRANSCRIPT).outcome == "callback_requested"
    fake.inject("429", times=4, retry_after=0)
    with pytest.raises(AnalyzerRetryable, match="HTTP 429") as raised:
        analyzer.analyze(TRANSCRIPT)
    assert raised.value.retry_after == 0


def test_content_that_is_not_json_is_malformed_and_not_retried(
    fake: FakeLLM, analyzer: ChatCompletionsAnalyzer
) -> None:
    fake.inject("malformed_json")
    with pytest.raises(AnalyzerMalformed, match="the message content is not JSON"):
        analyzer.analyze(TRANSCRIPT)
    assert len(fake.requests) == 1


def test_json_that_fails_validation_names_the_field(
    fake: FakeLLM, analyzer: ChatCompletionsAnalyzer
) -> None:
    fake.inject("invalid")
    with pytest.raises(
        AnalyzerMalformed, match="fake-analyst: summary: String should have at least 1 character"
    ):
        analyzer.analyze(TRANSCRIPT)


def test_a_wrong_key_is_a_fatal_error(served: tuple[FakeLLM, str]) -> None:
    wrong = ChatCompletionsAnalyzer(served[1], "fake-analyst", "sk-wrong", timeout=0.5)
    with pytest.raises(AnalyzerError, match="HTTP 401") as raised:
        wrong.analyze(TRANSCRIPT)
    assert not isinstance(raised.value, AnalyzerRetryable)
