"""Prometheus metrics, one registry per app so several apps (tests) never share counters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _PoolCollector(Collector):
    def __init__(self, state: Any) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = getattr(self._state, "pool", None)
        size = GaugeMetricFamily("trackside_db_pool_connections", "Open database connections", labels=["state"])
        if pool is not None:
            size.add_metric(["open"], pool.get_size())
            size.add_metric(["idle"], pool.get_idle_size())
        yield size
        bus = getattr(self._state, "bus", None)
        if bus is not None:
            for name in ("published_total", "delivered_total", "dropped_subscribers_total"):
                family = GaugeMetricFamily(f"trackside_bus_{name}", f"Event bus {name.replace('_', ' ')}")
                family.add_metric([], float(getattr(bus, name, 0)))
                yield family


class Metrics:
    def __init__(self, state: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "trackside_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "trackside_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry
        )
        self.websockets = Gauge("trackside_websocket_connections", "Open websockets", registry=self.registry)
        self.login_failures = Counter("trackside_login_failures", "Failed logins", registry=self.registry)
        self.registry.register(_PoolCollector(state))
