"""A provider channel as configured in the bundle: its identity and its secrets."""

import os
from dataclasses import dataclass
from typing import Any

from greentic.config.bundle import Bundle, Channel
from greentic.errors import ConfigError
from greentic.types.tenant import TenantCtx


@dataclass(frozen=True)
class ChannelInstance:
    """One channel of one tenant's team, with its provider config."""

    ctx: TenantCtx
    channel: str
    provider: str
    config: dict[str, Any]

    def secret(self, name: str) -> str:
        """`config[name]`, or the environment variable named by `config[name + "_env"]`.
        Secret values are never logged."""
        value = self.config.get(name)
        if not value and self.config.get(f"{name}_env"):
            value = os.environ.get(str(self.config[f"{name}_env"]), "")
        if not value:
            raise ConfigError(f"channel {self.ctx.tenant}/{self.ctx.team}/{self.channel}: "
                              f"config.{name} (or config.{name}_env) is required for "
                              f"provider {self.provider!r}")
        return str(value)

    def setting(self, name: str, default: str) -> str:
        return str(self.config.get(name) or default)


def channel_instances(bundle: Bundle, env: str, provider: str) -> dict[tuple[str, str, str],
                                                                        ChannelInstance]:
    """Every channel of `provider`, by (tenant, team, channel)."""
    found = {}
    for ctx, channel_id, channel in bundle.channels(env):
        if channel.provider == provider:
            found[(ctx.tenant, ctx.team, channel_id)] = _instance(ctx, channel_id, channel)
    return found


def _instance(ctx: TenantCtx, channel_id: str, channel: Channel) -> ChannelInstance:
    return ChannelInstance(ctx, channel_id, channel.provider, dict(channel.config))
