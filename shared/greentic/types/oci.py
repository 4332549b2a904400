"""OCI references: `oci://host[:port]/repo[/more]:tag` or `…@sha256:<hex>`, parsed by the
distribution spec's grammar (the registry client is `greentic.pack.oci`)."""

import re

import msgspec

from greentic.errors import PackError

SCHEME = "oci://"
# the distribution spec's grammar (reference/regexp.go)
HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
                  r"(?::\d{1,5})?$")
PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class Reference(msgspec.Struct, frozen=True, kw_only=True):
    """`oci://host[:port]/repo[/more]:tag` or `…@sha256:<hex>` (or both: the digest wins)."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    """The manifest digest the reference pins."""

    @property
    def reference(self) -> str:
        """What goes after `/manifests/`: the digest if pinned, else the tag."""
        return self.digest or self.tag or ""

    def __str__(self) -> str:
        return (f"{SCHEME}{self.host}/{self.repository}" + (f":{self.tag}" if self.tag else "")
                + (f"@{self.digest}" if self.digest else ""))

    def pinned(self, digest: str) -> "Reference":
        """This repository at manifest `digest` (without the tag)."""
        return Reference(host=self.host, repository=self.repository, digest=digest)


def is_digest(value: str) -> bool:
    return bool(DIGEST.match(value))


def parse_reference(text: str) -> Reference:
    """Parse an `oci://` locator; PackError says which part is wrong."""
    if not text.startswith(SCHEME):
        raise PackError(f"{text!r} is not an OCI reference: it must start with {SCHEME} "
                        "(e.g. oci://registry.example:5000/packs/shop:1.0.0)")
    rest = text[len(SCHEME):]
    host, slash, path = rest.partition("/")
    if not HOST.match(host):
        raise PackError(f"{text!r}: registry host {host!r} is not host[:port]")
    if ":" in host and not host.endswith("]") and not 0 < int(host.rsplit(":", 1)[1]) < 65536:
        raise PackError(f"{text!r}: port of {host!r} is not 1-65535")
    if not slash or not path:
        raise PackError(f"{text!r}: no repository after the host (oci://{host}/<repo>:<tag>)")
    path, at, digest = path.partition("@")
    if at and not is_digest(digest):
        raise PackError(f"{text!r}: digest {digest!r} is not 'sha256:<64 lower-case hex>'")
    repository, colon, tag = path, "", ""
    if ":" in path.rsplit("/", 1)[-1]:
        repository, colon, tag = path.rpartition(":")
    if colon and not TAG.match(tag):
        raise PackError(f"{text!r}: tag {tag!r} is not [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
    for component in repository.split("/"):
        if not PATH_COMPONENT.match(component):
            raise PackError(f"{text!r}: repository part {component!r} must be lower-case "
                            "letters and digits, separated by '.', '_', '__' or '-'")
    if not colon and not at:
        raise PackError(f"{text!r}: give a tag (…:1.0.0) or a digest (…@sha256:<hex>)")
    return Reference(host=host, repository=repository, tag=tag or None, digest=digest or None)
