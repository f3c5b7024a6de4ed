"""Physical cars on the server side: the live links (``links``), car bundles (``bundle``), the
physical-track race host (``physical_host``, ``host_factory``) and the cars' cameras (``video``)."""
