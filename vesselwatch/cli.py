"""The ``vesselwatch`` command line.

Each family of commands lives in its own module under :mod:`vesselwatch.commands` and adds itself
to the application through a ``register(app)`` function, so this file only wires them together.
"""

from __future__ import annotations

import logging

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


def main() -> None:
    """Entry point of the ``vesselwatch`` console script."""
    configure_logging(Settings())
    app()


if __name__ == "__main__":
    main()
