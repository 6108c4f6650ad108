"""The chain layer: talks to Ethereum (web3.py, anvil) on behalf of the core's bundles and proofs.

It imports the core, never the CLI or the service; it needs the ``chain`` (or ``verify``) extra.
"""
