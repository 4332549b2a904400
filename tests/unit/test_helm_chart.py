"""deploy/helm, checked with the real helm 3 binary and offline Kubernetes schemas (no cluster).

The chart declares the official NATS chart as an optional dependency; helm refuses to lint or
render a chart whose declared dependencies are missing from charts/, even when disabled, and
fetching it needs network. So the checks run on a copy with an empty stand-in `charts/nats`
(it renders nothing: nats.enabled is false in both value sets). Users run
`helm dependency update deploy/helm` once instead.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from greentic.bus.topology import HOPS, partition_consumer
from greentic.config.bundle import load_bundle
from greentic.config.settings import Settings, load_settings
from tests.k8s_tools import helm_binary

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm"
PRODUCTION = CHART / "values-production.yaml"
KUBE_VERSION = "1.30.0"
SERVICES = ("ingress", "router", "executor", "egress", "pack-loader")
Helm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = helm_binary()
    home = tmp_path_factory.mktemp("helm-home")
    env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"),
           "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True,
                              timeout=120)
        if check and done.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    return run


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("chart") / "greentic"
    shutil.copytree(CHART, copy)
    stand_in = copy / "charts" / "nats"
    stand_in.mkdir(parents=True)
    (stand_in / "Chart.yaml").write_text(
        "apiVersion: v2\nname: nats\nversion: 1.3.0\ndescription: stand-in for the tests\n")
    return copy


def render(helm: Helm, chart: Path, *values: str, check: bool = True,
           sets: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    args = ["template", "greentic", str(chart), "--namespace", "greentic"]
    for file in values:
        args += ["-f", file]
    for item in sets:
        args += ["--set", item]
    return helm(*args, check=check)


@pytest.fixture(scope="module", params=["default", "production"])
def rendered(request: pytest.FixtureRequest, helm: Helm, chart: Path) -> tuple[str, str]:
    values = () if request.param == "default" else (str(PRODUCTION),)
    return request.param, render(helm, chart, *values).stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(text: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents(text) if doc["kind"] == kind]


def named(text: str, kind: str, name: str) -> dict[str, Any]:
    return next(doc for doc in of_kind(text, kind) if doc["metadata"]["name"] == name)


class TestLintAndSchemas:
    def test_the_chart_lints_strict_with_default_and_production_values(self, helm: Helm,
                                                                       chart: Path) -> None:
        helm("lint", "--strict", str(chart))
        helm("lint", "--strict", str(chart), "-f", str(PRODUCTION))

    def test_without_the_nats_dependency_fetched_helm_says_to_fetch_it(self,
                                                                       helm: Helm) -> None:
        """What a user sees before `helm dependency update` (docs/kubernetes.md)."""
        done = helm("lint", "--strict", str(CHART), check=False)
        assert done.returncode != 0
        assert "missing these dependencies: nats" in done.stdout + done.stderr

    def test_rendered_manifests_are_valid_kubernetes(self, rendered: tuple[str, str],
                                                     tmp_path: Path) -> None:
        name, text = rendered
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        done = subprocess.run(
            [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "-k",
             KUBE_VERSION, str(path)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ERROR" not in done.stdout
        unchecked = {line.split("kind ")[1].split(" ")[0] for line in done.stdout.splitlines()
                     if "Couldn't find schema" in line}
        assert unchecked <= {"ScaledObject", "ServiceMonitor"}  # checked below instead

    @pytest.mark.parametrize(("sets", "message"), [
        (("executor.replicas=-1",), "/executor/replicas"),
        (("sessions.backend=memory",), "/sessions/backend"),
        (("sessions.backend=postgres",), "/sessions/backend"),
        (("env=prod.eu",), "/env"),
        (("natsConnection.url=http://nats:4222",), "/natsConnection/url"),
        (("autoscaling.minReplicas=0",), "/autoscaling/minReplicas"),
        (("extraEnv.NOT_OURS=1",), "NOT_OURS"),
        (("logLevel=loud",), "/logLevel"),
        (("unknownKey=1",), "unknownKey"),
        (("ports.admin=0",), "/ports/admin"),
        (("admin.enabled=yes",), "/admin/enabled"),
    ])
    def test_bad_values_fail_with_a_schema_error(self, helm: Helm, chart: Path,
                                                 sets: tuple[str, ...], message: str) -> None:
        done = render(helm, chart, sets=sets, check=False)
        assert done.returncode != 0
        assert "don't meet the specifications of the schema" in done.stderr
        assert message in done.stderr

    @pytest.mark.parametrize(("sets", "message"), [
        (("terminationGracePeriodSeconds=30",), "must exceed ackWaitSeconds"),
        (("terminationGracePeriodSeconds=31", "drainTimeoutSeconds=30"),
         "must exceed preStopSleepSeconds + drainTimeoutSeconds"),
        (("sessions.backend=redis",), "needs sessions.redis.url"),
        (("admin.enabled=true",), "admin.enabled needs admin.tokens or admin.existingSecret"),
        (("admin.enabled=true", "admin.tokens=t0123456789abcdef", "ports.admin=8080"),
         "ports.admin must differ from ports.http"),
    ])
    def test_values_the_schema_cannot_relate_fail_at_render(self, helm: Helm, chart: Path,
                                                            sets: tuple[str, ...],
                                                            message: str) -> None:
        done = render(helm, chart, sets=sets, check=False)
        assert done.returncode != 0 and message in done.stderr


class TestWorkloads:
    def test_one_deployment_per_service_with_probes_drain_and_locked_down_security(
            self, rendered: tuple[str, str]) -> None:
        _, text = rendered
        deployments = {d["metadata"]["name"]: d for d in of_kind(text, "Deployment")}
        assert set(deployments) == {f"greentic-{svc}" for svc in SERVICES}
        ack_wait = float(named(text, "ConfigMap", "greentic-env")["data"]["GREENTIC_ACK_WAIT_S"])
        for name, deployment in deployments.items():
            pod = deployment["spec"]["template"]["spec"]
            assert pod["terminationGracePeriodSeconds"] > ack_wait, name
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] == 65532
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            (container,) = pod["containers"]
            assert container["args"] == [name.removeprefix("greentic-")]
            assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            assert security["runAsNonRoot"] is True
            assert container["resources"]["requests"]["cpu"]
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/tmp", "/var/lib/greentic", "/etc/greentic/bundle"} <= mounts
            # the Kubernetes API token only where the Lease is used
            assert pod["automountServiceAccountToken"] is (name == "greentic-pack-loader")

    def test_every_greentic_variable_the_chart_sets_is_a_setting(
            self, rendered: tuple[str, str]) -> None:
        _, text = rendered
        fields = {f"GREENTIC_{name.upper()}" for name in Settings.__struct_fields__}
        env = named(text, "ConfigMap", "greentic-env")["data"]
        names = set(env)
        for deployment in of_kind(text, "Deployment"):
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                names |= {e["name"] for e in container.get("env", [])}
        greentic = {n for n in names if n.startswith("GREENTIC_")}
        assert greentic - fields == set()
        # and the values decode as the services will decode them (the Redis URL is a Secret)
        environ = dict(env)
        if env["GREENTIC_SESSION_BACKEND"] == "redis":
            environ["GREENTIC_REDIS_URL"] = "redis://redis:6379/0"
        load_settings(environ)

    def test_the_default_bundle_loads_and_points_at_the_demo_pack_in_the_image(
            self, helm: Helm, chart: Path, tmp_path: Path) -> None:
        text = render(helm, chart).stdout
        data = named(text, "ConfigMap", "greentic-bundle")["data"]["greentic.yaml"]
        (tmp_path / "greentic.yaml").write_text(data)
        bundle = load_bundle(tmp_path / "greentic.yaml")
        # the Dockerfile copies examples/ to /usr/share/greentic/examples
        in_image = Path(bundle.packs["demo"].path)
        assert (ROOT / in_image.relative_to("/usr/share/greentic")).joinpath("pack.yaml").exists()
        env = named(text, "ConfigMap", "greentic-env")["data"]
        assert env["GREENTIC_BUNDLE"] == "/etc/greentic/bundle/greentic.yaml"


class TestAutoscaling:
    def test_by_default_an_hpa_scales_executors_on_cpu(self, helm: Helm, chart: Path) -> None:
        text = render(helm, chart).stdout
        (hpa,) = of_kind(text, "HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": "greentic-executor"}
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert of_kind(text, "ScaledObject") == []
        executor = named(text, "Deployment", "greentic-executor")
        assert "replicas" not in executor["spec"]  # the autoscaler owns it
        env = named(text, "ConfigMap", "greentic-env")["data"]
        assert env["GREENTIC_EXECUTOR_REPLICAS"] == str(hpa["spec"]["maxReplicas"])

    def test_with_keda_a_scaled_object_follows_every_partition_consumer(self, helm: Helm,
                                                                       chart: Path) -> None:
        text = render(helm, chart, str(PRODUCTION),
                      sets=("partitions=4", "autoscaling.maxReplicas=4")).stdout
        assert of_kind(text, "HorizontalPodAutoscaler") == []
        (scaled,) = of_kind(text, "ScaledObject")
        assert scaled["apiVersion"] == "keda.sh/v1alpha1"
        spec = scaled["spec"]
        assert spec["scaleTargetRef"]["name"] == "greentic-executor"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= 4
        triggers = spec["triggers"]
        assert [t["name"] for t in triggers] == ["p0", "p1", "p2", "p3"]
        modifier = spec["advanced"]["scalingModifiers"]
        assert modifier["formula"] == "p0 + p1 + p2 + p3"
        assert modifier["metricType"] == "AverageValue" and modifier["target"]
        for partition, trigger in enumerate(triggers):
            assert trigger["type"] == "nats-jetstream"
            meta = trigger["metadata"]
            required = {"natsServerMonitoringEndpoint", "account", "stream", "consumer",
                        "lagThreshold"}
            assert required <= set(meta) and all(isinstance(meta[k], str) and meta[k]
                                                  for k in required)
            assert (meta["stream"], meta["consumer"]) == (HOPS["routed"].stream,
                                                          partition_consumer(partition))
            assert meta["natsServerMonitoringEndpoint"].endswith(":8222")
            assert "://" not in meta["natsServerMonitoringEndpoint"]
        env = named(text, "ConfigMap", "greentic-env")["data"]
        assert env["GREENTIC_PARTITIONS"] == "4"
        assert "replicas" not in named(text, "Deployment", "greentic-executor")["spec"]

    def test_more_executors_than_partitions_is_refused_at_render(self, helm: Helm,
                                                                 chart: Path) -> None:
        done = render(helm, chart, sets=("partitions=2", "autoscaling.maxReplicas=3"),
                      check=False)
        assert done.returncode != 0
        assert "at most 2 executors get work with partitions=2" in done.stderr


class TestAroundTheWorkloads:
    def test_the_service_monitor_scrapes_metrics_on_every_health_port(self, helm: Helm,
                                                                     chart: Path) -> None:
        text = render(helm, chart, str(PRODUCTION)).stdout
        (monitor,) = of_kind(text, "ServiceMonitor")
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        spec = monitor["spec"]
        assert spec["selector"]["matchLabels"] and spec["endpoints"]
        (endpoint,) = spec["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("health", "/metrics")
        service = named(text, "Service", "greentic-metrics")
        labels = service["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        assert [p["name"] for p in service["spec"]["ports"]] == ["health"]
        assert "app.kubernetes.io/component" not in service["spec"]["selector"]  # all five

    def test_only_ingress_is_reachable_and_egress_reaches_providers(
            self, rendered: tuple[str, str]) -> None:
        _, text = rendered
        policies = {p["metadata"]["name"].removeprefix("greentic-"): p["spec"]
                    for p in of_kind(text, "NetworkPolicy")}
        assert set(policies) == set(SERVICES)
        for svc, spec in policies.items():
            assert spec["policyTypes"] == ["Ingress", "Egress"]
            from_outside = [r for r in spec["ingress"]
                            if any(p["port"] == "http" for p in r["ports"])]
            assert bool(from_outside) == (svc == "ingress"), svc
            for rule in spec["ingress"]:
                ports = {p["port"] for p in rule["ports"]}
                assert ports <= {"http", "health", "admin"}
                if "admin" in ports:  # only ingress serves it, only to the listed peers
                    assert (svc, ports) == ("ingress", {"admin"}) and rule["from"]
            ports = [p["port"] for rule in spec["egress"] for p in rule["ports"]]
            assert 53 in ports and 4222 in ports, svc
            assert (443 in ports) == (svc in ("ingress", "egress", "pack-loader")), svc

    def test_pack_loader_may_use_its_lease_and_nothing_else(self, helm: Helm,
                                                           chart: Path) -> None:
        text = render(helm, chart).stdout
        role = named(text, "Role", "greentic-pack-loader")
        assert {g for rule in role["rules"] for g in rule["apiGroups"]} == {
            "coordination.k8s.io"}
        assert {r for rule in role["rules"] for r in rule["resources"]} == {"leases"}
        env = named(text, "ConfigMap", "greentic-env")["data"]
        named_rule = next(r for r in role["rules"] if "resourceNames" in r)
        assert named_rule["resourceNames"] == [env["GREENTIC_LEASE_NAME"]]
        binding = named(text, "RoleBinding", "greentic-pack-loader")
        pod = named(text, "Deployment", "greentic-pack-loader")["spec"]["template"]["spec"]
        assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
        assert env["GREENTIC_LEADER_ELECTION"] == "lease"

    def test_helm_test_sends_a_webchat_message_to_the_ingress_service(self, helm: Helm,
                                                                      chart: Path) -> None:
        text = render(helm, chart).stdout
        pod = named(text, "Pod", "greentic-test-webchat")
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        (container,) = pod["spec"]["containers"]
        args = container["args"]
        assert args[0] == "send" and args[-1] == "hello"
        service = named(text, "Service", "greentic-ingress")
        port = service["spec"]["ports"][0]["port"]
        assert args[args.index("--url") + 1] == f"http://greentic-ingress:{port}"

    def test_production_values_use_existing_secrets_redis_tls_and_several_executors(
            self, helm: Helm, chart: Path) -> None:
        text = render(helm, chart, str(PRODUCTION)).stdout
        names = {s["metadata"]["name"] for s in of_kind(text, "Secret")}
        assert names == set()  # everything comes from existing Secrets
        executor = named(text, "Deployment", "greentic-executor")
        (container,) = executor["spec"]["template"]["spec"]["containers"]
        redis = next(e for e in container["env"] if e["name"] == "GREENTIC_REDIS_URL")
        assert redis["valueFrom"]["secretKeyRef"]["name"] == "greentic-redis"
        (ingress,) = of_kind(text, "Ingress")
        assert ingress["spec"]["tls"][0]["hosts"] == ["chat.example.com"]
        env = named(text, "ConfigMap", "greentic-env")["data"]
        assert env["GREENTIC_PUBLIC_URL"] == "https://chat.example.com"
        assert env["GREENTIC_NATS_CREDS"] == "/etc/greentic/nats/nats.creds"
        assert int(env["GREENTIC_EXECUTOR_REPLICAS"]) > 1
        assert env["GREENTIC_SESSION_BACKEND"] == "redis"


class TestAdminApi:
    TOKENS = "all-tenants-token-0123456789,acme:acme-only-token-0123456789"

    def test_off_by_default_no_port_service_or_tokens(self, helm: Helm, chart: Path) -> None:
        text = render(helm, chart).stdout
        assert "greentic-admin" not in {s["metadata"]["name"] for s in of_kind(text, "Service")}
        ingress = named(text, "Deployment", "greentic-ingress")
        (container,) = ingress["spec"]["template"]["spec"]["containers"]
        assert [p["name"] for p in container["ports"]] == ["http", "health"]
        assert "GREENTIC_ADMIN_TOKENS" not in {e["name"] for e in container["env"]}
        assert "GREENTIC_ADMIN_PORT" not in named(text, "ConfigMap", "greentic-env")["data"]

    def test_enabled_it_has_its_own_port_and_service_and_is_never_in_the_ingress(
            self, helm: Helm, chart: Path) -> None:
        escaped = self.TOKENS.replace(",", "\\,")  # --set splits on commas
        text = render(helm, chart, sets=("admin.enabled=true", f"admin.tokens={escaped}",
                                         "publicIngress.enabled=true",
                                         "publicIngress.hosts={chat.example.com}",
                                         "networkPolicy.adminFrom[0].podSelector.matchLabels"
                                         ".role=ops")).stdout
        secret = named(text, "Secret", "greentic-admin")
        assert secret["stringData"] == {"admin-tokens": self.TOKENS}
        ingress = named(text, "Deployment", "greentic-ingress")
        (container,) = ingress["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8080, "health": 8081, "admin": 8082}
        tokens = next(e for e in container["env"] if e["name"] == "GREENTIC_ADMIN_TOKENS")
        assert tokens["valueFrom"]["secretKeyRef"] == {"name": "greentic-admin",
                                                       "key": "admin-tokens"}
        for other in ("router", "executor", "egress", "pack-loader"):
            pod = named(text, "Deployment", f"greentic-{other}")["spec"]["template"]["spec"]
            assert "GREENTIC_ADMIN_TOKENS" not in {e["name"] for e in
                                                   pod["containers"][0].get("env", [])}
        service = named(text, "Service", "greentic-admin")
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["ports"] == [{"name": "admin", "port": 8082,
                                             "targetPort": "admin", "protocol": "TCP"}]
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == "ingress"
        assert [p["name"] for p in named(text, "Service", "greentic-ingress")["spec"]["ports"]] \
            == ["http"]
        (public,) = of_kind(text, "Ingress")
        backends = [path["backend"]["service"] for rule in public["spec"]["rules"]
                    for path in rule["http"]["paths"]]
        assert backends == [{"name": "greentic-ingress", "port": {"name": "http"}}]
        policy = named(text, "NetworkPolicy", "greentic-ingress")["spec"]
        (admin_rule,) = [r for r in policy["ingress"] if r["ports"][0]["port"] == "admin"]
        assert admin_rule["from"] == [{"podSelector": {"matchLabels": {"role": "ops"}}}]
        env = named(text, "ConfigMap", "greentic-env")["data"]
        settings = load_settings({**env, "GREENTIC_ADMIN_TOKENS": self.TOKENS})
        assert (settings.admin_host, settings.admin_port) == ("0.0.0.0", 8082)

    def test_production_takes_tokens_from_an_existing_secret_and_reads_redis_sessions(
            self, helm: Helm, chart: Path) -> None:
        text = render(helm, chart, str(PRODUCTION)).stdout
        ingress = named(text, "Deployment", "greentic-ingress")
        (container,) = ingress["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]}
        assert env["GREENTIC_ADMIN_TOKENS"] == "greentic-admin"
        assert env["GREENTIC_REDIS_URL"] == "greentic-redis"  # the session endpoints need it


class TestPackRegistry:
    def test_pack_loader_alone_gets_registry_credentials_from_an_existing_secret(
            self, helm: Helm, chart: Path) -> None:
        text = render(helm, chart, sets=("packRegistry.existingSecret=regcreds",
                                         "packRegistry.insecure=registry.internal:5000")).stdout
        pod = named(text, "Deployment", "greentic-pack-loader")["spec"]["template"]["spec"]
        env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in pod["containers"][0]["env"]}
        assert env == {"GREENTIC_OCI_USERNAME": {"name": "regcreds", "key": "username"},
                       "GREENTIC_OCI_PASSWORD": {"name": "regcreds", "key": "password"}}
        for other in ("ingress", "router", "executor", "egress"):
            spec = named(text, "Deployment", f"greentic-{other}")["spec"]["template"]["spec"]
            assert not {"GREENTIC_OCI_USERNAME", "GREENTIC_OCI_PASSWORD"} & {
                e["name"] for e in spec["containers"][0].get("env", [])}, other
        data = named(text, "ConfigMap", "greentic-env")["data"]
        settings = load_settings({**data, "GREENTIC_OCI_USERNAME": "u",
                                  "GREENTIC_OCI_PASSWORD": "p"})
        assert settings.oci_insecure == "registry.internal:5000"

    def test_without_credentials_no_secret_is_referenced(self, helm: Helm, chart: Path) -> None:
        text = render(helm, chart).stdout
        pod = named(text, "Deployment", "greentic-pack-loader")["spec"]["template"]["spec"]
        assert "env" not in pod["containers"][0]
        assert "GREENTIC_OCI_INSECURE" not in named(text, "ConfigMap", "greentic-env")["data"]

    def test_the_network_policy_lets_pack_loader_reach_the_listed_registries(
            self, helm: Helm, chart: Path) -> None:
        text = render(helm, chart, sets=(
            "leaderElection.enabled=false", "networkPolicy.registryPorts={443,5000}",
            "networkPolicy.registriesTo[0].ipBlock.cidr=10.9.0.0/16")).stdout
        rules = named(text, "NetworkPolicy", "greentic-pack-loader")["spec"]["egress"]
        (registry,) = [r for r in rules if {p["port"] for p in r["ports"]} == {443, 5000}]
        assert registry["to"] == [{"ipBlock": {"cidr": "10.9.0.0/16"}}]
        closed = render(helm, chart, sets=("leaderElection.enabled=false",
                                           "networkPolicy.registryPorts=null")).stdout
        ports = {p["port"] for r in named(closed, "NetworkPolicy", "greentic-pack-loader")
                 ["spec"]["egress"] for p in r["ports"]}
        assert ports == {53, 4222}
