"""A component manifest in greentic-types' serde shape (`ComponentManifest`), from the JSON a
component ships (`component.manifest.json`) or from the few fields a pack names.

Mirrors greentic-types v0.4.55 `src/component.rs` (`ComponentManifest`, `ComponentProfiles`,
`ComponentCapabilities`, `WasiCapabilities`, `HostCapabilities`, …) and `src/secrets.rs`
(`SecretRequirement`, camelCase): fields in declaration order, serde's defaults filled in,
`skip_serializing_if` fields left out when empty, fields it does not know dropped (serde ignores
them, as packc's `serde_json::from_slice` does in `load_component_manifest_from_file`).
"""

import re
from typing import Any

from greentic.errors import PackError
from greentic.pack.manifest import SEMVER

IDENTIFIER = re.compile(r"^[A-Za-z0-9._-]+$")  # greentic-types lib.rs `validate_identifier`
FLOW_KINDS = ("messaging", "event", "component_config", "job", "http")


class _Reader:
    """Typed field access with errors naming the component's field."""

    def __init__(self, component: str) -> None:
        self.component = component

    def fail(self, where: str, message: str) -> PackError:
        return PackError(f"component {self.component!r}: {message}", entry=where)

    def map(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "expected an object")
        return value

    def list(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, "expected an array")
        return value

    def str(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, "expected a string")
        return value

    def bool(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, "expected true or false")
        return value

    def choice(self, value: Any, where: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.fail(where, f"{value!r} is not one of {', '.join(choices)}")
        return value


def _semver(r: _Reader, value: Any, where: str) -> str:
    if not isinstance(value, str) or not SEMVER.match(value):
        raise r.fail(where, f"{value!r} is not a semantic version")
    return value


def _flags(r: _Reader, raw: Any, where: str, names: tuple[str, ...]) -> dict[str, bool]:
    body = r.map(raw, where)
    return {name: r.bool(body.get(name, False), f"{where}.{name}") for name in names}


def _secret(r: _Reader, raw: Any, where: str) -> dict[str, Any]:
    body = r.map(raw, where)
    out: dict[str, Any] = {"key": r.str(body.get("key"), f"{where}.key"),
                           "required": r.bool(body.get("required", True), f"{where}.required")}
    if body.get("description") is not None:
        out["description"] = r.str(body["description"], f"{where}.description")
    if body.get("scope") is not None:
        scope = r.map(body["scope"], f"{where}.scope")
        out["scope"] = {"env": r.str(scope.get("env"), f"{where}.scope.env"),
                        "tenant": r.str(scope.get("tenant"), f"{where}.scope.tenant")}
        if scope.get("team") is not None:
            out["scope"]["team"] = r.str(scope["team"], f"{where}.scope.team")
    if body.get("format") is not None:
        out["format"] = r.choice(body["format"], f"{where}.format", ("bytes", "text", "json"))
    if body.get("schema") is not None:
        out["schema"] = body["schema"]
    if body.get("examples"):
        out["examples"] = [r.str(e, f"{where}.examples") for e in r.list(body["examples"], where)]
    return out


def _wasi(r: _Reader, raw: Any, where: str) -> dict[str, Any]:
    body = r.map(raw, where)
    out: dict[str, Any] = {}
    if body.get("filesystem") is not None:
        fs = r.map(body["filesystem"], f"{where}.filesystem")
        mounts = [{key: r.str(r.map(m, f"{where}.filesystem.mounts").get(key),
                              f"{where}.filesystem.mounts.{key}")
                   for key in ("name", "host_class", "guest_path")}
                  for m in r.list(fs.get("mounts", []), f"{where}.filesystem.mounts")]
        out["filesystem"] = {"mode": r.choice(fs.get("mode"), f"{where}.filesystem.mode",
                                              ("none", "read_only", "sandbox")),
                             "mounts": mounts}
    if body.get("env") is not None:
        env = r.map(body["env"], f"{where}.env")
        out["env"] = {"allow": [r.str(v, f"{where}.env.allow")
                                for v in r.list(env.get("allow", []), f"{where}.env.allow")]}
    out["random"] = r.bool(body.get("random", False), f"{where}.random")
    out["clocks"] = r.bool(body.get("clocks", False), f"{where}.clocks")
    return out


def _host(r: _Reader, raw: Any, where: str) -> dict[str, Any]:
    body = r.map(raw, where)
    out: dict[str, Any] = {}
    if body.get("secrets") is not None:
        secrets = r.map(body["secrets"], f"{where}.secrets")
        out["secrets"] = {"required": [
            _secret(r, item, f"{where}.secrets.required")
            for item in r.list(secrets.get("required", []), f"{where}.secrets.required")]}
    for name, flags in (("state", ("read", "write")), ("messaging", ("inbound", "outbound")),
                        ("events", ("inbound", "outbound")), ("http", ("client", "server"))):
        if body.get(name) is not None:
            out[name] = _flags(r, body[name], f"{where}.{name}", flags)
    if body.get("telemetry") is not None:
        telemetry = r.map(body["telemetry"], f"{where}.telemetry")
        out["telemetry"] = {"scope": r.choice(telemetry.get("scope"), f"{where}.telemetry.scope",
                                              ("tenant", "pack", "node"))}
    if body.get("iac") is not None:
        iac = r.map(body["iac"], f"{where}.iac")
        out["iac"] = {"write_templates": r.bool(iac.get("write_templates"),
                                                f"{where}.iac.write_templates"),
                      "execute_plans": r.bool(iac.get("execute_plans", False),
                                              f"{where}.iac.execute_plans")}
    return out  # in the struct's order: secrets, state, messaging, events, http, telemetry, iac


def normalize_component_manifest(raw: Any, where: str = "component manifest") -> dict[str, Any]:
    """`raw` (a decoded `component.manifest.json`) as greentic-types' `ComponentManifest`."""
    body = raw if isinstance(raw, dict) else {}
    r = _Reader(str(body.get("id", "?")))
    body = r.map(raw, where)
    component_id = r.str(body.get("id"), f"{where}.id")
    if not IDENTIFIER.match(component_id):
        raise r.fail(f"{where}.id", "ids are ASCII letters, digits, '.', '-' and '_'")
    out: dict[str, Any] = {
        "id": component_id,
        "version": _semver(r, body.get("version"), f"{where}.version"),
        "supports": [r.choice(kind, f"{where}.supports", FLOW_KINDS)
                     for kind in r.list(body.get("supports", []), f"{where}.supports")],
        "world": r.str(body.get("world"), f"{where}.world"),
    }
    profiles = r.map(body.get("profiles"), f"{where}.profiles")
    out["profiles"] = {}
    if profiles.get("default") is not None:
        out["profiles"]["default"] = r.str(profiles["default"], f"{where}.profiles.default")
    out["profiles"]["supported"] = [r.str(p, f"{where}.profiles.supported") for p in
                                    r.list(profiles.get("supported", []),
                                           f"{where}.profiles.supported")]
    capabilities = r.map(body.get("capabilities"), f"{where}.capabilities")
    out["capabilities"] = {"wasi": _wasi(r, capabilities.get("wasi"), f"{where}.capabilities.wasi"),
                           "host": _host(r, capabilities.get("host"), f"{where}.capabilities.host")}
    if body.get("configurators") is not None:
        configurators = r.map(body["configurators"], f"{where}.configurators")
        out["configurators"] = {name: r.str(configurators[name], f"{where}.configurators.{name}")
                                for name in ("basic", "full")
                                if configurators.get(name) is not None}
    out["operations"] = []
    for item in r.list(body.get("operations", []), f"{where}.operations"):
        operation = r.map(item, f"{where}.operations")
        if "input_schema" not in operation or "output_schema" not in operation:
            raise r.fail(f"{where}.operations", "an operation needs input_schema and "
                         "output_schema")
        out["operations"].append({"name": r.str(operation.get("name"), f"{where}.operations"),
                                  "input_schema": operation["input_schema"],
                                  "output_schema": operation["output_schema"]})
    if body.get("config_schema") is not None:
        out["config_schema"] = body["config_schema"]
    resources = r.map(body.get("resources", {}), f"{where}.resources")
    out["resources"] = {name: resources[name]
                        for name in ("cpu_millis", "memory_mb", "average_latency_ms")
                        if resources.get(name) is not None}
    dev_flows = r.map(body.get("dev_flows", {}), f"{where}.dev_flows")
    if dev_flows:
        out["dev_flows"] = {}
        for flow_id, flow in sorted(dev_flows.items()):
            place = f"{where}.dev_flows.{flow_id}"
            flow = r.map(flow, place)
            if "graph" not in flow:
                raise r.fail(place, "a dev flow needs a graph")
            out["dev_flows"][flow_id] = {
                "format": r.str(flow.get("format", "flow-ir-json"), f"{place}.format"),
                "graph": flow["graph"]}
    return out


def minimal_component_manifest(component_id: str, version: str, world: str,
                               supports: tuple[str, ...] = ()) -> dict[str, Any]:
    """The manifest packc derives from pack.yaml alone (`manifest_from_config`, its
    `--allow-pack-schema` path): no capabilities, no operations."""
    return normalize_component_manifest({
        "id": component_id, "version": version, "world": world, "supports": list(supports),
        "profiles": {}, "capabilities": {"wasi": {}, "host": {}}})
