"""echo: the seed world's smallest useful guest; answers with the message uppercased."""

from wit_world import WitWorld
from wit_world.imports.types import Message, Outcome


class WitWorld(WitWorld):
    def execute(self, input: Message) -> Outcome:
        return Outcome(success=True, data=input.content.upper(), error=None)
