"""``hpcbridge serve``: the server (``hpcbridge.api``) under uvicorn.

The CLI and the API are sibling layers, so the server is started by its import string
(``hpcbridge.api:app_from_environment``, an ASGI factory) and receives the options below
as ``HPCBRIDGE_*`` variables, as it would under any other ASGI runner.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from hpcbridge.slo import load_slo_file

APP_FACTORY = "hpcbridge.api:app_from_environment"
ENV_ALERTMANAGER_URL = "HPCBRIDGE_ALERTMANAGER_URL"
ENV_SLO_FILE = "HPCBRIDGE_SLO_FILE"
ENV_RECONCILE = "HPCBRIDGE_SERVE_RECONCILE"
ENV_REPEAT_INTERVAL = "HPCBRIDGE_ALERT_REPEAT_INTERVAL_S"


def serve_environment(
    *,
    reconcile: bool,
    alertmanager_url: str | None,
    slo_file: Path | None,
    repeat_interval_s: float,
) -> dict[str, str]:
    """The variables ``app_from_environment`` reads its options from."""
    env = {
        ENV_RECONCILE: "1" if reconcile else "0",
        ENV_REPEAT_INTERVAL: f"{repeat_interval_s:g}",
    }
    if alertmanager_url:
        env[ENV_ALERTMANAGER_URL] = alertmanager_url
    if slo_file is not None:
        env[ENV_SLO_FILE] = str(slo_file.resolve())
    return env


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8080,
    alertmanager_url: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_ALERTMANAGER_URL,
            help="Run the built-in SLO evaluator and send alerts to this Alertmanager.",
        ),
    ] = None,
    slo_file: Annotated[
        Path | None,
        typer.Option(
            "--slo-file", envvar=ENV_SLO_FILE, help="SLOs to evaluate (default: built-in)."
        ),
    ] = None,
    reconcile: Annotated[
        bool, typer.Option(help="Run the reconciler loop in this process.")
    ] = True,
    repeat_interval: Annotated[
        float, typer.Option(min=1, help="Seconds before a firing alert is sent again.")
    ] = 60.0,
    access_log: Annotated[bool, typer.Option(help="Log every HTTP request.")] = False,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", metavar="PEM", help="Serve HTTPS with this certificate..."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", metavar="PEM", help="...and this private key.")
    ] = None,
) -> None:
    """Serve the REST API (/api/v1), /metrics and /healthz, and run the reconciler (and SLO
    evaluator) in-process. Listens on loopback unless --host says otherwise."""
    import uvicorn  # noqa: PLC0415 (0.1 s to import; only this command needs it)

    _check_tls(tls_cert, tls_key)
    if slo_file is not None:
        load_slo_file(slo_file)  # a bad file stops here with a clear error, exit code 2
    os.environ.update(
        serve_environment(
            reconcile=reconcile,
            alertmanager_url=alertmanager_url,
            slo_file=slo_file,
            repeat_interval_s=repeat_interval,
        )
    )
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        access_log=access_log,
        log_level="info",
        ssl_certfile=None if tls_cert is None else str(tls_cert),
        ssl_keyfile=None if tls_key is None else str(tls_key),
    )


def _check_tls(cert: Path | None, key: Path | None) -> None:
    """Both or neither, and readable files: else one usage error before anything starts."""
    if (cert is None) != (key is None):
        given, missing = ("--tls-cert", "--tls-key") if key is None else ("--tls-key", "--tls-cert")
        raise typer.BadParameter(f"{given} needs {missing} too", param_hint=f"'{missing}'")
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if path is not None and not path.is_file():
            raise typer.BadParameter(
                f"{path} is not a file; give a PEM file", param_hint=f"'{option}'"
            )
