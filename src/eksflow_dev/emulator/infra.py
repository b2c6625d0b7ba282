"""Where moto 5.2.5 reads back differently what Terraform wrote, so that a second ``plan`` after applying
``terraform/envs/dev`` to the emulator would show changes that real AWS would not:

- RDS: parameters set through ModifyDBParameterGroup carry ``Source: user`` (the provider keeps only
  user-sourced parameters, so without it every plan re-adds ``rds.force_ssl``);
- RDS: ``PerformanceInsightsEnabled`` and ``PerformanceInsightsKMSKeyId`` are kept from CreateDBInstance
  (moto drops them);
- EC2: a flow log into ``arn:aws:s3:::bucket/prefix/`` checks that the bucket exists (moto looks for a
  bucket named ``bucket/prefix/`` and refuses);
- EC2: revoking a security-group rule by an unknown rule ID answers ``InvalidSecurityGroupRuleId.NotFound``
  as AWS does (moto says ``InvalidPermission.NotFound``, which the provider does not read as "already gone";
  once in about seven destroys a rule was already missing and the destroy failed on it);
- EC2: deleting a launch template by an unknown ID answers ``InvalidLaunchTemplateId.NotFound`` as AWS does
  (moto says ``InvalidLaunchTemplateName.NotFoundException``; a destroy under load retried the delete after
  a slow answer and failed on the template it had just deleted);
- EC2: a launch template's own tags (ResourceType ``launch-template``) are not copied into its launch
  data's TagSpecifications (real EC2 keeps them apart; the provider would remove them on every plan).

- SQS: SetQueueAttributes changes only the attributes it names (moto cleared a queue's ``Policy`` whenever another
  attribute was set: the queue policy Terraform had just put vanished once the DLQ's redrive-allow policy was set,
  and the provider waited for it forever);
- SQS: ``RedriveAllowPolicy`` is kept and read back (moto dropped it, and refused its name in GetQueueAttributes);
  ``RedrivePolicy`` reads back as compact JSON, as AWS writes it (moto's ``", "`` and ``": "`` made every plan
  update the queue).

EKS gaps are in ``eks``. Each patch is covered by the Terraform apply test's clean second plan.
"""

from __future__ import annotations

import inspect
import json


def _rds_user_parameters() -> None:
    from moto.rds.models import DBParameterGroup

    original = DBParameterGroup.update_parameters

    def update_parameters(self, new_parameters):
        original(self, [{**parameter, "Source": "user"} for parameter in new_parameters])

    DBParameterGroup.update_parameters = update_parameters


def _rds_performance_insights() -> None:
    from moto.rds.models import RDSBackend

    original = RDSBackend.create_db_instance

    def create_db_instance(self, db_kwargs):
        database = original(self, db_kwargs)
        database.performance_insights_enabled = bool(db_kwargs.get("enable_performance_insights"))
        database.performance_insights_kms_key_id = db_kwargs.get("performance_insights_kms_key_id")
        return database

    RDSBackend.create_db_instance = create_db_instance


def _launch_template_own_tags_apart() -> None:
    from moto.ec2.models.launch_templates import LaunchTemplateBackend

    original = LaunchTemplateBackend.create_launch_template

    def create_launch_template(self, name, description, template_data, tag_spec):
        specs = template_data.get("TagSpecifications") or []
        kept = [spec for spec in specs if spec.get("ResourceType") != "launch-template"]
        return original(self, name, description, {**template_data, "TagSpecifications": kept}, tag_spec)

    LaunchTemplateBackend.create_launch_template = create_launch_template


def _flow_logs_into_a_bucket_prefix() -> None:
    from moto.ec2.models.flow_logs import FlowLogsBackend

    original = FlowLogsBackend.create_flow_logs
    signature = inspect.signature(original)

    def create_flow_logs(self, *args, **kwargs):
        call = dict(signature.bind(self, *args, **kwargs).arguments)
        del call["self"]
        destination = call.get("log_destination") or ""
        if call.get("log_destination_type") != "s3" or "/" not in destination.split(":::", 1)[-1]:
            return original(self, **call)
        bucket_arn = destination.split("/", 1)[0]
        flow_logs, unsuccessful = original(self, **{**call, "log_destination": bucket_arn})
        for flow_log in flow_logs:
            flow_log.log_destination = destination
        return flow_logs, unsuccessful

    FlowLogsBackend.create_flow_logs = create_flow_logs


def _unknown_rule_ids_are_not_found() -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.security_groups import SecurityGroupBackend

    original = SecurityGroupBackend.revoke_security_group_ingress
    signature = inspect.signature(original)

    def revoke_security_group_ingress(self, *args, **kwargs):
        call = signature.bind(self, *args, **kwargs).arguments
        group = self.get_security_group_by_name_or_id(call["group_name_or_id"], call.get("vpc_id"))
        known = {rule.id for rule in group.ingress_rules} if group else set()
        for rule_id in call.get("security_rule_ids") or []:
            if group and rule_id not in known:
                raise EC2ClientError(
                    "InvalidSecurityGroupRuleId.NotFound", f"The security group rule ID '{rule_id}' does not exist"
                )
        return original(self, *args, **kwargs)

    SecurityGroupBackend.revoke_security_group_ingress = revoke_security_group_ingress


def _unknown_launch_template_ids_are_not_found() -> None:
    from moto.ec2.exceptions import InvalidLaunchTemplateIdNotFound
    from moto.ec2.models.launch_templates import LaunchTemplateBackend

    original = LaunchTemplateBackend.delete_launch_template

    def delete_launch_template(self, name, tid):
        if not name and tid is not None and tid not in self.launch_templates:
            raise InvalidLaunchTemplateIdNotFound(tid)
        return original(self, name, tid)

    LaunchTemplateBackend.delete_launch_template = delete_launch_template


def _sqs_set_only_the_named_attributes() -> None:
    from moto.sqs.models import Queue

    original = Queue._set_attributes
    Queue.policy = None  # before a queue's first _set_attributes

    def _set_attributes(self, attributes, now=None):
        kept = self.policy
        original(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = kept
        if not self.redrive_allow_policy:  # "" resets it: the attribute is then absent, as in AWS
            self.redrive_allow_policy = None

    Queue._set_attributes = _set_attributes


def _sqs_redrive_allow_policy() -> None:
    from moto.sqs.models import Queue

    Queue.redrive_allow_policy = None  # a queue without one: not in its attributes (None values are left out)
    Queue.BASE_ATTRIBUTES = [*Queue.BASE_ATTRIBUTES, "RedriveAllowPolicy"]
    attributes = Queue.attributes.fget

    def compact_redrive_policy(self) -> dict:
        result = attributes(self)
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    Queue.attributes = property(compact_redrive_policy)


def patch_infra() -> None:
    _rds_user_parameters()
    _rds_performance_insights()
    _launch_template_own_tags_apart()
    _flow_logs_into_a_bucket_prefix()
    _unknown_rule_ids_are_not_found()
    _unknown_launch_template_ids_are_not_found()
    _sqs_set_only_the_named_attributes()
    _sqs_redrive_allow_policy()
