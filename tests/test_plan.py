"""The offline plan (`python -m offline_engine.plan`, `make preview`): tree, masks, outputs, files, errors."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pulumi.output import Unknown

from components import images
from offline_engine import plan as plan_cli
from offline_engine.offline_run import DeclaredResource, ProgramRun, reveal, run_program
from offline_engine.plan_manifests import manifest_of
from offline_engine.plan_model import build_plan
from offline_engine.plan_render import render_plan
from offline_engine.stack_files import PROJECT_DIR, StackSettings, load_stack_settings, stack_names
from policy.ack_rdma_policy.rules import RULES

STACKS = stack_names()
SCHEMA_VERSION = kubernetes_validate.latest_version()
ANSI = re.compile(r"\x1b\[")
TREE_LINE = re.compile(r"^(?P<indent> *)\+ (?P<type>\S+)  (?P<name>\S+)$")
PASSWORD = "Pl4n-n3ver-shows-this"
POLICIES = "Policies: the pack in policy/, as `pulumi preview --policy-pack policy`"
PERSONAL = {
    "ack-rdma:registryEdition": "personal",
    "ack-rdma:registryUsername": "ops@example.com",
    "ack-rdma:registryHost": None,
}


@dataclass(frozen=True)
class Planned:
    """One in-process run of the plan command."""

    status: int
    stdout: str
    stderr: str
    manifests: Path


def plan(
    stack: str,
    out: Path,
    *extra: str,
    settings: Callable[..., StackSettings] | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> Planned:
    if settings is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(plan_cli, "load_stack_settings", settings)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = plan_cli.main(["--stack", stack, "--out", str(out), *extra])
    return Planned(status, stdout.getvalue(), stderr.getvalue(), out / stack / "manifests")


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Planned]:
    return {stack: plan(stack, tmp_path_factory.mktemp(f"plan-{stack}")) for stack in STACKS}


@pytest.fixture(scope="module")
def json_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    found = {}
    for stack in STACKS:
        planned = plan(stack, tmp_path_factory.mktemp(f"json-{stack}"), "--json")
        assert planned.status == 0
        found[stack] = json.loads(planned.stdout)
    return found


def tree(text: str) -> list[tuple[int, str, str, str]]:
    """The plan's ``+`` lines as (depth, type, name, parent name)."""
    lines: list[tuple[int, str, str, str]] = []
    ancestors: list[str] = []
    for line in text.splitlines():
        found = TREE_LINE.match(line)
        if found is None:
            continue
        indent = len(found["indent"])
        assert indent % 4 == 0, line
        depth = indent // 4
        del ancestors[depth:]
        lines.append((depth, found["type"], found["name"], ancestors[-1] if ancestors else ""))
        ancestors.append(found["name"])
    return lines


