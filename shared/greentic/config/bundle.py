"""The bundle: which tenants exist, their teams and channels, and the packs bound to them."""

from pathlib import Path
from typing import Any

import msgspec
import yaml

from greentic.bus.subjects import validate_token
from greentic.errors import ConfigError, PackError, SubjectError
from greentic.types.envelope import FlowRef
from greentic.types.oci import is_digest, parse_reference
from greentic.types.tenant import TenantCtx


class PackSource(msgspec.Struct, forbid_unknown_fields=True):
    """Where a pack comes from: exactly one of `path` and `oci`."""

    path: str | None = None
    """A pack source directory (dev mode, unsigned) or a `.gtpack` file (verified against
    GREENTIC_TRUSTED_KEYS before anything is published), relative to the bundle."""
    oci: str | None = None
    """`oci://host[:port]/repo:tag` or `…@sha256:<hex>`: a `.gtpack` pulled from a registry,
    then verified like a file."""
    digest: str | None = None
    """With `oci`: the `sha256:<hex>` the pack's layer must have (`greentic pack push` prints
    it); any other content is refused."""

    @property
    def locator(self) -> str:
        """What `resolve_pack` takes: the path or the `oci://` reference."""
        return self.oci or self.path or ""


class Channel(msgspec.Struct, forbid_unknown_fields=True):
    """One provider instance (e.g. a WebChat widget, a Slack app) and the flow it talks to."""

    provider: str
    """A built-in channel (`webchat`, `telegram`, `slack`, `teams`, `whatsapp`) or a provider
    component of a pack: `<pack>/<component id>`."""
    flow: str
    """`<pack>/<flow id>` handling this channel's messages."""

    def provider_component(self) -> tuple[str, str] | None:
        """(pack, component) when the provider is a pack's component, else None."""
        pack, slash, component = self.provider.partition("/")
        return (pack, component) if slash else None
    config: dict[str, Any] = {}
    """Provider settings; for webchat: `secret`, `anonymous`."""


class Team(msgspec.Struct, forbid_unknown_fields=True):
    channels: dict[str, Channel] = {}


class Tenant(msgspec.Struct, forbid_unknown_fields=True):
    packs: list[str] = []
    """Packs this tenant may use; nothing else is visible to it."""
    teams: dict[str, Team] = {}


class Bundle(msgspec.Struct, forbid_unknown_fields=True):
    """A deployment's tenants and packs (`greentic.demo.yaml`)."""

    packs: dict[str, PackSource] = {}
    tenants: dict[str, Tenant] = {}
    base_dir: str = ""
    """Directory relative paths are resolved against (set by the loader)."""

    def channel(self, ctx: TenantCtx, channel: str) -> Channel | None:
        """The channel `channel` of tenant/team `ctx`, or None when the bundle has none."""
        tenant = self.tenants.get(ctx.tenant)
        team = tenant.teams.get(ctx.team) if tenant else None
        return team.channels.get(channel) if team else None

    def flow_for(self, ctx: TenantCtx, channel: str) -> FlowRef | None:
        """The flow bound to a tenant's channel."""
        found = self.channel(ctx, channel)
        if found is None:
            return None
        pack, _, flow = found.flow.partition("/")
        return FlowRef(pack, flow)

    def channels(self, env: str) -> list[tuple[TenantCtx, str, Channel]]:
        """Every channel of every tenant and team."""
        return [(TenantCtx(env, tenant_id, team_id), channel_id, channel)
                for tenant_id, tenant in self.tenants.items()
                for team_id, team in tenant.teams.items()
                for channel_id, channel in team.channels.items()]

    def pack_dir(self, pack_id: str) -> Path:
        """The source directory of a dev-mode pack, or the `.gtpack` file of a signed one
        (`oci` packs have none: see `greentic.pack.resolve.resolve_pack`)."""
        path = self.packs[pack_id].path
        if path is None:
            raise ConfigError(f"pack {pack_id!r} comes from {self.packs[pack_id].oci}, not a path")
        return (Path(self.base_dir) / path).resolve()


def _check(bundle: Bundle, file: str) -> None:
    folded: dict[str, str] = {}
    for tenant_id in bundle.tenants:
        other = folded.setdefault(tenant_id.upper().replace("-", "_"), tenant_id)
        if other != tenant_id:  # GREENTIC_SECRET__{TENANT}__… and the like would be shared
            raise ConfigError(f"{file}: tenants {other!r} and {tenant_id!r} differ only in "
                              "case or '-'/'_'; tenant ids must differ in more than that")
    for tenant_id, tenant in bundle.tenants.items():
        for name, value in (("tenant", tenant_id), *(("team", t) for t in tenant.teams)):
            _token(file, name, value)
        for pack in tenant.packs:
            if pack not in bundle.packs:
                raise ConfigError(f"{file}: tenants.{tenant_id}.packs names unknown pack {pack!r}")
        for team_id, team in tenant.teams.items():
            for channel_id, channel in team.channels.items():
                where = f"tenants.{tenant_id}.teams.{team_id}.channels.{channel_id}"
                _token(file, "channel", channel_id)
                pack, slash, flow = channel.flow.partition("/")
                if not slash or not pack or not flow:
                    raise ConfigError(f"{file}: {where}.flow must be '<pack>/<flow>', "
                                      f"not {channel.flow!r}")
                if pack not in tenant.packs:
                    raise ConfigError(f"{file}: {where}.flow uses pack {pack!r}, which tenant "
                                      f"{tenant_id!r} is not given (tenants.{tenant_id}.packs)")
                component = channel.provider_component()
                if component is not None and (not all(component) or
                                              component[0] not in tenant.packs):
                    raise ConfigError(f"{file}: {where}.provider {channel.provider!r} must be "
                                      f"'<pack>/<component>' of a pack tenant {tenant_id!r} is "
                                      f"given (tenants.{tenant_id}.packs)")
    for pack_id, source in bundle.packs.items():
        _token(file, "pack", pack_id)
        where = f"{file}: packs.{pack_id}"
        if (source.path is None) == (source.oci is None):
            raise ConfigError(f"{where}: give exactly one of `path` (a directory or .gtpack) "
                              "and `oci` (oci://host/repo:tag)")
        if source.oci is not None:
            try:
                parse_reference(source.oci)
            except PackError as exc:
                raise ConfigError(f"{where}.oci: {exc}") from None
        if source.digest is not None:
            if source.oci is None:
                raise ConfigError(f"{where}.digest: a digest pins an `oci` pack; a `path` "
                                  "pack has none")
            if not is_digest(source.digest):
                raise ConfigError(f"{where}.digest: {source.digest!r} is not 'sha256:<64 "
                                  "lower-case hex>' (the layer digest `greentic pack push` "
                                  "prints)")


def _token(file: str, field: str, value: str) -> None:
    try:
        validate_token(field, value)
    except SubjectError as exc:
        raise ConfigError(f"{file}: {exc}") from None


def load_bundle(path: str | Path) -> Bundle:
    """Read and check a bundle file; errors name the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read bundle {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        bundle = msgspec.convert(data or {}, Bundle)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    bundle.base_dir = str(path.resolve().parent)
    _check(bundle, str(path))
    return bundle
