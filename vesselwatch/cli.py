"""The ``vesselwatch`` command line.

Each family of commands lives in its own module under :mod:`vesselwatch.commands` and adds itself
to the application through a ``register(app)`` function, so this file only wires them together.
"""

from __future__ import annotations

import logging
import os

import typer

from vesselwatch.commands import demo, export, geo_queries, heading, monitor, process, serve, synth
from vesselwatch.settings import Settings

app = typer.Typer(
    name="vesselwatch",
    help="Watch the sea from Sentinel-2: detect vessels, infer headings, alert, export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (demo, synth, process, monitor, export, serve, geo_queries, heading):
    module.register(app)


def configure_logging(settings: Settings) -> None:
    """Send log records to stderr at the configured level."""
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def configure_prefect(settings: Settings) -> None:
    """Defaults for the local Prefect the commands start, unless the environment sets them.

    Prefect's state lives under ``var/prefect`` (not the user's ``~/.prefect``), nothing is sent
    home, and the temporary server gets 90 s to start (its 20 s default is too tight on a busy
    machine). Must run before Prefect is first imported.
    """
    home = settings.var_dir / "prefect"
    if "PREFECT_HOME" not in os.environ:
        home.mkdir(parents=True, exist_ok=True)  # Prefect creates only the last level; var/ may not exist yet
    defaults = {
        "PREFECT_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)


def main() -> None:
    """Entry point of the ``vesselwatch`` console script."""
    settings = Settings()
    configure_logging(settings)
    configure_prefect(settings)
    app()


if __name__ == "__main__":
    main()
