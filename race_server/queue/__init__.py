"""The LIVE race queue: ``machine`` is the pure state machine; the persisting service (a shell)
stores its events and publishes them. Keep this package's ``__init__`` free of imports so the
pure machine can be imported without the service's dependencies."""
