"""Entry point of the executor process (`greentic executor`): wiring only."""

from greentic.runner.executor import ExecutorService
from greentic.service.entry import run_main


def main() -> None:
    run_main(lambda settings: ExecutorService(settings))


if __name__ == "__main__":
    main()
