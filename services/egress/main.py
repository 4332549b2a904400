"""Entry point of the egress process (`greentic egress`): wiring only."""

from greentic.config.bundle import load_bundle
from greentic.hosting.entry import run_main
from greentic.services.egress import EgressService


def main() -> None:
    run_main(lambda settings: EgressService(settings, load_bundle(settings.bundle)))


if __name__ == "__main__":
    main()
