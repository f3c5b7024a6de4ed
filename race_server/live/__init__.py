"""LIVE races: the RaceHost (simulator process, policy, timing) and its benchmark (a shell package)."""
