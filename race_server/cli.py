"""The `trackside` command."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Annotated, Any, TypeVar

import typer

from race_server.bench.cli import bench_app
from race_server.cli_outcome import EXIT_USAGE, fail, run_json, wants_json
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
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(bench_app, name="bench")
app.add_typer(reward_app, name="reward")
app.add_typer(model_app, name="model")
register_trainer_commands(app)

T = TypeVar("T")


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        raise fail("CONFIGURATION_ERROR", f"configuration error: {error}", exit_code=EXIT_USAGE) from None


@contextlib.contextmanager
def database_failures() -> Iterator[None]:
    """The database not starting, not reachable or not migrating, or a file that cannot be read or
    written, is a failure of the run with its own code, not a traceback."""
    import asyncpg

    from race_server.db.embedded import EmbeddedPostgresError
    from race_server.db.migrate import MigrationError

    try:
        yield
    except (MigrationError, EmbeddedPostgresError, ConnectionError, TimeoutError, asyncpg.PostgresError) as error:
        raise fail("DATABASE_ERROR", f"database: {error}") from None
    except OSError as error:
        if error.filename is None:  # asyncpg's "Multiple exceptions" when every address refused
            raise fail("DATABASE_ERROR", f"database: {error}") from None
        raise fail("IO_ERROR", str(error), file=str(error.filename)) from None


def _run(make: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    from race_server.logs import configure_logging

    settings = settings_or_exit()
    configure_logging("warning", "text")
    with database_failures():
        return asyncio.run(make(settings))


def _graceful_server_class(log_format: str, app_state: Any) -> type:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn re-raises the stop signal after a graceful shutdown, so Ctrl-C would end
        `make run` with "Error 130"; once the shutdown completed cleanly that is noise.
        Once started it greets the person at the terminal with the addresses to open."""

        banner: asyncio.Task[None] | None = None

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if not self.started or self.should_exit:
                return
            from race_server.banner import announce

            bound = [s.getsockname() for server in self.servers for s in server.sockets]
            port = int(bound[0][1]) if bound else self.config.port
            self.banner = asyncio.create_task(announce(app_state, self.config.host, port, log_format), name="banner")

        async def shutdown(self, sockets: Any = None) -> None:
            if self.banner is not None:
                self.banner.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.banner
            await super().shutdown(sockets=sockets)

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

    settings = settings_or_exit()
    log_format = configure_logging(settings.log_level, settings.log_format)
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
    server = _graceful_server_class(log_format, application.state)(config)
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
        raise fail("BAD_PASSWORD", str(error), exit_code=EXIT_USAGE, field="password") from None

    async def work(conn: asyncpg.Connection) -> int:
        await migrate(conn)
        password_hash = await auth.hash_password(secret)
        try:
            user = await users.create(conn, role="organizer", email=email, password_hash=password_hash, alias=None)
        except users.DuplicateUser as error:
            raise fail("DUPLICATE_USER", str(error), field="email") from None
        return user.id

    user_id = _run(lambda s: _with_connection(s, work))
    typer.echo(f"organizer {email} created (id {user_id})")


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
    argv = sys.argv[1:]
    if wants_json(argv):
        sys.exit(run_json(typer.main.get_command(app), argv, prog_name="trackside"))
    app(prog_name="trackside")


if __name__ == "__main__":
    main()
