"""OCI registries: a `.gtpack` pushed and pulled as an OCI artifact (distribution API v2).

An artifact is an image manifest (`application/vnd.oci.image.manifest.v1+json`) with
`artifactType` set, the empty config blob `{}` and exactly one layer: the `.gtpack` bytes, media
type `application/vnd.greentic.gtpack.v1+zip`. Pulled packs are kept in a cache by layer digest,
so a pack is downloaded once; its bytes are hashed while they stream and refused on a mismatch.
"""

import base64
import contextlib
import hashlib
import ipaddress
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Literal

import aiohttp
import msgspec
from yarl import URL

from greentic.config.settings import Settings
from greentic.errors import PackError
from greentic.pack.archive import DEFAULT_LIMITS, PackLimits, read_pack
from greentic.types.oci import DIGEST, Reference, is_digest

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.greentic.gtpack.v1"
GTPACK_MEDIA_TYPE = "application/vnd.greentic.gtpack.v1+zip"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the distribution spec's recommended minimum to accept
CHUNK_BYTES = 1024 * 1024

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes total) while a blob downloads."""


class OciOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach registries: plain-http hosts besides loopback, and credentials."""

    insecure_hosts: frozenset[str] = frozenset()
    """`host[:port]` (or bare host) reached over http instead of https."""
    username: str = ""
    password: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> "OciOptions":
        """From `Settings` (GREENTIC_OCI_INSECURE, GREENTIC_OCI_USERNAME, _PASSWORD)."""
        return cls(insecure_hosts=frozenset(settings.oci_insecure.replace(",", " ").split()),
                   username=settings.oci_username, password=settings.oci_password)

    def scheme(self, host: str) -> Literal["http", "https"]:
        """http for loopback registries and those listed as insecure, https otherwise."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]")
        if host in self.insecure_hosts or name in self.insecure_hosts or name == "localhost":
            return "http"
        try:
            return "http" if ipaddress.ip_address(name).is_loopback else "https"
        except ValueError:
            return "https"


class Descriptor(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    media_type: str
    digest: Annotated[str, msgspec.Meta(pattern=DIGEST.pattern)]
    size: Annotated[int, msgspec.Meta(ge=0)]
    annotations: dict[str, str] | None = None
    data: str | None = None


class ImageManifest(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    schema_version: int
    media_type: str = ""
    artifact_type: str = ""
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str] = {}


class PushResult(msgspec.Struct, frozen=True, kw_only=True):
    reference: Reference
    manifest_digest: str
    layer_digest: str
    size: int


class PullResult(msgspec.Struct, frozen=True, kw_only=True):
    path: Path
    """The `.gtpack` in the cache (content-addressed: never rewritten)."""
    manifest_digest: str | None
    """None when a digest pin was already cached and the registry was not asked."""
    layer_digest: str
    size: int
    downloaded: bool


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def cached_pack(cache_dir: str | Path, digest: str) -> Path:
    """Where the cache keeps the pack whose layer digest is `digest`."""
    return Path(cache_dir) / "sha256" / f"{digest.removeprefix('sha256:')}.gtpack"


def pack_manifest(data: bytes, *, title: str) -> tuple[bytes, str]:
    """The artifact manifest of `.gtpack` bytes (and the layer digest); refuses a non-pack.

    Deterministic: the same pack gives the same manifest digest."""
    manifest = read_pack(data, trust=None).manifest
    layer_digest = sha256_digest(data)
    document = ImageManifest(
        schema_version=2, media_type=MANIFEST_MEDIA_TYPE, artifact_type=ARTIFACT_TYPE,
        config=Descriptor(media_type=EMPTY_MEDIA_TYPE, digest=sha256_digest(EMPTY_BLOB),
                          size=len(EMPTY_BLOB), data=base64.b64encode(EMPTY_BLOB).decode()),
        layers=[Descriptor(media_type=GTPACK_MEDIA_TYPE, digest=layer_digest, size=len(data),
                           annotations={"org.opencontainers.image.title": title})],
        annotations={"io.greentic.pack.id": manifest.pack_id,
                     "io.greentic.pack.version": manifest.version,
                     "org.opencontainers.image.version": manifest.version})
    return msgspec.json.encode(document), layer_digest


class RegistryClient:
    """The distribution API over aiohttp, with bearer-token and basic authentication."""

    def __init__(self, options: OciOptions | None = None, *, timeout_s: float = 60) -> None:
        """`timeout_s` bounds connecting and each wait for bytes, not a whole (large) blob."""
        self.options = options or OciOptions()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=timeout_s, sock_read=timeout_s))
        self._authorization: dict[tuple[str, str], str] = {}  # (host, repository) → header

    async def __aenter__(self) -> "RegistryClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    def _url(self, ref: Reference, path: str) -> str:
        return f"{self.options.scheme(ref.host)}://{ref.host}/v2/{ref.repository}/{path}"

    async def _request(self, ref: Reference, method: str, url: str, *, push: bool = False,
                       headers: Mapping[str, str] | None = None,
                       data: bytes | None = None) -> aiohttp.ClientResponse:
        """One request, authenticating once on a 401 challenge; the caller releases it."""
        response = await self._send(ref, method, url, headers, data)
        if response.status == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.release()
            self._authorization[(ref.host, ref.repository)] = await self._authenticate(
                ref, challenge, push=push)
            response = await self._send(ref, method, url, headers, data)
        return response

    async def _send(self, ref: Reference, method: str, url: str,
                    headers: Mapping[str, str] | None,
                    data: bytes | None) -> aiohttp.ClientResponse:
        sent = dict(headers or {})
        authorization = self._authorization.get((ref.host, ref.repository))
        if authorization:
            sent["Authorization"] = authorization
        try:
            return await self._session.request(method, url, headers=sent, data=data)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PackError(f"cannot reach registry {ref.host} "
                            f"({self.options.scheme(ref.host)}): {exc or type(exc).__name__}",
                            entry=str(ref)) from None

    async def _authenticate(self, ref: Reference, challenge: str, *, push: bool) -> str:
        """The Authorization header answering a WWW-Authenticate challenge."""
        scheme, _, params = challenge.partition(" ")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        basic = {"Authorization": "Basic " + base64.b64encode(
            f"{self.options.username}:{self.options.password}".encode()).decode()
        } if self.options.username else {}
        if scheme.lower() == "basic":
            if not basic:
                raise PackError(f"registry {ref.host} wants a user name and password "
                                "(GREENTIC_OCI_USERNAME, GREENTIC_OCI_PASSWORD)", entry=str(ref))
            return basic["Authorization"]
        if scheme.lower() != "bearer" or "realm" not in fields:
            raise PackError(f"registry {ref.host} asks for authentication this client does "
                            f"not speak: {challenge!r}", entry=str(ref))
        scope = fields.get("scope") or \
            f"repository:{ref.repository}:{'pull,push' if push else 'pull'}"
        query = {"scope": scope, **({"service": fields["service"]} if "service" in fields else {})}
        try:
            async with self._session.get(fields["realm"], params=query,
                                         headers=basic) as response:
                if response.status != 200:
                    raise PackError(f"token service {fields['realm']} refused ({response.status}"
                                    f"): {(await response.text())[:200]}", entry=str(ref))
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PackError(f"token service {fields['realm']}: {exc}", entry=str(ref)) from None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise PackError(f"token service {fields['realm']} gave no token", entry=str(ref))
        return f"Bearer {token}"

    @staticmethod
    async def _failure(ref: Reference, response: aiohttp.ClientResponse, doing: str) -> PackError:
        """A PackError with the registry's own error codes and messages."""
        text = await response.text(errors="replace")
        try:
            errors = msgspec.json.decode(text)["errors"]
            detail = "; ".join(
                f"{e.get('message', '')} ({e.get('code', '?')}"
                + (f": {e['detail']}" if isinstance(e.get("detail"), str) else "") + ")"
                for e in errors)
        except (msgspec.DecodeError, KeyError, TypeError, AttributeError):
            detail = text[:200] or response.reason or ""
        hint = ""
        if response.status == 401:
            hint = " (credentials: GREENTIC_OCI_USERNAME, GREENTIC_OCI_PASSWORD)"
        elif response.status == 404 and doing.startswith("get manifest"):
            hint = " (no such repository, tag or digest in this registry)"
        return PackError(f"{doing}: HTTP {response.status}: {detail}{hint}", entry=str(ref))

    # --- push --------------------------------------------------------------------------------

    async def push_blob(self, ref: Reference, data: bytes) -> str:
        """Upload `data` (monolithic POST then PUT) unless the registry has it; its digest."""
        digest = sha256_digest(data)
        async with await self._request(ref, "HEAD", self._url(ref, f"blobs/{digest}"),
                                       push=True) as response:
            if response.status == 200:
                return digest
        async with await self._request(ref, "POST", self._url(ref, "blobs/uploads/"),
                                       push=True) as response:
            location = response.headers.get("Location")
            if response.status != 202 or not location:
                raise await self._failure(ref, response, "start blob upload")
        location = str(response.url.join(URL(location)))
        separator = "&" if "?" in location else "?"
        async with await self._request(
                ref, "PUT", f"{location}{separator}digest={digest}", push=True, data=data,
                headers={"Content-Type": "application/octet-stream"}) as response:
            if response.status != 201:
                raise await self._failure(ref, response, f"upload blob {digest}")
        return digest

    async def put_manifest(self, ref: Reference, manifest: bytes) -> str:
        """Store `manifest` under the reference's tag; its digest."""
        digest = sha256_digest(manifest)
        async with await self._request(
                ref, "PUT", self._url(ref, f"manifests/{ref.tag or digest}"), push=True,
                data=manifest, headers={"Content-Type": MANIFEST_MEDIA_TYPE}) as response:
            if response.status != 201:
                raise await self._failure(ref, response, "put manifest")
            stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise PackError(f"registry stored the manifest as {stored}, not {digest}",
                            entry=str(ref))
        return digest

    async def push(self, ref: Reference, data: bytes, *, title: str = "pack.gtpack") -> PushResult:
        """Push `.gtpack` bytes as an artifact tagged `ref.tag`."""
        if not ref.tag or ref.digest:
            raise PackError("push needs a tag and no digest (oci://host/repo:1.0.0)",
                            entry=str(ref))
        manifest, layer_digest = pack_manifest(data, title=title)
        await self.push_blob(ref, EMPTY_BLOB)
        await self.push_blob(ref, data)
        manifest_digest = await self.put_manifest(ref, manifest)
        return PushResult(reference=ref, manifest_digest=manifest_digest,
                          layer_digest=layer_digest, size=len(data))

    # --- pull --------------------------------------------------------------------------------

    async def get_manifest(self, ref: Reference) -> tuple[ImageManifest, str]:
        """The artifact manifest `ref` names, and its digest (checked when `ref` pins one)."""
        async with await self._request(
                ref, "GET", self._url(ref, f"manifests/{ref.reference}"),
                headers={"Accept": MANIFEST_MEDIA_TYPE}) as response:
            if response.status != 200:
                raise await self._failure(ref, response, f"get manifest {ref.reference}")
            body = await response.content.read(MAX_MANIFEST_BYTES + 1)
        if len(body) > MAX_MANIFEST_BYTES:
            raise PackError(f"manifest is over {MAX_MANIFEST_BYTES} bytes", entry=str(ref))
        digest = sha256_digest(body)
        if ref.digest and digest != ref.digest:
            raise PackError(f"the registry's manifest hashes to {digest}, not the pinned "
                            f"{ref.digest} (tampered or wrong registry)", entry=str(ref))
        try:
            manifest = msgspec.json.decode(body, type=ImageManifest)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise PackError(f"not an OCI image manifest: {exc}", entry=str(ref)) from None
        if manifest.media_type not in ("", MANIFEST_MEDIA_TYPE):
            raise PackError(f"manifest media type {manifest.media_type!r} is not "
                            f"{MANIFEST_MEDIA_TYPE}", entry=str(ref))
        return manifest, digest

    @staticmethod
    def pack_layer(ref: Reference, manifest: ImageManifest) -> Descriptor:
        """The manifest's one `.gtpack` layer; PackError if it is not a greentic pack."""
        if len(manifest.layers) != 1:
            raise PackError(f"the artifact has {len(manifest.layers)} layers; a greentic pack "
                            "has exactly one", entry=str(ref))
        layer = manifest.layers[0]
        if layer.media_type != GTPACK_MEDIA_TYPE:
            raise PackError(f"layer media type {layer.media_type!r} is not {GTPACK_MEDIA_TYPE} "
                            "(not a greentic pack)", entry=str(ref))
        return layer

    async def pull(self, ref: Reference, *, cache_dir: str | Path, digest: str | None = None,
                   limits: PackLimits = DEFAULT_LIMITS,
                   progress: Progress | None = None) -> PullResult:
        """The `.gtpack` `ref` names, in the cache (downloaded only if not there yet).

        `digest` pins the layer: the registry must serve exactly that, and a pin already in the
        cache is returned without asking the registry."""
        if digest is not None:
            if not is_digest(digest):
                raise PackError(f"digest pin {digest!r} is not 'sha256:<64 lower-case hex>'",
                                entry=str(ref))
            path = cached_pack(cache_dir, digest)
            if path.is_file():
                return PullResult(path=path, manifest_digest=None, layer_digest=digest,
                                  size=path.stat().st_size, downloaded=False)
        manifest, manifest_digest = await self.get_manifest(ref)
        layer = self.pack_layer(ref, manifest)
        if digest is not None and layer.digest != digest:
            raise PackError(f"pinned digest {digest} but the registry serves {layer.digest} "
                            "(the tag moved, or the pin is wrong)", entry=str(ref))
        if layer.size > limits.max_archive_bytes:
            raise PackError(f"pack is {layer.size} bytes, over the limit of "
                            f"{limits.max_archive_bytes} (GREENTIC_PACK_MAX_BYTES)",
                            entry=str(ref))
        path = cached_pack(cache_dir, layer.digest)
        downloaded = not path.is_file()
        if downloaded:
            await self._download(ref, layer, path, progress)
        return PullResult(path=path, manifest_digest=manifest_digest, layer_digest=layer.digest,
                          size=layer.size, downloaded=downloaded)

    async def _download(self, ref: Reference, layer: Descriptor, path: Path,
                        progress: Progress | None) -> None:
        """Stream the layer into `path`, hashing as it comes; nothing lands on a mismatch."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".pull-")
        try:
            hasher, done = hashlib.sha256(), 0
            with os.fdopen(handle, "wb") as file:
                async with await self._request(ref, "GET",
                                               self._url(ref, f"blobs/{layer.digest}")) as response:
                    if response.status != 200:
                        raise await self._failure(ref, response, f"get blob {layer.digest}")
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        done += len(chunk)
                        if done > layer.size:
                            raise PackError(f"blob {layer.digest} is longer than the "
                                            f"{layer.size} bytes its manifest declares",
                                            entry=str(ref))
                        hasher.update(chunk)
                        file.write(chunk)
                        if progress is not None:
                            progress(done, layer.size)
            actual = "sha256:" + hasher.hexdigest()
            if done != layer.size or actual != layer.digest:
                raise PackError(f"blob {layer.digest} does not match its digest: received "
                                f"{done} bytes hashing to {actual} (tampered or corrupt)",
                                entry=str(ref))
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PackError(f"download of blob {layer.digest} failed: {exc}",
                            entry=str(ref)) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)


class ProgressLog:
    """A progress callback that reports every `step` of the total or every `every_s` seconds."""

    def __init__(self, report: Callable[[int, int], None], *, step: float = 0.1,
                 every_s: float = 3.0) -> None:
        self._report, self._step, self._every_s = report, step, every_s
        self._next_fraction, self._last = step, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        fraction = done / total if total else 1.0
        if fraction >= self._next_fraction or now - self._last >= self._every_s:
            self._report(done, total)
            self._last = now
            while self._next_fraction <= fraction:
                self._next_fraction += self._step
