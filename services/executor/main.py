"""Entry point of the executor process (`greentic executor`): wiring only."""

from greentic.hosting.entry import run_main
from greentic.services.executor import ExecutorService


def main() -> None:
    run_main(lambda settings: ExecutorService(settings))


if __name__ == "__main__":
    main()
