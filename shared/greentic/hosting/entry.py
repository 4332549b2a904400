"""The `main` of every service process: settings → objects → run. No logic here."""

import asyncio
import sys
from collections.abc import Callable

from greentic.config.settings import Settings, load_settings
from greentic.errors import ConfigError, StoreUnavailable
from greentic.hosting.lifecycle import Service, run_service


def run_main(build: Callable[[Settings], Service]) -> None:
    """Read config, build the service, run it until SIGTERM; config errors exit 2 with the cause."""
    try:
        settings = load_settings()
        service = build(settings)
    except ConfigError as exc:
        print(f"greentic: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(run_service(service, settings))
    except (ConfigError, StoreUnavailable) as exc:  # e.g. the session backend cannot be used
        print(f"greentic: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