def section(text: str, heading: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def files_in(directory: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(directory.iterdir()):
        (document,) = yaml.safe_load_all(path.read_text(encoding="utf-8"))
        found[path.name] = document
    return found


def numbers(value: Any) -> Iterator[object]:
    if isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


# -- the tree ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_plan_lists_every_resource_under_its_parent(
    stack: str, plans: dict[str, Planned], program_runs: dict[str, ProgramRun]
) -> None:
    planned = plans[stack]
    assert planned.status == 0 and planned.stderr == ""
    run = program_runs[stack]
    names = {resource.urn: resource.name for resource in run.resources}
    stack_name = run.stack_urn.rsplit("::", 1)[-1]
    lines = tree(planned.stdout)
    assert lines[0] == (0, "pulumi:pulumi:Stack", stack_name, "")
    listed = {(type_, name, parent) for _, type_, name, parent in lines[1:]}
    declared = {
        (resource.type, resource.name, names.get(resource.parent, stack_name)) for resource in run.resources
    }
    assert listed == declared
    assert len(lines) == len(run.resources) + 1
    (summary,) = section(planned.stdout, "Resources:")
    assert summary.strip().startswith(f"+ {len(run.resources) + 1} to create: 1 stack, ")


@pytest.mark.parametrize("stack", STACKS)
def test_each_resource_comes_after_the_siblings_it_needs(
    stack: str, plans: dict[str, Planned], program_runs: dict[str, ProgramRun]
) -> None:
    run = program_runs[stack]
    position = {name: index for index, (_, _, name, _) in enumerate(tree(plans[stack].stdout))}
    checked = 0
    for resource in run.resources:
        for urn in resource.dependencies:
            needed = run.by_urn(urn)
            if needed.parent == resource.parent:
                assert position[needed.name] < position[resource.name], (needed.name, resource.name)
                checked += 1
    assert checked >= 3
    top = [name for depth, _, name, _ in tree(plans[stack].stdout) if depth == 1]
    assert top.index("network") < top.index("security") < top.index("cluster") < top.index("device-plugin")


def test_plan_is_the_same_on_every_run(tmp_path: Path, plans: dict[str, Planned]) -> None:
    again = plan("dev", tmp_path)
    strip = re.compile(r"^Duration: .*$|^Manifests: .*$|^ +\S*/manifests/", re.MULTILINE)
    assert strip.sub("", again.stdout) == strip.sub("", plans["dev"].stdout)


def test_key_inputs_and_options_are_shown(plans: dict[str, Planned]) -> None:
    text = plans["dev"].stdout
    assert re.search(r'^ +cidrBlock +: "192\.168\.0\.0/16"$', text, re.MULTILINE)
    assert re.search(r'^ +instanceTypes +: \["ecs\.g8i\.4xlarge", "ecs\.g8ae\.4xlarge"\]$', text, re.M)
    assert re.search(r"^ +labels\[0\]\.key +: \"aliyun\.accelerator/rdma\"$", text, re.MULTILINE)
    assert re.search(r"^ +\[deleteBeforeReplace\] \[customTimeouts: create=60m", text, re.MULTILINE)
    assert "[customTimeouts: create=10m update=10m delete=5m] [provider=cluster-kubernetes]" in text
    assert re.search(r'^ +containers\[0\]\.securityContext\.capabilities\.drop +: \["ALL"\]$', text, re.M)
    assert re.search(r"^ +hostNetwork +: true$", text, re.MULTILINE)
    assert re.search(r'^ +containers\[0\]\.securityContext\.capabilities\.add +: \["IPC_LOCK"\]$', text, re.M)
    # Numbers arrive from the engine as doubles; the plan shows what the program set.
    assert re.search(r"^ +systemDiskSize +: 120$", text, re.MULTILINE)
    assert "[protect]" in plans["prod"].stdout and "[protect]" not in text


# -- unknowns, secrets, outputs -----------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_outputs_are_listed_with_values_known_only_after_deployment_marked(
    stack: str, plans: dict[str, Planned], program_runs: dict[str, ProgramRun]
) -> None:
    outputs = section(plans[stack].stdout, "Outputs:")
    shown = {line.split(":", 1)[0].strip().split(".")[0] for line in outputs}
    assert shown == set(program_runs[stack].outputs)
    values = {line.split(" : ", 1)[0].strip(): line.split(" : ", 1)[1] for line in outputs}
    for key in ("vpcId", "clusterId", "securityGroupId", "nodePoolId", "kubeconfigExpiration"):
        assert values[key] == "[unknown]", key
    assert values["vswitchIds"] == values["nodePoolIds"] == "[[unknown]]"
    assert values["kubeconfig"] == "[secret]"
    assert values["rdmaResourceName"] == '"rdma/hca"'
    assert values["devicePluginNamespace"] == '"kube-system"'
    # preview pushes nothing: the plugin image is its tag, from config strings with the full registry host.
    assert re.fullmatch(
        r'"[a-z0-9.-]+\.aliyuncs\.com/ack-rdma/rdma-device-plugin:[\w.-]+"', values["pluginImage"]
    )


def test_inputs_from_other_resources_are_unknown_and_the_kubeconfig_secret(
    json_plans: dict[str, dict[str, Any]],
) -> None:
    resources = {resource["name"]: resource for resource in json_plans["dev"]["resources"]}
    assert resources["network-vswitch"]["inputs"]["vpcId"] == "[unknown]"
    assert resources["network-vswitch"]["inputs"]["cidrBlock"] == "192.168.0.0/20"
    assert resources["cluster-cluster"]["inputs"]["vswitchIds"] == ["[unknown]"]
    provider = resources["cluster-kubernetes"]["inputs"]
    assert provider["kubeconfig"] == "[secret]" and provider["clusterIdentifier"] == "[unknown]"
    assert resources["images-plugin"]["inputs"]["registries"] == "[secret]"
    assert resources["nodepool-rdma-pool"]["options"]["deleteBeforeReplace"] is True
    summary = json_plans["dev"]["summary"]
    assert summary["create"] == len(resources) + 1 == sum(summary["byKind"].values()) + 1
    assert json_plans["dev"]["outputs"]["kubeconfig"] == "[secret]"


