"""hostile: a guest that misbehaves on request, to prove the host's limits and isolation.

`loop` spins forever, `bomb` allocates without end, `trap` crashes, `remember:X` keeps X in
guest memory and `recall` returns what this instance remembers (for the leak test).
"""

from wit_world import WitWorld
from wit_world.imports.types import Message, Outcome

REMEMBERED: list[str] = []


class WitWorld(WitWorld):
    def execute(self, input: Message) -> Outcome:
        command = input.content
        if command == "loop":
            n = 0
            while True:
                n += 1
        if command == "bomb":
            hoard = []
            while True:
                hoard.append(bytearray(4 * 1024 * 1024))
        if command == "trap":
            raise RuntimeError("the guest gave up")
        if command.startswith("remember:"):
            REMEMBERED.append(command.removeprefix("remember:"))
            return Outcome(success=True, data="ok", error=None)
        if command == "recall":
            return Outcome(success=True, data=",".join(REMEMBERED), error=None)
        return Outcome(success=True, data=f"fine: {command}", error=None)
