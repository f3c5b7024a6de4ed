"""HTTP and websocket endpoints: thin, validate at the edge, call domain code."""
