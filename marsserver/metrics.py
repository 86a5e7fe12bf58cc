"""Metrics: what the service is doing, in Prometheus' text format at `GET /metrics`.

Each app owns its own `CollectorRegistry` (never the process-global one), so two apps in one
process count separately and creating an app twice never trips over duplicate metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily

CONTENT_TYPE = CONTENT_TYPE_LATEST
STAGES = ("list", "source", "wallpaper")
RESULTS = ("hit", "miss", "stale", "shared")


class Metrics:
    """The service's counters, gauges and histogram, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.upstream_requests = Counter(
            "marsserver_upstream_requests", "Requests sent upstream, by answer",
            ["source", "kind", "status"], registry=r)
        self.upstream_budget_left = Gauge(
            "marsserver_upstream_budget_left", "Calls the upstream budget has left for ordinary "
            "requests (the newest list's reserve not counted), as this instance last saw it and "
            "refilled since; +Inf when unlimited", registry=r)
        self.upstream_budget_refused = Counter(
            "marsserver_upstream_budget_refused", "Calls to the source the upstream budget "
            "refused, by kind (list, image) and call (newest: the newest list; other)",
            ["kind", "call"], registry=r)
        self.lookups = Lookups(r)
        self.coalesced_waiters = Counter(
            "marsserver_coalesced_waiters", "Requests that waited for another request's work",
            ["stage"], registry=r)
        self.resizes = Counter("marsserver_resizes", "Wallpapers made", registry=r)
        self.resize_seconds = Histogram(
            "marsserver_resize_seconds", "Time to make one wallpaper, in its thread",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0), registry=r)
        self.inflight = Gauge("marsserver_inflight", "Computations in flight, by stage",
                              ["stage"], registry=r)
        self.resize_queue_depth = Gauge(
            "marsserver_resize_queue_depth", "Resizes queued or running", registry=r)
        self.feed_items_dropped = Counter(
            "marsserver_feed_items_dropped", "Feed items not listed as photos, by reason "
            "(thumbnail, subframe, downsampled, strip, small, ...)", ["source", "reason"],
            registry=r)
        # Children bound once: `labels()` on every request costs more than the increment.
        self.coalesced = {stage: self.coalesced_waiters.labels(stage) for stage in STAGES}

    def dropped(self, source: str, reason: str) -> Counter:
        """The counter of feed items `source` dropped for `reason` (a closed set of labels)."""
        return self.feed_items_dropped.labels(source, reason)

    def watch(self, inflight: Callable[[str], int], queue_depth: Callable[[], int]) -> None:
        """Read the gauges from live state at scrape time, not on every request."""
        for stage in STAGES:
            self.inflight.labels(stage).set_function(partial(inflight, stage))
        self.resize_queue_depth.set_function(queue_depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HitCount:
    """Ready answers served (http/ready_answers.py), added up at scrape time: on a cached hit,
    adding one to an attribute is the cheapest count there is."""

    __slots__ = ("served",)

    def __init__(self) -> None:
        self.served = 0


class Lookups:
    """Cache lookups by stage and result, as plain integers read at scrape time.

    A prometheus_client Counter takes a lock on every increment; on a cached hit, which counts
    one or two lookups, that cost as much as checking the hit itself. Only the event loop
    counts and scrapes, so plain integers are exact.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._lookups = {(stage, result): 0 for stage in STAGES for result in RESULTS}
        self._served: dict[tuple[str, ...], HitCount] = {}
        registry.register(self)

    def count(self, stage: str, result: str) -> None:
        self._lookups[stage, result] += 1

    def hits_at(self, *stages: str) -> HitCount:
        """Where ready answers count one hit at each of `stages`, as the full path would."""
        if not set(stages) <= set(STAGES):
            raise ValueError(f"unknown stages {stages}: not all of {STAGES}")
        return self._served.setdefault(stages, HitCount())

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "marsserver_cache_requests", "Cache lookups by stage and result (hit, miss, stale, "
            "shared)",
            labels=("cache", "result"))
        counts = dict(self._lookups)
        for stages, count in self._served.items():
            for stage in stages:
                counts[stage, "hit"] += count.served
        for labels, value in counts.items():
            family.add_metric(labels, value)
        yield family
        yield CounterMetricFamily(
            "marsserver_ready_answers", "Cached hits answered before their handler ran",
            value=sum(count.served for count in self._served.values()))
