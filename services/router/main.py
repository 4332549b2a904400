"""Entry point of the router process (`greentic router`): wiring only."""

from greentic.config.bundle import load_bundle
from greentic.routing.router import RouterService
from greentic.service.entry import run_main


def main() -> None:
    run_main(lambda settings: RouterService(settings, load_bundle(settings.bundle)))


if __name__ == "__main__":
    main()
