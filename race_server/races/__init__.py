"""Race rules (pure): settings validation (``config``), ranking methods (``ranking``), timing of
laps and sectors (``timing``) and leaderboard rows (``leaderboard``). No I/O here: the API,
persistence and the RaceHost build on these modules."""
