"""IAM enforcement in the local emulator, the IRSA path: a pod's token is exchanged for its role's session with
AssumeRoleWithWebIdentity, then every call is checked against that role's policies.

AWS accepts AssumeRoleWithWebIdentity and AssumeRoleWithSAML unsigned (the token is the credential); moto
5.2.5 with enforcement on demands a signature on them and fails. They are exempted here, exactly those two
STS actions. Enforcement itself is moto's (``POST /moto-api/reset-auth`` with body ``0``); it does not
evaluate IAM Conditions.
"""

from __future__ import annotations

UNSIGNED_STS_ACTIONS = frozenset({"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"})


def patch_unsigned_sts() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def _authenticate_and_authorize_action(self, iam_request_cls, resource="*"):
        if getattr(self, "service_name", None) == "sts" and self._get_action() in UNSIGNED_STS_ACTIONS:
            return None
        return original(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate_and_authorize_action