def test_what_the_program_logs_is_listed_under_diagnostics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plans: dict[str, Planned]
) -> None:
    # The committed stacks list no API-server or registry-push CIDRs: their plans say what that means.
    for planned in plans.values():
        api_server, registry = section(planned.stdout, "Diagnostics:")
        assert api_server.startswith("    warning: The API server gets no public endpoint ")
        assert registry.startswith("    warning: The internet endpoint of ACR instance cri-")
    monkeypatch.setattr(images, "source_revision", lambda directory: None)
    planned = plan("dev", tmp_path / "text")
    as_json = plan("dev", tmp_path / "json", "--json")
    assert planned.status == as_json.status == 0 and planned.stderr == as_json.stderr == ""
    lines = section(planned.stdout, "Diagnostics:")
    assert len(lines) == 3
    assert any(line.startswith("    warning: No source revision for the images: ") for line in lines)
    assert planned.stdout.index("Diagnostics:") < planned.stdout.index("Outputs:")
    (diagnostic,) = [
        item
        for item in json.loads(as_json.stdout)["diagnostics"]
        if "ack-rdma:imageRevision" in item["message"]
    ]
    assert diagnostic["severity"] == "warning"


# -- policies ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_the_policy_pack(
    stack: str, plans: dict[str, Planned], json_plans: dict[str, dict[str, Any]]
) -> None:
    verdict = json_plans[stack]["policies"]
    assert verdict["policies"] == [rule.name for rule in RULES]
    assert verdict["passed"] is True and verdict["violations"] == []
    # Security group rules, the node pool, the cluster, the DaemonSet (and the dev stack's test pods).
    assert verdict["resourcesChecked"] >= 4
    assert plans[stack].status == 0
    assert section(
        plans[stack].stdout, "Policies: the pack in policy/, as `pulumi preview --policy-pack policy`"
    ) == [f"    all {len(RULES)} mandatory policies passed ({verdict['resourcesChecked']} resources checked)"]


def test_a_violated_policy_is_listed_and_fails_the_plan_after_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plans: dict[str, Planned]
) -> None:
    """SSH opened to the whole internet, which the stack config allows when listed but the pack does not."""

    def open_ssh(stack: str, **_: object) -> StackSettings:
        return load_stack_settings(stack, overrides={"ack-rdma:sshIngressCidrs": ["0.0.0.0/0"]})

    planned = plan("dev", tmp_path / "text", settings=open_ssh, monkeypatch=monkeypatch)
    as_json = plan("dev", tmp_path / "json", "--json", settings=open_ssh, monkeypatch=monkeypatch)
    assert planned.status == as_json.status == plan_cli.EXIT_POLICY_VIOLATED == 1
    assert planned.stderr == as_json.stderr == ""
    assert section(
        planned.stdout, "Policies: the pack in policy/, as `pulumi preview --policy-pack policy`"
    ) == [
        "    [mandatory] no-public-ingress  alicloud:ecs/securityGroupRule:SecurityGroupRule  security-ssh-0",
        "        security group rule 'security-ssh-0' accepts tcp 22/22 from cidrIp=0.0.0.0/0, the whole "
        "internet: narrow cidrIp to the CIDRs that need access, or list the port in the policy config "
        "'allowedPublicIngressPorts' if it must be public.",
        f"    1 violation of {len(RULES)} mandatory policies: "
        "`pulumi preview --policy-pack policy` fails for this stack",
    ]
    # The whole plan is still there to review, and the manifests written.
    for heading in ("Outputs:", "Resources:", "Manifests:"):
        assert re.search(rf"^{heading}", planned.stdout, re.MULTILINE), heading
    assert sorted(path.name for path in planned.manifests.iterdir()) == sorted(
        path.name for path in plans["dev"].manifests.iterdir()
    )
    verdict = json.loads(as_json.stdout)["policies"]
    assert verdict["passed"] is False
    assert [(item["policy"], item["resourceName"]) for item in verdict["violations"]] == [
        ("no-public-ingress", "security-ssh-0")
    ]


def test_a_fully_known_run_still_shows_no_secret(program_runs: dict[str, ProgramRun], tmp_path: Path) -> None:
    """The mock run knows the kubeconfig and the registry token: masking, not missing values, hides them."""
    run = program_runs["dev"]
    kubeconfig = reveal(run.outputs["kubeconfig"])
    client_key = yaml.safe_load(kubeconfig)["users"][0]["user"]["client-key-data"]
    (registry,) = reveal(run.of_type("docker-build:index:Image")[0].inputs["registries"])
    built = build_plan(run)
    text = render_plan(built, manifest_dir=tmp_path, seconds=1.0, colour=False)
    shown = text + json.dumps(built.as_json(tmp_path))
    assert client_key not in shown and "PRIVATE KEY" not in shown
    assert registry["password"] not in shown
    assert re.search(r"^ +kubeconfig +: \[secret\]$", text, re.MULTILINE)


