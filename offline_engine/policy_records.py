"""What the policy pack sees of a mock run: the program's resources as CrossGuard hands them to a rule.

Shared by the offline plan and the tests, so both question the pack's rules with the same records.
"""

from __future__ import annotations

from offline_engine.offline_run import ProgramRun, reveal
from policy.ack_rdma_policy.rules import ResourceRecord, stack_of_urn


def declared(run: ProgramRun) -> list[ResourceRecord]:
    """The run's custom resources: type token, logical name, camelCase inputs with secrets as plain values,
    and the stack (read from the URN, as the pack reads it)."""
    return [
        ResourceRecord(
            type=item.type, name=item.name, props=reveal(item.inputs), stack=stack_of_urn(item.urn)
        )
        for item in run.resources
        if item.custom
    ]
