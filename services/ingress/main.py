"""Entry point of the ingress process (`greentic ingress`): wiring only."""

from greentic.config.bundle import load_bundle
from greentic.hosting.entry import run_main
from greentic.services.ingress import IngressService


def main() -> None:
    run_main(lambda settings: IngressService(settings, load_bundle(settings.bundle)))


if __name__ == "__main__":
    main()
