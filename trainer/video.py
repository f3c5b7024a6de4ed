"""MP4 of an evaluation run (shell: the only trainer module that imports the video library, PyAV).

`EvaluationVideo` is an ``on_step`` callback for `trainer.evaluation.evaluate`: after every
simulator step it composes one frame (`trainer.video_frame`) and encodes it straight away, so a
long run never holds more than one frame in memory. One frame per step at the simulator's 15 Hz
makes the video play in real time; frames = ``env.step`` calls over all trials (the reset pose
before a trial's first step is not shown). H.264 (libx264, yuv420p), ``FRAME_WIDTH`` x
``FRAME_HEIGHT``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray
from torch import nn

from race_server.sim.env import DeepRacerEnv
from trainer.config import TrainWorld
from trainer.evaluation import EvaluationResult, EvaluationSettings, evaluate
from trainer.video_frame import FRAME_HEIGHT, FRAME_WIDTH, FrameComposer

VIDEO_FPS = 15
CODEC = "libx264"
# veryfast keeps encoding a small share of an evaluation step on a 2-core CPU; crf 23 is x264's default quality.
ENCODER_OPTIONS = {"preset": "veryfast", "crf": "23"}


class Mp4Writer:
    """Streams RGB frames of one size into an H.264 MP4."""

    def __init__(self, path: Path, width: int, height: int, fps: int = VIDEO_FPS) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"video size {width}x{height}: width and height must be even for yuv420p")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.frames = 0
        self._container = av.open(str(path), mode="w")
        stream = self._container.add_stream(CODEC, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = dict(ENCODER_OPTIONS)
        self._stream = stream
        self._closed = False

    def write(self, rgb: NDArray[np.uint8]) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()


class EvaluationVideo:
    """``on_step`` callback recording an evaluation; use as a context manager so the file is finalised."""

    def __init__(self, path: Path, fps: int = VIDEO_FPS) -> None:
        self._writer = Mp4Writer(path, FRAME_WIDTH, FRAME_HEIGHT, fps)
        self._composer = FrameComposer()

    @property
    def frames(self) -> int:
        return self._writer.frames

    def __call__(self, env: DeepRacerEnv) -> None:
        sim = env.sim
        world = sim.world
        if world is None:
            return
        boxes = sim.track_objects.boxes if sim.track_objects is not None else []
        self._writer.write(self._composer.compose(sim.track, world.x, world.y, world.yaw, boxes))

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> EvaluationVideo:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def evaluate_with_video(
    policy: nn.Module,
    metadata_raw: dict[str, Any],
    world: TrainWorld,
    path: Path,
    settings: EvaluationSettings | None = None,
    reward_fn: Callable[[dict[str, Any]], Any] | None = None,
) -> tuple[EvaluationResult, int]:
    """`evaluate` while recording the run to ``path``; returns the result and the number of frames."""
    with EvaluationVideo(path) as video:
        result = evaluate(policy, metadata_raw, world, settings, reward_fn, on_step=video)
    return result, video.frames
