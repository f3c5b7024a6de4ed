"""The MuJoCo DeepRacer world (pure: no server, network or database imports).

Importing this package registers the Gymnasium id `Trackside/DeepRacer-v0`; the env module itself
(and MuJoCo) loads only when an env is made, so tools that need just the tracks stay light.
"""

import gymnasium as gym

ENV_ID = "Trackside/DeepRacer-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="race_server.sim.env:DeepRacerEnv")
