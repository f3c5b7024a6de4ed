"""The overlay: `BroadcastState` + a rendered frame -> the broadcast frame (drawn in place).

Layout (1280 x 720, scaled for other heights): the racer panel top-left (name, lap, current lap
time, best and last lap, resets / off-tracks / crashes), the clock panel top-right (time left,
speed, speed multiplier), the track map bottom-left, notices in the centre (countdown 10…1, GO,
penalties), the checkered flag or the REPLAY badge top-centre, and between runs COMING UP with the
top of the leaderboard. The bottom-right quarter stays clear for commentator cut-outs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from race_server.overlay.sprites import RGB, Sprite, Text, blend, from_image, rounded_panel
from race_server.overlay.state import BroadcastState
from race_server.overlay.trackmap import TrackMap
from race_server.sim.tracks import Track

WHITE = (255, 255, 255)
MUTED = (196, 200, 210)
PANEL = (14, 16, 24)
GO_GREEN = (40, 215, 95)
PENALTY_RED = (205, 36, 40)
REPLAY_RED = (214, 28, 44)
FLAG_DARK = (16, 16, 16)
FLAG_LIGHT = (250, 250, 250)
PANEL_OPACITY = 0.78
LEADERBOARD_ROWS = 5


def lap_clock(ms: float | None) -> str:
    if ms is None:
        return "-:--.---"
    total = max(round(ms), 0)
    return f"{total // 60000}:{total // 1000 % 60:02d}.{total % 1000:03d}"


def countdown_clock(ms: float) -> str:
    seconds = max(math.ceil(ms / 1000.0 - 1e-9), 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass(frozen=True)
class Box2:
    x: int
    y: int
    w: int
    h: int

    @property
    def centre(self) -> tuple[int, int]:
        return self.x + self.w // 2, self.y + self.h // 2


class Overlay:
    """Draws the overlay for one track onto frames of one size; every static layer is cached."""

    def __init__(self, track: Track, width: int = 1280, height: int = 720) -> None:
        self.width, self.height = width, height
        s = height / 720.0
        self.s = s
        m = round(24 * s)
        self.text = Text()
        self.racer = Box2(m, m, round(380 * s), round(120 * s))
        self.stats = Box2(m, self.racer.y + self.racer.h + round(8 * s), self.racer.w, round(40 * s))
        self.clock = Box2(width - m - round(300 * s), m, round(300 * s), round(120 * s))
        self.map = Box2(m, height - m - round(210 * s), round(300 * s), round(210 * s))
        self.centre = Box2(width // 2 - round(170 * s), height // 2 - round(150 * s), round(340 * s), round(300 * s))
        self.flag = Box2(width // 2 - round(90 * s), m, round(180 * s), round(112 * s))
        self.badge = Box2(width // 2 - round(95 * s), m, round(190 * s), round(56 * s))
        self.notice = Box2(width // 2 - round(260 * s), round(height * 0.70), round(520 * s), round(64 * s))
        self.board = Box2(width // 2 - round(300 * s), round(110 * s), round(600 * s), round(500 * s))
        self.track_map = TrackMap(track, self.map.w, self.map.h, s)
        self._panels: dict[tuple[int, int, RGB, float], Sprite] = {}
        self._flag: Sprite | None = None

    # --- cached static layers ----------------------------------------------------------------
    def panel(self, box: Box2, rgb: RGB = PANEL, opacity: float = PANEL_OPACITY) -> Sprite:
        key = (box.w, box.h, rgb, opacity)
        sprite = self._panels.get(key)
        if sprite is None:
            sprite = rounded_panel(box.w, box.h, rgb, opacity, round(12 * self.s))
            self._panels[key] = sprite
        return sprite

    def flag_sprite(self) -> Sprite:
        if self._flag is None:
            box, k, cols, rows = self.flag, 4, 8, 5
            img = Image.new("RGBA", (box.w * k, box.h * k), (0, 0, 0, 0))
            draw = ImageDraw.Draw(img)
            cell_w, cell_h = box.w * k / cols, box.h * k / rows
            for r in range(rows):
                for c in range(cols):
                    colour = FLAG_DARK if (r + c) % 2 == 0 else FLAG_LIGHT
                    xy = (c * cell_w, r * cell_h, (c + 1) * cell_w - 1, (r + 1) * cell_h - 1)
                    draw.rectangle(xy, fill=(*colour, 255))
            self._flag = from_image(img, box.w, box.h)
        return self._flag

    # --- drawing -----------------------------------------------------------------------------
    def put(
        self,
        frame: npt.NDArray[np.uint8],
        text: str,
        size: float,
        x: float,
        y: float,
        *,
        rgb: RGB = WHITE,
        align: str = "left",
    ) -> None:
        px = round(size * self.s)
        sprite = self.text.sprite(text, px, rgb)
        if align == "centre":
            x -= sprite.width / 2
        elif align == "right":
            x -= sprite.width
        blend(frame, sprite, round(x), round(y))

    def draw(
        self, state: BroadcastState, frame: npt.NDArray[np.uint8], *, track_map: bool = True
    ) -> npt.NDArray[np.uint8]:
        """Compose the overlay onto ``frame`` ((H, W, 3 or 4) uint8, modified in place) and return it;
        ``track_map`` False leaves out the map (the top-down view already is one)."""
        if frame.shape[0] != self.height or frame.shape[1] != self.width:
            raise ValueError(f"frame: {frame.shape[1]}x{frame.shape[0]}; this overlay is {self.width}x{self.height}")
        on_track = state.phase in ("countdown", "racing", "finished", "replay")
        if on_track:
            self._racer_panel(frame, state)
            self._clock_panel(frame, state)
            if track_map:
                self._map(frame, state)
        if state.phase == "countdown" and state.countdown is not None:
            self._centre_text(frame, str(state.countdown), 190, WHITE)
        elif state.show_go:
            self._centre_text(frame, "GO", 190, GO_GREEN)
        if state.phase == "racing" and state.penalty and state.penalty_remaining_ms > 0:
            self._notice(frame, state)
        if state.show_flag:
            blend(frame, self.flag_sprite(), self.flag.x, self.flag.y)
            self.put(frame, "FINISH", 30, self.flag.centre[0], self.flag.y + self.flag.h + 6 * self.s, align="centre")
        if state.replay:
            blend(frame, self.panel(self.badge, REPLAY_RED, 0.92), self.badge.x, self.badge.y)
            self.put(frame, "REPLAY", 34, self.badge.centre[0], self.badge.y + 6 * self.s, align="centre")
        if state.phase == "idle" and (state.coming_up or state.leaderboard):
            self._between_runs(frame, state)
        return frame

    def _racer_panel(self, frame: npt.NDArray[np.uint8], st: BroadcastState) -> None:
        b, s = self.racer, self.s
        blend(frame, self.panel(b), b.x, b.y)
        self.put(frame, st.racer_name or "—", 30, b.x + 16 * s, b.y + 8 * s)
        self.put(frame, f"LAP {st.lap}", 20, b.x + 16 * s, b.y + 52 * s, rgb=MUTED)
        self.put(frame, lap_clock(st.lap_time_ms), 30, b.x + b.w - 16 * s, b.y + 44 * s, align="right")
        self.put(frame, f"BEST {lap_clock(st.best_lap_ms)}", 18, b.x + 16 * s, b.y + 88 * s, rgb=MUTED)
        self.put(
            frame, f"LAST {lap_clock(st.last_lap_ms)}", 18, b.x + b.w - 16 * s, b.y + 88 * s, rgb=MUTED, align="right"
        )
        t = self.stats
        blend(frame, self.panel(t), t.x, t.y)
        line = f"RESETS {st.resets}    OFF TRACK {st.off_track}    CRASHES {st.collisions}"
        self.put(frame, line, 18, t.x + 16 * s, t.y + 8 * s, rgb=MUTED)

    def _clock_panel(self, frame: npt.NDArray[np.uint8], st: BroadcastState) -> None:
        b, s = self.clock, self.s
        blend(frame, self.panel(b), b.x, b.y)
        self.put(frame, "TIME LEFT", 18, b.x + 16 * s, b.y + 12 * s, rgb=MUTED)
        self.put(frame, countdown_clock(st.time_remaining_ms), 44, b.x + b.w - 16 * s, b.y + 2 * s, align="right")
        self.put(frame, f"{st.speed:.2f} m/s", 26, b.x + 16 * s, b.y + 76 * s)
        self.put(frame, f"×{st.multiplier:.2f}", 26, b.x + b.w - 16 * s, b.y + 76 * s, align="right")

    def _map(self, frame: npt.NDArray[np.uint8], st: BroadcastState) -> None:
        b = self.map
        blend(frame, self.panel(b, opacity=0.55), b.x, b.y)
        blend(frame, self.track_map.sprite(st.sector_colours), b.x, b.y)
        if st.x is not None and st.y is not None:
            px, py = self.track_map.to_pixel(st.x, st.y)
            dot = self.track_map.dot
            blend(frame, dot, b.x + round(px - dot.width / 2), b.y + round(py - dot.height / 2))

    def _centre_text(self, frame: npt.NDArray[np.uint8], text: str, size: float, rgb: RGB) -> None:
        c = self.centre
        blend(frame, self.panel(c, opacity=0.6), c.x, c.y)
        sprite = self.text.sprite(text, round(size * self.s), rgb)
        blend(frame, sprite, c.centre[0] - sprite.width // 2, c.centre[1] - sprite.height // 2)

    def _notice(self, frame: npt.NDArray[np.uint8], st: BroadcastState) -> None:
        n = self.notice
        blend(frame, self.panel(n, PENALTY_RED, 0.9), n.x, n.y)
        text = f"{st.penalty}   {st.penalty_remaining_ms / 1000.0:.1f} s"
        self.put(frame, text, 30, n.centre[0], n.y + 12 * self.s, align="centre")

    def _between_runs(self, frame: npt.NDArray[np.uint8], st: BroadcastState) -> None:
        b, s = self.board, self.s
        blend(frame, self.panel(b), b.x, b.y)
        y = b.y + 16 * s
        if st.coming_up:
            self.put(frame, "COMING UP", 22, b.x + 24 * s, y, rgb=MUTED)
            slot = f"{st.coming_up_slot_s / 60:.0f} min" if st.coming_up_slot_s else ""
            self.put(frame, slot, 22, b.x + b.w - 24 * s, y, rgb=MUTED, align="right")
            self.put(frame, st.coming_up, 40, b.x + 24 * s, y + 28 * s)
            y += 96 * s
        if st.leaderboard:
            self.put(frame, "LEADERBOARD", 22, b.x + 24 * s, y, rgb=MUTED)
            y += 36 * s
            for row in st.leaderboard[:LEADERBOARD_ROWS]:
                gap = "" if row.rank == 1 else f"+{row.gap_ms / 1000.0:.3f}"
                self.put(frame, str(row.rank), 26, b.x + 40 * s, y, align="right")
                self.put(frame, row.name, 26, b.x + 60 * s, y)
                self.put(frame, lap_clock(row.time_ms), 26, b.x + b.w - 130 * s, y, align="right")
                self.put(frame, gap, 22, b.x + b.w - 24 * s, y + 3 * s, rgb=MUTED, align="right")
                y += 44 * s
