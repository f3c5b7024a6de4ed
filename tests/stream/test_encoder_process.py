"""The encoder process dies with the server, however the server dies."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVER = """
import asyncio, sys
from race_server.stream.encoder import EncoderConfig
from race_server.stream.race_stream import RaceStream

async def main() -> None:
    stream = RaceStream(EncoderConfig(race_id=1, route_id="reinvent_base", width=320, height=180))
    await stream.start()
    print(stream.pid, flush=True)
    await asyncio.Event().wait()

if __name__ == "__main__":
    asyncio.run(main())
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_encoder_dies_when_the_server_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = await asyncio.create_subprocess_exec(sys.executable, str(script), stdout=asyncio.subprocess.PIPE, env=env)
    assert server.stdout is not None
    encoder_pid = int((await asyncio.wait_for(server.stdout.readline(), 60)).decode())
    assert alive(encoder_pid)
    os.kill(server.pid, signal.SIGKILL)  # no clean-up code runs in the server
    await server.wait()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while alive(encoder_pid):
        # another process's state: no event to await, so a bounded poll
        assert loop.time() < deadline, f"encoder {encoder_pid} outlived the server"
        await asyncio.sleep(0.05)
