"""TenantCtx: who a message belongs to. It travels with every operation."""

import msgspec


class TenantCtx(msgspec.Struct, frozen=True):
    """Tenant triple; always taken from verified configuration, never from a message body."""

    env: str
    tenant: str
    team: str
