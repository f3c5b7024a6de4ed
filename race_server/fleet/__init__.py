"""Physical cars on the server side: the live links (``links``), car bundles (``bundle``) and the
physical-track race host (``physical_host``, ``host_factory``)."""
