"""LIVE races: the RaceHost (simulator process, policy, timing) and the typed events it reports (a shell package)."""
