"""The HTTP service (``zkinfer serve``): clients request proven inferences, untrusted provers
lease and prove them, and the service verifies every proof before it is accepted.

Layout: ``app.py`` (factory), ``routes/`` (thin handlers), ``schemas.py`` (client bodies; the
provider side's are in :mod:`prover.protocol`), ``store.py``/``db.py`` (PostgreSQL),
``leases.py`` (the pure state machine), ``tasks.py`` (procrastinate jobs), ``verifier.py`` (the
proof check in a child process).
"""
