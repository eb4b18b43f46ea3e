"""MockCloud: Pulumi mocks that answer like Alibaba Cloud, Kubernetes and docker-build would.

Used by the program's tests, its benchmark and the offline plan. Ids have the real prefixes and are derived
from the resource's type and name (the same program gives the same plan); invoke results use the camelCase
names the SDKs read; outputs that only exist after creation (a cluster's ``vpcId`` and ``connections``, a node
pool's ``nodePoolId``, an image's ``digest``/``ref``) are filled in.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import Callable
from typing import Any

import pulumi
import yaml
from pulumi.runtime import MockCallArgs, MockResourceArgs, rpc

from offline_engine import cloud_facts
from offline_engine.addon_config import check_addon_config
from offline_engine.provider_constraints import check_invoke, check_resource

ENTERPRISE_TEMP_USER = "cr_temp_user"
# components.listener_acl.ListenerAcl, a dynamic resource: its type carries the module and name it declares.
LISTENER_ACL_TYPE = "pulumi-python:dynamic/slb:ListenerAcl"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _cloud_id(prefix: str, *parts: str, length: int = 22) -> str:
    """An Alibaba Cloud style id: prefix, dash, lower-case alphanumerics."""
    return f"{prefix}-{base64.b32encode(bytes.fromhex(_digest(*parts))).decode().lower()[:length]}"


class MockCloud(pulumi.runtime.Mocks):
    """Answers every resource and invoke the ack-rdma program uses; anything else is an error."""

    lookups_known = True
    """Lookups answer as a deployment would; the plan's cloud leaves what stock decides unknown."""

    def __init__(self, region: str = "cn-shanghai", *, preview: bool = False) -> None:
        self.region = region
        # In a preview docker-build builds (and pushes) nothing unless build_on_preview is on.
        self.preview = preview
        self._vpc_of_vswitch: dict[str, str] = {}
        self._resources: dict[str, Callable[[MockResourceArgs], tuple[str, dict[str, Any]]]] = {
            "alicloud:vpc/network:Network": self._vpc,
            "alicloud:vpc/switch:Switch": self._vswitch,
            "alicloud:ecs/securityGroup:SecurityGroup": self._security_group,
            "alicloud:ecs/securityGroupRule:SecurityGroupRule": self._security_group_rule,
            "alicloud:ecs/ecsDeploymentSet:EcsDeploymentSet": self._deployment_set,
            "alicloud:cs/managedKubernetes:ManagedKubernetes": self._cluster,
            "alicloud:cs/nodePool:NodePool": self._node_pool,
            "alicloud:cs/kubernetesAddon:KubernetesAddon": self._kubernetes_addon,
            "alicloud:cs/registryEnterpriseNamespace:RegistryEnterpriseNamespace": self._ee_namespace,
            "alicloud:cs/registryEnterpriseRepo:RegistryEnterpriseRepo": self._ee_repo,
            "alicloud:cr/namespace:Namespace": self._personal_namespace,
            "alicloud:cr/repo:Repo": self._personal_repo,
            "alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc": self._vpc_endpoint_link,
            "alicloud:cr/internetEndpoint:InternetEndpoint": self._internet_endpoint,
            "docker-build:index:Image": self._image,
            "pulumi:providers:kubernetes": self._kubernetes_provider,
            "alicloud:slb/acl:Acl": self._slb_acl,
            "alicloud:slb/aclEntryAttachment:AclEntryAttachment": self._slb_acl_entry,
            LISTENER_ACL_TYPE: self._listener_acl,
        }
        self._invokes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "alicloud:index/getZones:getZones": self._zones,
            "alicloud:cs/getKubernetesVersion:getKubernetesVersion": self._kubernetes_versions,
            "alicloud:cs/getClusterCredential:getClusterCredential": self._cluster_credential,
            "alicloud:cs/getRegistryEnterpriseInstances:getRegistryEnterpriseInstances": self._ee_instances,
        }

    # -- pulumi.runtime.Mocks ---------------------------------------------------------------------------
    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return None, {}
        check_resource(args.typ, args.name, args.inputs)
        if args.typ.startswith("kubernetes:"):
            return self._kubernetes_object(args)
        handler = self._resources.get(args.typ)
        if handler is None:
            raise NotImplementedError(f"MockCloud has no model of resource type {args.typ}; add one.")
        return handler(args)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        check_invoke(args.token, args.args)
        handler = self._invokes.get(args.token)
        if handler is None:
            raise NotImplementedError(f"MockCloud has no model of invoke {args.token}; add one.")
        return handler(args.args), []

    # -- network ----------------------------------------------------------------------------------------
    def _vpc(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        vpc_id = _cloud_id("vpc", args.typ, args.name)
        return vpc_id, {
            **args.inputs,
            "routeTableId": _cloud_id("vtb", vpc_id),
            "routerId": _cloud_id("vrt", vpc_id),
            "status": "Available",
            "resourceGroupId": _cloud_id("rg", self.region, length=20),
        }

    def _vswitch(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        vswitch_id = _cloud_id("vsw", args.typ, args.name)
        self._vpc_of_vswitch[vswitch_id] = args.inputs["vpcId"]
        return vswitch_id, {**args.inputs, "status": "Available"}

    def _security_group(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return _cloud_id("sg", args.typ, args.name, length=20), {**args.inputs, "innerAccessPolicy": "Accept"}

    def _security_group_rule(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        source = inputs.get("cidrIp") or inputs.get("sourceSecurityGroupId", "")
        rule_id = ":".join(
            str(part)
            for part in (
                inputs["securityGroupId"],
                inputs["type"],
                inputs["ipProtocol"],
                inputs.get("portRange", "-1/-1"),
                inputs.get("nicType", "intranet"),
                source,
                inputs.get("policy", "accept"),
                inputs.get("priority", 1),
            )
        )
        return rule_id, {**args.inputs, "securityGroupRuleId": _cloud_id("sgr", rule_id, length=20)}

    def _slb_acl(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return _cloud_id("acl", args.typ, args.name, length=20), {**args.inputs, "ipVersion": "ipv4"}

    def _slb_acl_entry(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        # The provider's id: <acl_id>:<entry>.
        return f"{args.inputs['aclId']}:{args.inputs['entry']}", dict(args.inputs)

    def _listener_acl(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outs = {key: value for key, value in args.inputs.items() if key != "__provider"}
        return f"{args.inputs['load_balancer_id']}:{args.inputs['listener_port']}", outs

    def _deployment_set(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return _cloud_id("ds", args.typ, args.name, length=20), {**args.inputs, "domain": "Default"}

    # -- ACK --------------------------------------------------------------------------------------------
    def _cluster(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        cluster_id = "c" + _digest(args.typ, args.name)[:32]
        vswitch_ids = args.inputs.get("vswitchIds", [])
        internet = bool(args.inputs.get("slbInternetEnabled"))
        public_ip = "47.100.{}.{}".format(*bytes.fromhex(_digest(cluster_id)[:4]))
        return cluster_id, {
            **args.inputs,
            "vpcId": self._vpc_of_vswitch.get(vswitch_ids[0], "") if vswitch_ids else "",
            "slbId": _cloud_id("lb", cluster_id),
            "natGatewayId": _cloud_id("ngw", cluster_id) if args.inputs.get("newNatGateway") else "",
            "workerRamRoleName": f"KubernetesWorkerRole-{_digest(cluster_id)[:8]}",
            "securityGroupId": args.inputs.get("securityGroupId", ""),
            "connections": [
                {
                    "apiServerInternet": f"https://{public_ip}:6443" if internet else "",
                    "apiServerIntranet": "https://192.168.0.253:6443",
                    "masterPublicIp": public_ip if internet else "",
                    "serviceDomain": f"*.{cluster_id}.{self.region}.alicontainer.com",
                }
            ],
            "certificateAuthorities": [self._certificates(cluster_id)],
        }

    def _node_pool(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        node_pool_id = "np" + _digest(args.typ, args.name)[:32]
        return f"{args.inputs['clusterId']}:{node_pool_id}", {
            **args.inputs,
            "nodePoolId": node_pool_id,
            "scalingGroupId": _cloud_id("asg", node_pool_id, length=20),
        }

    def _kubernetes_addon(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        check_addon_config(str(inputs["name"]), inputs.get("config"))
        # The provider's id is <cluster id>:<add-on name>. The installed version (Computed) is only known to
        # ACK: left out, it shows as known after deployment.
        return f"{inputs['clusterId']}:{inputs['name']}", dict(inputs)

    @staticmethod
    def _certificates(cluster_id: str) -> dict[str, str]:
        def pem(kind: str) -> str:
            body = base64.b64encode(bytes.fromhex(_digest(cluster_id, kind) * 4)).decode()
            return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"

        return {
            "clusterCert": pem("CERTIFICATE"),
            "clientCert": pem("CERTIFICATE"),
            "clientKey": pem("RSA PRIVATE KEY"),
        }

    # -- registries and images --------------------------------------------------------------------------
    def _ee_namespace(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.inputs['instanceId']}:{args.inputs['name']}", dict(args.inputs)

    def _ee_repo(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        return f"{inputs['instanceId']}:{inputs['namespace']}:{inputs['name']}", {
            **inputs,
            "repoId": _cloud_id("crr", inputs["instanceId"], inputs["name"], length=16),
        }

    def _vpc_endpoint_link(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        # The provider's id: <instance_id>:<vpc_id>:<module_name>.
        inputs = args.inputs
        return f"{inputs['instanceId']}:{inputs['vpcId']}:{inputs['moduleName']}", {
            **inputs,
            "status": "RUNNING",
        }

    def _internet_endpoint(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return str(args.inputs["instanceId"]), {**args.inputs, "status": "RUNNING"}

    def _personal_namespace(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return str(args.inputs["name"]), dict(args.inputs)

    def _personal_repo(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = args.inputs
        repository = f"{inputs['namespace']}/{inputs['name']}"
        return repository, {
            **inputs,
            "domainList": {
                "public": f"registry.{self.region}.aliyuncs.com",
                "internal": f"registry-internal.{self.region}.aliyuncs.com",
                "vpc": f"registry-vpc.{self.region}.aliyuncs.com",
            },
        }

    def _image(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        tags = list(args.inputs.get("tags", []))
        digest = "sha256:" + _digest(*tags, str(args.inputs.get("target", "")))
        state = {**args.inputs, "contextHash": _digest(str(args.inputs.get("context", "")))}
        built = not self.preview or bool(args.inputs.get("buildOnPreview"))
        if not (built and args.inputs.get("push")):
            # Not pushed: no digest yet, and docker-build's ref is then one of the tags.
            return digest, {**state, "ref": tags[0] if tags else ""}
        return digest, {**state, "digest": digest, "ref": f"{tags[0]}@{digest}" if tags else ""}

    # -- Kubernetes -------------------------------------------------------------------------------------
    def _kubernetes_provider(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return _digest(args.typ, args.name)[:8] + "-provider", dict(args.inputs)

    def _kubernetes_object(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        metadata = dict(args.inputs.get("metadata") or {})
        name = metadata.get("name", args.name)
        namespace = metadata.get("namespace")
        object_id = f"{namespace}/{name}" if namespace else str(name)
        metadata.setdefault("uid", _uid(args.typ, object_id))
        return object_id, {**args.inputs, "metadata": metadata}

    # -- invokes ----------------------------------------------------------------------------------------
    def _zones(self, args: dict[str, Any]) -> dict[str, Any]:
        """The zones of the region that sell the instance type, from the catalogue (cloud_facts): none for a
        type it does not hold (the data source filters on AvailableInstanceTypes only), the API's error for a
        region that does not exist, and unknown in a preview when stock decides."""
        instance_type = str(args.get("availableInstanceType") or "")
        try:
            zone_ids = cloud_facts.zones_selling(self.region, instance_type)
        except cloud_facts.CloudApiError as error:
            raise pulumi.RunError(f"alicloud:index/getZones:getZones: {error}") from None
        lookup_id = _digest(self.region, str(args))[:10]
        if zone_ids and not self.lookups_known:
            return {"zones": rpc.UNKNOWN, "ids": rpc.UNKNOWN, "id": lookup_id}
        zones = [
            {
                "id": zone_id,
                "availableInstanceTypes": [instance_type],
                "availableResourceCreations": ["VSwitch", "Instance", "Disk"],
            }
            for zone_id in zone_ids
        ]
        return {"zones": zones, "ids": list(zone_ids), "id": lookup_id}

    def _kubernetes_versions(self, args: dict[str, Any]) -> dict[str, Any]:
        """The versions ACK's release notes name (cloud_facts); unknown in a preview: ACK answers at deploy
        time which it offers a new cluster."""
        cloud_facts.region_zones(self.region)
        metadatas: Any = rpc.UNKNOWN
        if self.lookups_known:
            metadatas = [
                {"version": version, "runtimes": [{"name": "containerd", "version": runtime}]}
                for version, runtime in cloud_facts.KUBERNETES_VERSIONS.items()
            ]
        return {
            "clusterType": args.get("clusterType", "ManagedKubernetes"),
            "profile": args.get("profile", "Default"),
            "metadatas": metadatas,
            "id": _digest("versions", self.region)[:10],
        }

    def _cluster_credential(self, args: dict[str, Any]) -> dict[str, Any]:
        cluster_id = str(args["clusterId"])
        minutes = int(args.get("temporaryDurationMinutes") or 4320)
        expiration = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
        certificates = self._certificates(cluster_id)
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kubernetes",
                    "cluster": {
                        "server": "https://47.100.0.1:6443",
                        "certificate-authority-data": base64.b64encode(
                            certificates["clusterCert"].encode()
                        ).decode(),
                    },
                }
            ],
            "contexts": [
                {"name": cluster_id, "context": {"cluster": "kubernetes", "user": "kubernetes-admin"}}
            ],
            "current-context": cluster_id,
            "users": [
                {
                    "name": "kubernetes-admin",
                    "user": {
                        "client-certificate-data": base64.b64encode(
                            certificates["clientCert"].encode()
                        ).decode(),
                        "client-key-data": base64.b64encode(certificates["clientKey"].encode()).decode(),
                    },
                }
            ],
        }
        return {
            "clusterId": cluster_id,
            "clusterName": f"cluster-{cluster_id[:8]}",
            "kubeConfig": yaml.safe_dump(kubeconfig, sort_keys=False),
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "temporaryDurationMinutes": minutes,
            "certificateAuthorities": [certificates],
            "id": cluster_id,
        }

    def _ee_instances(self, args: dict[str, Any]) -> dict[str, Any]:
        # Only ids of the real form exist: a mistyped id gives the empty answer the API would.
        ids = [
            str(instance_id) for instance_id in args.get("ids") or [] if str(instance_id).startswith("cri-")
        ]
        instances = [
            {
                "id": instance_id,
                "name": f"registry-{instance_id[4:12]}",
                "region": self.region,
                "specification": "Basic",
                "namespaceQuota": "15",
                "namespaceUsage": "1",
                "repoQuota": "1000",
                "repoUsage": "2",
                "vpcEndpoints": [f"registry-{instance_id[4:12]}-registry-vpc.{self.region}.cr.aliyuncs.com"],
                "publicEndpoints": [f"registry-{instance_id[4:12]}-registry.{self.region}.cr.aliyuncs.com"],
                "authorizationToken": _digest("token", instance_id)[:40],
                "tempUsername": ENTERPRISE_TEMP_USER,
                "tags": {},
            }
            for instance_id in ids
        ]
        return {"instances": instances, "ids": ids, "names": [i["name"] for i in instances], "id": "ee"}


def _uid(*parts: str) -> str:
    digest = _digest(*parts)
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
