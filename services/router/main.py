"""Entry point of the router process (`greentic router`): wiring only."""

from greentic.config.bundle import load_bundle
from greentic.hosting.entry import run_main
from greentic.services.router import RouterService


def main() -> None:
    run_main(lambda settings: RouterService(settings, load_bundle(settings.bundle)))


if __name__ == "__main__":
    main()
