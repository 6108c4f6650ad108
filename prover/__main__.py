"""``python -m prover`` runs the ``zkinfer`` command line."""

from prover.cli.app import run

run()
