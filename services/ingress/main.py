"""Entry point of the ingress process (`greentic ingress`): wiring only."""

from greentic.config.bundle import load_bundle
from greentic.providers.ingress import IngressService
from greentic.service.entry import run_main


def main() -> None:
    run_main(lambda settings: IngressService(settings, load_bundle(settings.bundle)))


if __name__ == "__main__":
    main()
