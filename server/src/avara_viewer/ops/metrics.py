"""Prometheus metrics: requests and latency (by route template), email outcomes, outbox depth.

The counters live in this process; the outbox gauges are read from the database at scrape
time, so every process reports the same shared outbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..email.outbox import pending_age

disable_created_metrics()  # the *_created series double the output and say little here
registry = CollectorRegistry(auto_describe=True)

requests_total = Counter(
    "avara_viewer_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=registry,
)
request_seconds = Histogram(
    "avara_viewer_http_request_duration_seconds",
    "Time from request start to the end of the response, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=registry,
)
email_outcomes = Counter(
    "avara_viewer_email_deliveries_total",
    "Email delivery attempts by outcome: sent, retry (temporary failure), failed "
    "(permanent or given up), cancelled (superseded before sending).",
    ["kind", "outcome"],
    registry=registry,
)
email_lease_lost = Counter(
    "avara_viewer_email_lease_lost_total",
    "Emails sent twice (same Message-ID) after a claim's lease ran out (the sender was "
    "paused or could not record in time), counted once each by the second sender; plus "
    "sends cut off after their lease ran out, which the mail server may have taken.",
    registry=registry,
)
outbox_pending = Gauge(
    "avara_viewer_outbox_pending",
    "Emails waiting in the outbox (all processes), read at scrape time.",
    registry=registry,
)
outbox_oldest_age = Gauge(
    "avara_viewer_outbox_oldest_pending_age_seconds",
    "Age of the oldest email waiting in the outbox; 0 when none is waiting.",
    registry=registry,
)
rate_limited_total = Counter(
    "avara_viewer_rate_limited_total",
    "Requests answered 429 by the per-API-key rate limit.",
    registry=registry,
)

# Label children cached by their label values: `.labels()` takes a lock and builds a key on
# every call, which is most of a counter's cost on the request path.
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    if method not in _METHODS:  # label values stay few whatever a client sends
        method = "OTHER"
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:
        children = (
            requests_total.labels(method, route, str(status)),
            request_seconds.labels(method, route),
        )
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def record_email_outcomes(outcomes: Iterable[tuple[str, str]]) -> None:
    """(kind, outcome) pairs of one committed delivery batch."""
    for kind, outcome in outcomes:
        email_outcomes.labels(kind, outcome).inc()


def record_lease_lost(count: int) -> None:
    email_lease_lost.inc(count)


def set_outbox(pending: int, oldest_created_at: datetime | None, now: datetime) -> None:
    outbox_pending.set(pending)
    outbox_oldest_age.set(pending_age(oldest_created_at, now))


def exposition() -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST
