"""Prometheus metrics. What is shared by every API and queue process (queue depth, proofs by
outcome, latencies of finished work, active leases) is read from the database at scrape time, so
any replica reports the same numbers; HTTP latency is per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from prover.service.store import Store

__all__ = ["HTTP_LATENCY", "LATENCY_BUCKETS", "registry_for", "rejection_kind"]

#: Seconds; proofs of the reference models take seconds to tens of seconds on a CPU.
LATENCY_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)

_PROCESS = CollectorRegistry()
HTTP_LATENCY = Histogram(
    "zkinfer_http_request_seconds",
    "API request latency in this process, by route and status class",
    ["route", "method", "status"],
    registry=_PROCESS,
)


def rejection_kind(reason: str | None) -> str:
    """A small, fixed label set for why a proof was rejected."""
    text = (reason or "").lower()
    if text.startswith("malformed proof"):
        return "malformed"
    if "not about the input" in text:
        return "wrong_input"
    if "for model" in text:
        return "wrong_model"
    return "invalid"


class _Snapshot(Collector):
    def __init__(self, snap: dict[str, object]) -> None:
        self.snap = snap

    def collect(self):  # type: ignore[no-untyped-def]
        depth = GaugeMetricFamily(
            "zkinfer_requests", "Inference requests by status", labels=["status"]
        )
        for status, n in sorted(self.snap["by_status"].items()):  # type: ignore[attr-defined]
            depth.add_metric([status], n)
        yield depth
        leases = GaugeMetricFamily("zkinfer_active_leases", "Leases held by provers now")
        leases.add_metric([], self.snap["active_leases"])  # type: ignore[arg-type]
        yield leases
        proofs = CounterMetricFamily(
            "zkinfer_proofs", "Submitted proofs by verdict and reason", labels=["outcome", "reason"]
        )
        for (outcome, kind), n in sorted(self.snap["proofs"].items()):  # type: ignore[attr-defined]
            proofs.add_metric([outcome, kind], n)
        yield proofs
        jobs = GaugeMetricFamily(
            "zkinfer_queue_jobs", "Background jobs by status", labels=["status"]
        )
        for status, n in sorted(self.snap["jobs"].items()):  # type: ignore[attr-defined]
            jobs.add_metric([status], n)
        yield jobs
        for name, doc, key in (
            ("zkinfer_prove_seconds", "Proving time reported with accepted proofs", "prove"),
            ("zkinfer_end_to_end_seconds", "Request creation to verified result", "e2e"),
        ):
            values: list[float] = self.snap[key]  # type: ignore[assignment]
            buckets = [(str(b), sum(1 for v in values if v <= b)) for b in LATENCY_BUCKETS]
            buckets.append(("+Inf", len(values)))
            yield HistogramMetricFamily(name, doc, buckets=buckets, sum_value=sum(values))


async def registry_for(store: Store) -> CollectorRegistry:
    """A registry holding this process's metrics and a fresh snapshot of the shared ones."""
    snap = await store.metrics_snapshot()
    proofs: dict[tuple[str, str], int] = {}
    for outcome, reason, n in snap.pop("attempts"):  # type: ignore[attr-defined]
        kind = rejection_kind(reason) if outcome == "rejected" else ""
        proofs[(outcome, kind)] = proofs.get((outcome, kind), 0) + n
    snap["proofs"] = proofs
    registry = CollectorRegistry()
    registry.register(_Snapshot(snap))
    for collector in _PROCESS._collector_to_names:  # the process-local histograms
        registry.register(collector)
    return registry
