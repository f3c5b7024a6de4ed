"""One outcome shape for the `trackside` command: with ``--json`` every run prints exactly one JSON
object on stdout, ``{"ok": bool, "errors": [{"code", "message", "file", "field"}], …}``, usage
errors included; without it, errors are one ``error: …`` line on stderr.

Exit codes: 0 ok; 1 the command ran and failed (an invalid model, a missing file or model, the
database unreachable, an unexpected error); 2 the command line or the configuration is wrong
(missing argument, unknown option, bad option value, a bad ``TRACKSIDE_*`` variable); 130 Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# main() (for usage errors) and each command's own --json flag set the format of the run.
_json_mode = False


def use_json(enabled: bool) -> None:
    global _json_mode
    _json_mode = enabled


def json_mode() -> bool:
    return _json_mode


def problem(code: str, message: str, *, file: str | None = None, field: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "file": file, "field": field}


def emit(ok: bool, errors: Sequence[dict[str, Any]] = (), **fields: Any) -> None:
    """Print the one JSON object of this run."""
    typer.echo(json.dumps({"ok": ok, "errors": list(errors), **fields}))


def fail(
    code: str, message: str, *, exit_code: int = EXIT_FAILURE, file: str | None = None, field: str | None = None
) -> typer.Exit:
    """Report a failure in the run's format; ``raise fail(…)`` ends the command."""
    if _json_mode:
        emit(False, [problem(code, message, file=file, field=field)])
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(exit_code)


# typer vendors its own copy of click, so errors are told apart by class name, not by click's classes.
_USAGE_CODES = (
    ("MissingParameter", "MISSING_PARAMETER"),
    ("NoSuchOption", "NO_SUCH_OPTION"),
    ("BadParameter", "BAD_PARAMETER"),
    ("UsageError", "USAGE_ERROR"),
)


def _kinds(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def _error_problem(error: Exception) -> dict[str, Any]:
    kinds = _kinds(error)
    code = next((code for kind, code in _USAGE_CODES if kind in kinds), "ERROR")
    param = getattr(error, "param", None)
    field = getattr(param, "name", None) or getattr(error, "option_name", None)
    format_message = getattr(error, "format_message", None)
    message = format_message() if callable(format_message) else str(error)
    return problem(code, str(message), field=field)


def wants_json(argv: Sequence[str]) -> bool:
    options = list(argv)[: list(argv).index("--")] if "--" in argv else list(argv)
    return "--json" in options


def run_json(command: Any, argv: list[str], prog_name: str) -> int:
    """Run ``command`` so that whatever happens, stdout gets one JSON object; returns the exit code."""
    use_json(True)
    try:
        result = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except Exception as error:  # the JSON promise covers every outcome, the unexpected too
        kinds = _kinds(error)
        if "Abort" in kinds:
            emit(False, [problem("ABORTED", "aborted (a confirmation was declined or stdin closed)")])
            return EXIT_FAILURE
        if "ClickException" in kinds or "TyperException" in kinds:
            emit(False, [_error_problem(error)])
            return int(getattr(error, "exit_code", EXIT_FAILURE))
        traceback.print_exc(file=sys.stderr)
        emit(False, [problem("INTERNAL_ERROR", f"{type(error).__name__}: {error}")])
        return EXIT_FAILURE
    code = result if isinstance(result, int) else EXIT_OK
    if code == EXIT_INTERRUPTED:
        emit(False, [problem("INTERRUPTED", "interrupted")])
    return code
