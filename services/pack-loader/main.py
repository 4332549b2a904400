"""Entry point of the pack-loader process (`greentic pack-loader`): wiring only."""

from greentic.config.bundle import load_bundle
from greentic.pack.loader_service import PackLoaderService
from greentic.service.entry import run_main


def main() -> None:
    run_main(lambda settings: PackLoaderService(settings, load_bundle(settings.bundle)))


if __name__ == "__main__":
    main()
