"""The `trackside` command."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Annotated, Any, TypeVar

import typer

from race_server.models.cli import model_app
from race_server.settings import Settings, SettingsError, load_settings
from trainer.cli import register as register_trainer_commands
from trainer.reward_cli import reward_app

app = typer.Typer(
    help="Trackside: live racing and broadcast server for autonomous 1/18-scale model cars.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema: apply and inspect migrations.", no_args_is_help=True)
admin_app = typer.Typer(help="Administration: accounts that cannot be created from the web.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print one JSON object.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(bench_app, name="bench")
app.add_typer(reward_app, name="reward")
app.add_typer(model_app, name="model")
register_trainer_commands(app, bench_app)

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        typer.echo(f"configuration error: {error}", err=True)
        raise typer.Exit(2) from None


def _run(make: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    from race_server.db.embedded import EmbeddedPostgresError
    from race_server.db.migrate import MigrationError
    from race_server.logs import configure_logging

    settings = _settings()
    configure_logging("warning", "text")
    try:
        return asyncio.run(make(settings))
    except (MigrationError, EmbeddedPostgresError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


def _graceful_server_class() -> type:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn re-raises the stop signal after a graceful shutdown, so Ctrl-C would end
        `make run` with "Error 130"; once the shutdown completed cleanly that is noise."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return GracefulServer


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind. Default 127.0.0.1 (this machine only); 0.0.0.0 on race day."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000 or TRACKSIDE_PORT).")] = None,
    demo: Annotated[bool, typer.Option(help="Seed demo races driven by the reference driver.")] = False,
) -> None:
    """Run the server until Ctrl-C / SIGTERM (stops the embedded PostgreSQL with it)."""
    import uvicorn

    from race_server.app import create_app
    from race_server.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    application = create_app(settings)
    if demo:
        from race_server.api.race_runtime import RaceOptions

        application.state.race_options = RaceOptions(demo=True)
    config = uvicorn.Config(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        lifespan="on",
        ws="websockets-sansio",
        # Frames are small JSON encoded once per event; deflate would compress each one again per
        # connection (a fifth of the fan-out's CPU at 500 spectators, and a zlib context each).
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
    )
    server = _graceful_server_class()(config)
    server.run()
    if not server.started:
        sys.exit(1)


async def _with_connection(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    import asyncpg

    from race_server.db.lifecycle import database_dsn

    async with database_dsn(settings, allow_attach=True) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations (the server also does this at start-up)."""
    from race_server.db.migrate import migrate

    applied = _run(lambda s: _with_connection(s, migrate))
    typer.echo("\n".join(f"applied {name}" for name in applied) if applied else "database is up to date")


@db_app.command("status")
def db_status() -> None:
    """List migrations and whether each is applied."""
    from race_server.db.migrate import status

    rows = _run(lambda s: _with_connection(s, status))
    for row in rows:
        typer.echo(f"{'applied' if row.applied else 'pending'}  {row.migration.filename}")


@admin_app.command("create-organizer")
def create_organizer(
    email: Annotated[str, typer.Option(help="The organizer's login email.")],
    password: Annotated[str | None, typer.Option(help="Password (10+ characters); prompted for when omitted.")] = None,
) -> None:
    """Create an organizer account (the first account of a new server)."""
    import asyncpg

    from race_server import auth
    from race_server.db import users
    from race_server.db.migrate import migrate

    secret = password if password is not None else getpass.getpass("password: ")
    try:
        auth.validate_password(secret)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None

    async def work(conn: asyncpg.Connection) -> int:
        await migrate(conn)
        password_hash = await auth.hash_password(secret)
        try:
            user = await users.create(conn, role="organizer", email=email, password_hash=password_hash, alias=None)
        except users.DuplicateUser as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
        return user.id

    user_id = _run(lambda s: _with_connection(s, work))
    typer.echo(f"organizer {email} created (id {user_id})")


@bench_app.command("sim")
def bench_sim(
    seconds: Annotated[float, typer.Option(help="Seconds per measurement.")] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the only format).")] = True,
) -> None:
    """Simulator speed: env steps/s (camera, lidar+stereo), physics steps/s, camera fps, RSS."""
    from race_server.sim.bench import run_sim_benchmark

    typer.echo(json.dumps(run_sim_benchmark(seconds)))


@bench_app.command("race")
def bench_race(
    ws_clients: Annotated[int, typer.Option("--ws-clients", help="Spectator websockets on the race.")] = 500,
    seconds: Annotated[float, typer.Option(help="Seconds measured (after the run has warmed up).")] = 60.0,
    training: Annotated[bool, typer.Option("--training/--no-training", help="Run a training job alongside.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the only format).")] = True,
) -> None:
    """A LIVE race on a real server subprocess: lap fan-out, speed control, tick jitter, server CPU."""
    from race_server.bench_race import run_race_benchmark_full

    typer.echo(json.dumps(run_race_benchmark_full(ws_clients, seconds, training)))


_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command(context_settings=_PASS_THROUGH, add_help_option=False)
def car(ctx: typer.Context) -> None:
    """Run on a car: link it to a server (trackside car --help)."""
    from car_client.cli import main as car_main

    raise typer.Exit(car_main(ctx.args))


@app.command(context_settings=_PASS_THROUGH, add_help_option=False)
def timer(ctx: typer.Context) -> None:
    """Automatic lap timer: GPIO line sensors → laps (trackside timer --help)."""
    from car_client.timer import main as timer_main

    raise typer.Exit(timer_main(ctx.args))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
