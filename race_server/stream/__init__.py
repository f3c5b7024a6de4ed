"""Live video: one encoder per race, its packets fanned out to every WebRTC viewer, recordings."""
