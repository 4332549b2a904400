"""Settings from `GREENTIC_*` environment variables, decoded into one typed Struct."""

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

from greentic.bus.subjects import validate_token
from greentic.bus.topology import DEFAULT_PARTITIONS
from greentic.errors import ConfigError, SubjectError

PREFIX = "GREENTIC_"
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
SessionBackend = Literal["jetstream", "redis", "memory"]


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Every knob of every service; each field is read from GREENTIC_<FIELD>."""

    nats_url: str = "nats://127.0.0.1:4222"
    """NATS server(s), comma-separated."""
    nats_replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    """Replicas of every stream and bucket the services create (3 on a 3-node NATS cluster:
    the platform then survives the loss of one node)."""
    env: str = "dev"
    """Environment token in every subject (dev, staging, prod…)."""
    bundle: str = "greentic.yaml"
    """Path of the bundle file: tenants, teams, channels, packs."""
    health_host: str = "0.0.0.0"
    """Address of the /healthz and /readyz server."""
    health_port: Port = 8081
    """Port of the /healthz and /readyz server (0 picks a free one)."""
    http_host: str = "0.0.0.0"
    """Ingress: address of the public HTTP server (webhooks, WebChat)."""
    http_port: Port = 8080
    """Ingress: port of the public HTTP server."""
    public_url: str = ""
    """Ingress: the URL users reach it at (default http://127.0.0.1:<http_port>)."""
    max_body_bytes: Annotated[int, msgspec.Meta(gt=0)] = 256 * 1024
    """Ingress (public and admin API): request bodies above this are refused with 413."""
    http_body_timeout_s: Positive = 30.0
    """Every HTTP server (public, admin, health): a request body that has not fully arrived
    after this long is refused with 408 and its connection closed."""
    admin_host: str = "127.0.0.1"
    """Ingress: address of the admin API (sessions, pack deploy); keep it off public networks."""
    admin_port: Port = 8082
    """Ingress: port of the admin API, never the public port (0 picks a free one)."""
    admin_tokens: str = ""
    """Ingress: bearer tokens of the admin API, comma-separated; each `TOKEN` (all tenants) or
    `TENANT:TOKEN` (that tenant only); at least 16 characters, no `:` or `,`. Empty: the admin
    API is not started."""
    admin_deploy_timeout_s: Positive = 60.0
    """Ingress: how long `POST /admin/packs/deploy` waits for the pack-loader's answer (504)."""
    ack_wait_s: Positive = 30.0
    """Seconds a consumer waits for an ack before redelivering (a crashed worker's messages)."""
    max_deliver: Annotated[int, msgspec.Meta(ge=2)] = 10
    """Deliveries of one message before it is dead-lettered."""
    fetch_batch: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 64
    """Messages fetched per pull request."""
    drain_timeout_s: Positive = 20.0
    """On SIGTERM, how long in-flight work may take before the service exits anyway."""
    flow_poll_s: Positive = 1.0
    """Pack-loader: how often dev pack sources are checked for changed flow files."""
    cors_origins: str = "*"
    """Ingress: origins (comma-separated, or `*`) whose pages may call the Direct Line API,
    i.e. the sites that embed Web Chat."""
    webchat_token_key: str = ""
    """Ingress: key signing Direct Line tokens; set the same value on every ingress replica."""
    component_cache_dir: str = ".greentic/cache/components"
    """Executor: compiled components (`Component.serialize`), keyed by sha256 + wasmtime version."""
    wasm_fuel: bool = True
    """Executor: meter fuel, so a component's `limits.fuel` applies. Off, only the time limit
    (`timeout_ms`, the epoch deadline) stops a call, and CPU-bound guest code runs up to ~2x
    faster (docs/performance.md); calls that spend their time converting values don't change."""
    wasm_threads: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    """Executor: worker threads running component calls (wasm runs without the GIL)."""
    executor_max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 1024
    """Executor: routed messages one replica holds at once per partition it owns (running or
    waiting behind an earlier message of their conversation)."""
    partitions: Annotated[int, msgspec.Meta(ge=1, le=1024)] = DEFAULT_PARTITIONS
    """Router and executor: the routed hop's partitions; a stable hash of the conversation picks
    one, and one executor replica owns each. Fixed per deployment (GREENTIC_ROUTED keeps the
    count it was made with; a service with another refuses to start); more executor replicas
    than partitions get no work."""
    partition_lease_s: Annotated[float, msgspec.Meta(ge=1)] = 6.0
    """Executor: how long a replica's hold on a partition lasts unrenewed (renewed every third of
    it); a dead replica's partitions are taken over this long after its last renewal."""
    session_cache: Annotated[int, msgspec.Meta(ge=0)] = 10_000
    """Executor: sessions a replica keeps in memory after writing them, for the next turn of
    the conversation (the store stays the truth: every write is a compare-and-swap); 0: none."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level of the JSON logs on stderr."""
    log_format: Literal["json", "console"] = "json"
    """`console` for humans, `json` for machines."""
    session_backend: SessionBackend = "jetstream"
    """Executor: where sessions and state live: `jetstream` (KV buckets), `redis`, `memory`."""
    redis_url: str = ""
    """Executor: `redis://host:6379/0` (or `rediss://`, `unix://`); required for `redis`."""
    redis_prefix: str = "greentic"
    """Executor: prefix of every Redis key (lets several deployments share one Redis)."""
    session_ttl_s: Positive = 24 * 3600.0
    """Executor: a session nobody wrote for this long expires (bucket max_age / Redis PX)."""
    executor_replicas: Annotated[int, msgspec.Meta(ge=1)] = 1
    """How many executor processes may run at once (the autoscaler's maximum); the `memory`
    session backend is refused above 1, since each process would keep its own sessions."""
    nats_creds: str = ""
    """Path of a NATS credentials file (user JWT + nkey seed, e.g. a mounted Secret); empty:
    connect without (user:password can also go in the URL)."""
    leader_election: Literal["auto", "lease", "off"] = "auto"
    """Pack-loader: `lease` makes replicas elect one publisher with a Kubernetes Lease; `auto`
    does so when running in a cluster (KUBERNETES_SERVICE_HOST set); `off` always publishes."""
    lease_name: str = "greentic-pack-loader"
    """Pack-loader: name of the coordination.k8s.io/v1 Lease the replicas compete for."""
    lease_namespace: str = ""
    """Pack-loader: namespace of the Lease (default: the pod's own namespace)."""
    lease_duration_s: Annotated[float, msgspec.Meta(ge=2)] = 15.0
    """Pack-loader: a leader that stops renewing is replaced after this long."""
    secrets_backend: Literal["env", "files", "kubernetes", "vault"] = "env"
    """Where component secrets come from: GREENTIC_SECRET__{TENANT}__{NAME} variables, files
    {GREENTIC_SECRETS_DIR}/{tenant}/{name}, Secret `greentic-{tenant}` in
    GREENTIC_SECRETS_NAMESPACE, or Vault KV v2 at {mount}/data/greentic/{tenant}."""
    secrets_dir: str = ""
    """Directory of per-tenant secret files (e.g. mounted Kubernetes Secrets)."""
    secrets_namespace: str = ""
    """Namespace of the per-tenant Kubernetes Secrets (default: the lease namespace)."""
    vault_addr: str = ""
    """Vault address, e.g. https://vault.example:8200."""
    vault_token: str = ""
    """Vault token (prefer GREENTIC_VAULT_TOKEN_FILE)."""
    vault_token_file: str = ""
    """File holding the Vault token (e.g. written by the Vault agent)."""
    vault_mount: str = "secret"
    """Mount of the KV v2 engine."""
    trusted_keys: str = ""
    """Pack-loader: public keys (`ed25519:<base64>`, comma-separated) whose signatures make a
    `.gtpack` loadable."""
    pack_policy: Literal["strict", "dev"] = "strict"
    """Pack-loader: `strict` loads only `.gtpack`s signed by a trusted key; `dev` also those
    signed by any other key whose signature verifies (logged as a warning; never in production).
    Unsigned `.gtpack`s are refused under both."""
    pack_max_bytes: Annotated[int, msgspec.Meta(gt=0)] = 256 * 1024 * 1024
    """Pack-loader (and `pack pull`): a `.gtpack` larger than this is refused unread (a pull
    stops before downloading it)."""
    pack_cache_dir: str = ".greentic/cache/packs"
    """Pack-loader (and `pack pull`): `.gtpack`s pulled from OCI registries, by layer digest."""
    pack_refresh_s: Positive = 60.0
    """Pack-loader: how often an `oci://` pack's tag is asked for again (a pack pinned by
    digest, in its locator or with `digest:`, is pulled once)."""
    oci_insecure: str = ""
    """Registries (`host[:port]`, comma-separated) reached over plain http; loopback
    registries (127.0.0.1, ::1, localhost) always are, all others over https."""
    oci_username: str = ""
    """User name for OCI registries that ask for one (basic, or to obtain a bearer token)."""
    oci_password: str = ""
    """Password or access token going with GREENTIC_OCI_USERNAME."""
    pack_versions_kept: Annotated[int, msgspec.Meta(ge=1)] = 5
    """Pack-loader: revisions of each tenant's pack kept in `greentic-pack-versions` (the
    current one included); a conversation paused in an older, purged one starts over."""
    pinned_versions_cached: Annotated[int, msgspec.Meta(ge=1)] = 16
    """Executor: older pack revisions kept loaded (least recently used dropped first) for
    conversations paused in them."""

    def __post_init__(self) -> None:
        try:
            validate_token("env", self.env)
        except SubjectError as exc:
            raise ConfigError(f"{PREFIX}ENV: {exc}") from None
        if self.session_backend == "redis" and not self.redis_url.startswith(
                ("redis://", "rediss://", "unix://")):
            raise ConfigError(f"{PREFIX}REDIS_URL={self.redis_url!r}: {PREFIX}SESSION_BACKEND="
                              "redis needs a redis://, rediss:// or unix:// URL")
        if self.session_backend == "memory" and self.executor_replicas > 1:
            raise ConfigError(f"{PREFIX}SESSION_BACKEND=memory: refused with "
                              f"{PREFIX}EXECUTOR_REPLICAS={self.executor_replicas}; each executor "
                              "would keep its own sessions. Use jetstream or redis.")
        try:
            validate_token("redis_prefix", self.redis_prefix)
        except SubjectError as exc:
            raise ConfigError(f"{PREFIX}REDIS_PREFIX: {exc}") from None
        for key in self.trusted_keys.replace(",", " ").split():
            try:
                valid = key.startswith("ed25519:") and len(
                    base64.b64decode(key.removeprefix("ed25519:"), validate=True)) == 32
            except binascii.Error:
                valid = False
            if not valid:
                raise ConfigError(f"{PREFIX}TRUSTED_KEYS: {key!r} is not a public key "
                                  "'ed25519:<base64 of 32 bytes>' (greentic pack keygen)")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment; a bad value fails naming its variable."""
    environ = os.environ if environ is None else environ
    fields = set(Settings.__struct_fields__)
    raw = {name: environ[PREFIX + name.upper()] for name in fields
           if PREFIX + name.upper() in environ}
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec says "... - at `$.field`"; name the variable instead
        message = str(exc)
        for name in fields:
            if f"$.{name}`" in message:
                message = f"{PREFIX}{name.upper()}={raw.get(name)!r}: {message.split(' - at ')[0]}"
                break
        raise ConfigError(message) from None
