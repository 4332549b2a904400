"""One root error; subclasses carry the fields a caller can act on."""


class GreenticError(Exception):
    """Root of every error this library raises on purpose."""


class ConfigError(GreenticError):
    """A setting or bundle entry is wrong; the message names the variable or field."""


class SubjectError(GreenticError):
    """A value cannot be used as a NATS subject token."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field} {value!r} is not a valid subject token: {reason}")
        self.field = field
        self.value = value


class EnvelopeError(GreenticError):
    """Bytes on the wire are not a readable envelope."""


class FlowError(GreenticError):
    """A flow cannot be loaded or run; the message names the file and node."""

    def __init__(self, message: str, *, file: str = "", node: str = "") -> None:
        where = ":".join(p for p in (file, f"node '{node}'" if node else "") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.node = node


class RoutingError(GreenticError):
    """No flow is bound to a message's tenant/team/channel."""


class DeadLetter(GreenticError):
    """This message can never succeed (garbage, unknown tenant); dead-letter it now."""


class RetryLater(GreenticError):
    """This message may succeed later (a flow not loaded yet, a provider down); `delay_s`
    (e.g. from a provider's Retry-After) overrides the worker's back-off."""

    def __init__(self, message: str, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class RevisionConflict(GreenticError):
    """A compare-and-swap write lost: the stored revision is not the one the caller read.

    Re-read the value and redo the change; never overwrite.
    """

    def __init__(self, key: str, expected: int) -> None:
        super().__init__(f"{key}: revision {expected} is no longer current (written meanwhile); "
                         "re-read and retry")
        self.key = key
        self.expected = expected


class StoreUnavailable(GreenticError):
    """A session/state backend cannot be reached or used; the message names the setting."""


class ComponentError(GreenticError):
    """A component call failed; `code` is what flows route and report on.

    Codes: `timeout`, `fuel`, `memory`, `trap`, `guest` (the guest returned an error),
    `not-found`, `bad-input`, `unavailable`.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ComponentLoadError(GreenticError):
    """A component cannot be loaded: bad bytes, unknown world, or imports it may not have."""

    def __init__(self, component: str, message: str, *, missing: tuple[str, ...] = (),
                 undeclared: tuple[str, ...] = ()) -> None:
        super().__init__(f"component {component!r}: {message}")
        self.component = component
        self.missing = missing
        """Imports this host does not offer."""
        self.undeclared = undeclared
        """Host interfaces the component imports but its manifest does not declare."""


class PackError(GreenticError):
    """A pack archive cannot be built, read or trusted; `entry` names the offending archive
    entry or manifest field (empty when the archive as a whole is at fault)."""

    def __init__(self, message: str, *, entry: str = "") -> None:
        super().__init__(f"{entry}: {message}" if entry else message)
        self.entry = entry
        self.reason = message


class PackSignatureError(PackError):
    """A pack is unsigned, its signature does not verify, or its key is not trusted."""
