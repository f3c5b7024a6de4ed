"""A spawned child process spoken to over a pipe from the event loop. A LIVE race's simulator
(`live/host.py`) and a race's video encoder (`stream/race_stream.py`) are both one.

The child gets its end of the pipe first and the server's pid last, to bind its life to the server
(`race_server.lifeline`). Its messages are read with ``loop.add_reader`` in bounded batches, so the
event loop never blocks on the pipe and a chatty child cannot starve it. ``stop`` escalates: after
the owner's polite request, the child gets SIGTERM, then SIGKILL, each with ``grace_s`` to exit. The
pipe is released whatever happened, and ``on_gone`` reports a child that went by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any


class PipedChild:
    def __init__(
        self,
        name: str,
        target: Callable[..., None],
        args: tuple[Any, ...],
        *,
        on_message: Callable[[Any], None],
        on_gone: Callable[[], None],
        read_batch: int = 64,
    ) -> None:
        self.name = name
        self.target = target
        self.args = args
        self.on_message = on_message
        self.on_gone = on_gone
        self.read_batch = read_batch
        self.process: BaseProcess | None = None
        self.conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def spawn(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(target=self.target, args=(child, *self.args, os.getpid()), name=self.name, daemon=True)
        process.start()
        child.close()
        self.process, self.conn = process, parent
        asyncio.get_running_loop().add_reader(parent.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            # the reader fires again while data is pending, so a batch per callback loses nothing
            for _ in range(self.read_batch):
                if not conn.poll():
                    break
                self.on_message(conn.recv())
        except (EOFError, OSError):
            self.on_gone()

    async def stop(self, *, first_wait_s: float, grace_s: float) -> None:
        """Wait ``first_wait_s`` for the child to leave as asked, then terminate, then kill it."""
        process = self.process
        if process is None:
            return
        if not await exited(process, first_wait_s):
            process.terminate()
            if not await exited(process, grace_s):
                process.kill()
                await exited(process, grace_s)
        process.join()
        self.detach()
        process.close()
        self.process = None

    def detach(self) -> None:
        """Stop watching the pipe and close it; idempotent."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(conn.fileno())
        with contextlib.suppress(ValueError, OSError):
            loop.remove_writer(conn.fileno())
        conn.close()


async def exited(process: BaseProcess, within_s: float) -> bool:
    """Whether the process has exited, waiting up to ``within_s`` on its sentinel (no polling)."""
    if not process.is_alive():
        return True
    if within_s <= 0.0:
        return False
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def on_exit() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(process.sentinel, on_exit)
    try:
        await asyncio.wait_for(gone, within_s)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(process.sentinel)
    return not process.is_alive()
