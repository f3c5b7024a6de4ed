"""Pure frame composition for the broadcast: state + rendered frame -> frame with the overlay."""

from race_server.overlay.compose import Overlay
from race_server.overlay.state import BroadcastFeed, BroadcastState, LeaderRow

__all__ = ["BroadcastFeed", "BroadcastState", "LeaderRow", "Overlay"]
