"""Entry point of the pack-loader process (`greentic pack-loader`): wiring only."""

from greentic.config.bundle import load_bundle
from greentic.config.settings import Settings
from greentic.hosting.entry import run_main
from greentic.hosting.lifecycle import Service
from greentic.pack.leader import leader_elected
from greentic.services.pack_loader import PackLoaderService


def build(settings: Settings) -> Service:
    bundle = load_bundle(settings.bundle)
    # in a cluster, replicas elect one publisher with a Lease (GREENTIC_LEADER_ELECTION)
    return leader_elected(settings, lambda: PackLoaderService(settings, bundle),
                          name="pack-loader")


def main() -> None:
    run_main(build)


if __name__ == "__main__":
    main()
