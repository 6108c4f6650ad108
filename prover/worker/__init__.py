"""The untrusted prover (``zkinfer worker --api URL``): the core plus an HTTP client, nothing more.

It leases requests from a zkinfer service (:mod:`prover.protocol`), downloads and checks the
model's bundle, proves in a child process it can kill, and submits the proof; the service
re-verifies every proof before it accepts one. Imports only :mod:`prover.core`,
:mod:`prover.protocol`, :mod:`prover.errors` and httpx.
"""

from __future__ import annotations

from prover.worker.bundles import BundleCache
from prover.worker.client import RetryPolicy, ServiceClient
from prover.worker.loop import LeaseOutcome, WorkerOptions, run_worker

__all__ = [
    "BundleCache",
    "LeaseOutcome",
    "RetryPolicy",
    "ServiceClient",
    "WorkerOptions",
    "run_worker",
]
