"""The rules as CrossGuard resource-validation policies, all mandatory."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .rules import RULES, ResourceRecord, Rule, check_resource, stack_of_urn

PACK_NAME = "ack-rdma"


def _validation(rule: Rule) -> ResourceValidation:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not rule.applies_to(args.resource_type):
            return
        # The URN carries the stack name; the SDK exposes no other per-resource handle on it.
        record = ResourceRecord(
            type=args.resource_type, name=args.name, props=args.props, stack=stack_of_urn(args.urn)
        )
        for violation in check_resource(rule, record, rule.read_config(args.get_config())):
            report_violation(violation.message, args.urn)

    return validate


def _policy(rule: Rule) -> ResourceValidationPolicy:
    schema = (
        PolicyConfigSchema(properties={key: dict(option.schema) for key, option in rule.config.items()})
        if rule.config
        else None
    )
    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=_validation(rule),
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=schema,
    )


def policies() -> list[ResourceValidationPolicy]:
    return [_policy(rule) for rule in RULES]


def serve() -> None:
    """Start the pack's analyzer for the Pulumi CLI (blocks; the CLI reads the port from stdout)."""
    pack_policies: list[Policy] = list(policies())
    PolicyPack(name=PACK_NAME, policies=pack_policies, enforcement_level=EnforcementLevel.MANDATORY)