def test_registry_password_stays_out_of_the_plan_and_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def personal(stack: str, **_: object) -> StackSettings:
        return load_stack_settings(
            stack, overrides=PERSONAL, secret_overrides={"ack-rdma:registryPassword": PASSWORD}
        )

    planned = plan("dev", tmp_path, settings=personal, monkeypatch=monkeypatch)
    as_json = plan("dev", tmp_path / "json", "--json", settings=personal, monkeypatch=monkeypatch)
    assert planned.status == as_json.status == 0
    auth = base64.b64encode(f"ops@example.com:{PASSWORD}".encode()).decode()
    written = "".join(path.read_text() for path in planned.manifests.iterdir())
    for shown in (planned.stdout, as_json.stdout, written):
        assert PASSWORD not in shown and auth not in shown
    # Every pull secret the program declares (one per namespace pulling the images) is named, not written.
    declared = run_program(personal("dev"), preview=True).kubernetes_objects()
    secrets = {f"Secret {ns}/{name}" for kind, ns, name in map(identity, declared) if kind == "Secret"}
    assert len(secrets) == 2
    for title in secrets:
        assert f"not written: {title}: holds secret values" in planned.stdout
    assert {identity(document) for document in files_in(planned.manifests).values()} == {
        identity(obj) for obj in declared if obj["kind"] != "Secret"
    }
    withheld = json.loads(as_json.stdout)["manifests"]["withheld"]
    assert {entry["object"] for entry in withheld} == secrets


# -- manifests --------------------------------------------------------------------------------------------
def declared_objects(stack: str) -> list[dict[str, Any]]:
    """The builders' dicts as the program declares them, from a run with the plain MockCloud (which knows
    every value, so nothing the plan's preview run leaves unknown could hide here)."""
    return run_program(load_stack_settings(stack), preview=True).kubernetes_objects()


def identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_manifests_are_exactly_the_declared_objects_and_validate(
    stack: str, plans: dict[str, Planned]
) -> None:
    planned = plans[stack]
    declared = {identity(obj): obj for obj in declared_objects(stack)}
    files = files_in(planned.manifests)
    assert {identity(document) for document in files.values()} == set(declared)
    for position, (name, document) in enumerate(files.items(), start=1):
        kind, namespace, object_name = identity(document)
        scope = f"{namespace}-" if namespace else ""
        assert name == f"{position:02d}-{kind.lower()}-{scope}{object_name}.yaml"
        assert document == declared[identity(document)], name
        assert list(document)[:3] == ["apiVersion", "kind", "metadata"]
        assert SCHEMA_VERSION.startswith(kubernetes_validate.validate(document, SCHEMA_VERSION, strict=True))
        # Integers stay integers: the wire's doubles are not written back as 2.0.
        assert all(isinstance(number, int) for number in numbers(document)), name
    listed = section(planned.stdout, f"Manifests: kubectl apply -f {planned.manifests}")
    assert [line.strip() for line in listed] == [str(planned.manifests / name) for name in files]


@pytest.mark.parametrize("stack", STACKS)
def test_manifest_files_apply_in_dependency_order(stack: str, plans: dict[str, Planned]) -> None:
    """``kubectl apply -f <dir>`` takes files in name order: a namespace comes before what lives in it."""
    documents = list(files_in(plans[stack].manifests).values())
    created: set[str] = {"default", "kube-system"}
    for document in documents:
        namespace = document["metadata"].get("namespace")
        assert namespace is None or namespace in created, identity(document)
        if document["kind"] == "Namespace":
            created.add(document["metadata"]["name"])
    kinds = [document["kind"] for document in documents]
    assert kinds.index("ConfigMap") < kinds.index("DaemonSet")
    assert kinds.index("ServiceAccount") < kinds.index("DaemonSet")


