"""The policy pack's verdict on a planned stack, as ``pulumi preview --policy-pack policy`` would give it.

The pack's rules (``policy/ack_rdma_policy/rules.py``) run over the resources of the preview run in the shapes
CrossGuard hands them over (``offline_engine.policy_records``), with the pack's default config. Every rule of
the pack is mandatory: one violation fails the preview, and the offline plan exits non-zero for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offline_engine.offline_run import ProgramRun
from offline_engine.policy_records import declared
from policy.ack_rdma_policy.rules import RULES, Violation, evaluate

POLICY_PACK_DIR = "policy"


@dataclass(frozen=True)
class PolicyVerdict:
    policies: tuple[str, ...]
    """Names of the pack's policies, all mandatory."""
    violations: tuple[Violation, ...]
    resources_checked: int
    """Resources at least one policy applied to."""

    @property
    def passed(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, Any]:
        return {
            "pack": POLICY_PACK_DIR,
            "policies": list(self.policies),
            "passed": self.passed,
            "resourcesChecked": self.resources_checked,
            "violations": [
                {
                    "policy": violation.policy,
                    "enforcementLevel": "mandatory",
                    "resourceType": violation.resource_type,
                    "resourceName": violation.resource_name,
                    "message": violation.message,
                }
                for violation in self.violations
            ],
        }


def policy_verdict(run: ProgramRun) -> PolicyVerdict:
    records = declared(run)
    report = evaluate(records)
    applicable = sum(1 for record in records if any(rule.applies_to(record.type) for rule in RULES))
    return PolicyVerdict(
        policies=tuple(rule.name for rule in RULES),
        violations=report.violations,
        resources_checked=applicable,
    )