def test_an_object_waiting_for_deployment_is_not_written() -> None:
    waiting = DeclaredResource(
        urn="urn:pulumi:dev::ack-rdma::kubernetes:core/v1:ConfigMap::waiting",
        type="kubernetes:core/v1:ConfigMap",
        name="waiting",
        custom=True,
        parent="",
        id=None,
        inputs={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cluster-info", "namespace": "default"},
            "data": {"clusterId": Unknown()},  # type: ignore[no-untyped-call]
        },
        outputs={},
        provider="",
        dependencies=(),
        delete_before_replace=False,
        protect=False,
        ignore_changes=(),
        custom_timeouts={},
        additional_secret_outputs=(),
    )
    manifest = manifest_of(waiting, 7)
    assert manifest.content is None
    assert manifest.withheld == "depends on values known only after deployment (data.clusterId)"
    assert manifest.file_name == "07-configmap-default-cluster-info.yaml"


# -- errors -----------------------------------------------------------------------------------------------
def test_bad_config_exits_2_with_the_programs_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(stack: str, **_: object) -> StackSettings:
        return load_stack_settings(stack, overrides={"ack-rdma:vpcCidr": "10.0.0.0/33"})

    planned = plan("dev", tmp_path, settings=broken, monkeypatch=monkeypatch)
    assert planned.status == 2 and planned.stdout == ""
    assert planned.stderr.startswith("error: Stack config of stack 'dev' is invalid")
    assert "ack-rdma:vpcCidr '10.0.0.0/33' is not a CIDR block" in planned.stderr
    assert planned.stderr.count("\n") == 1 and "Traceback" not in planned.stderr
    assert not planned.manifests.exists()


def run_python(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Python in the project directory. Event loops left open are reported whenever the interpreter finalizes
    them, even mid-shutdown; this shows each one at once, so a leak fails every time, not now and then."""
    return subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", *arguments],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_module(*arguments: str) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "offline_engine.plan", *arguments)


def test_an_error_raised_while_the_program_runs_exits_2_with_its_message(tmp_path: Path) -> None:
    """The ACR lookup fails inside an apply, with the program's resources half declared. In a process of its
    own, to see all a user sees: the run must leave nothing for the interpreter's exit to report."""
    script = (
        "import sys\n"
        "from offline_engine import plan\n"
        "from offline_engine.stack_files import load_stack_settings\n"
        "plan.load_stack_settings = lambda stack, **_: load_stack_settings(\n"
        "    stack, overrides={'ack-rdma:registryInstanceId': 'not-an-instance'})\n"
        f"sys.exit(plan.main(['--stack', 'dev', '--out', {str(tmp_path)!r}]))\n"
    )
    done = run_python("-c", script)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ACR Enterprise Edition instance not-an-instance was not found")
    assert "set ack-rdma:registryInstanceId" in done.stderr and done.stderr.count("\n") == 1


def test_colour_on_a_terminal(tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    environment = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    with subprocess.Popen(
        [sys.executable, "-m", "offline_engine.plan", "--stack", "dev", "--out", str(tmp_path)],
        cwd=PROJECT_DIR,
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=environment,
    ) as process:
        os.close(secondary)
        received = bytearray()
        with contextlib.suppress(OSError):  # EIO: the child closed the terminal
            while chunk := os.read(primary, 65536):
                received += chunk
        assert process.wait(timeout=60) == 0
    os.close(primary)
    text = received.decode().replace("\r\n", "\n")
    assert re.search(r"^ +kubeconfig +: \x1b\[35m\[secret\]\x1b\[0m$", text, re.MULTILINE)
    assert re.search(r"^\x1b\[32m\+\x1b\[0m \x1b\[32mpulumi:pulumi:Stack\x1b\[0m", text, re.MULTILINE)


def test_no_color_turns_colour_off_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert plan_cli._colour()
    monkeypatch.setenv("NO_COLOR", "1")
    assert not plan_cli._colour()


def test_module_entry_point_plans_and_replaces_stale_manifests(
    tmp_path: Path, plans: dict[str, Planned]
) -> None:
    stale = tmp_path / "dev" / "manifests" / "09-pod-default-left-over.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("---\n")
    done = run_module("--stack", "dev", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert not ANSI.search(done.stdout)
    assert not stale.exists()
    assert sorted(path.name for path in stale.parent.iterdir()) == sorted(
        p.name for p in plans["dev"].manifests.iterdir()
    )
    assert re.search(r"^Duration: \d+\.\ds$", done.stdout, re.MULTILINE)


def test_module_entry_point_names_the_stacks_for_an_unknown_one(tmp_path: Path) -> None:
    done = run_module("--stack", "staging", "--out", str(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "Pulumi.staging.yaml: no such stack file; the stacks here are: " + ", ".join(STACKS) in done.stderr
    assert not (tmp_path / "staging").exists()
