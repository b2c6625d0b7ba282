"""Trust policies of web-identity roles, evaluated as STS does for AssumeRoleWithWebIdentity (the IRSA
exchange) while IAM is enforced; moto lets any token assume any role.

The token's signature is NOT verified: AWS checks it against the OIDC provider's JWKS, the emulator only
decodes the JWT's payload and trusts its claims (``token_claims``). The expiry and the provider's client-ID
list are not checked either. What is evaluated (``trust_allows``) is the role's trust policy against those
claims: an Allow statement must cover ``sts:AssumeRoleWithWebIdentity``, name as ``Principal.Federated`` the
IAM OIDC provider of the token's issuer (``arn:aws:iam::<account>:oidc-provider/<iss without https://>``),
which must exist, and all its Conditions must hold; a matching Deny wins. Conditions know the operators
StringEquals and StringLike (plain or ``ForAnyValue:``) on the keys ``<issuer>:sub``, ``<issuer>:aud`` and
``<issuer>:amr``; a list claim (``aud`` of Kubernetes tokens) matches when any of its values does. What is
not known here (another operator or key, NotAction, NotPrincipal) fails closed: such an Allow does not apply,
such a Deny does. The operators match values as ``conditions`` (the identity-policy evaluator) does; the claim
keys and their list semantics are this module's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from urllib.parse import unquote

from eksflow_dev.emulator.conditions import value_matches, wildcard

ACTION = "sts:AssumeRoleWithWebIdentity"
NOT_AUTHORIZED = f"Not authorized to perform {ACTION}"
INVALID_IDENTITY_MESSAGE = (  # STS's wording for InvalidIdentityTokenException
    "The web identity token that was passed could not be validated by Amazon Web Services. "
    "Get a new identity token from the identity provider and then retry the request."
)
CLAIM_KEYS = frozenset({"sub", "aud", "amr"})


class InvalidToken(ValueError):
    """The web identity token is not a JWT with an issuer."""


def token_claims(token: str) -> dict:
    """The JWT's payload, decoded without verifying the signature (see the module docstring)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("a JWT has three dot-separated parts")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError as error:  # binascii, Unicode and JSON errors are ValueErrors
        raise InvalidToken(f"undecodable payload: {error}") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("iss"), str):
        raise InvalidToken("the payload has no issuer")
    return claims


def trust_document(text: str) -> dict:
    """A role's AssumeRolePolicyDocument: JSON, possibly URL-encoded as IAM returns it; {} if neither."""
    for candidate in (text, unquote(text)):
        try:
            document = json.loads(candidate)
        except (TypeError, ValueError):
            continue
        return document if isinstance(document, dict) else {}
    return {}


def _values(value) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


_OPERATORS = frozenset({"StringEquals", "StringLike"})  # matched as conditions.value_matches does


def _condition_holds(operator: str, key: str, expected, claims: dict, issuer: str) -> bool | None:
    """None when the operator or the key is unknown here: the caller fails closed."""
    qualifier, _, name = operator.rpartition(":")
    prefix, _, claim = key.rpartition(":")
    if qualifier not in {"", "ForAnyValue"} or name not in _OPERATORS:
        return None
    if prefix.lower() != issuer.lower() or claim.lower() not in CLAIM_KEYS:
        return None
    actual = _values(claims.get(claim.lower()))
    return any(value_matches(name, _values(expected), value) for value in actual)


def _conditions_hold(conditions, claims: dict, issuer: str) -> bool | None:
    if not isinstance(conditions, dict):
        return None
    results = []
    for operator, keys in conditions.items():
        if not isinstance(keys, dict):
            return None
        results += [_condition_holds(operator, key, expected, claims, issuer) for key, expected in keys.items()]
    if None in results:
        return None
    return all(results)


def _statement_matches(statement: dict, claims: dict, issuer: str, providers: Collection[str]) -> bool | None:
    """True/False, or None when it cannot be evaluated here (NotAction, NotPrincipal, unknown condition)."""
    if "Action" not in statement or "Principal" not in statement:
        return None
    if not any(wildcard(pattern, ACTION, ignore_case=True) for pattern in _values(statement["Action"])):
        return False
    principal = statement["Principal"]
    federated = _values(principal.get("Federated")) if isinstance(principal, dict) else _values(principal)
    named = [arn for arn in federated if arn == "*" or arn.endswith(f":oidc-provider/{issuer}")]
    if statement.get("Effect") == "Allow":
        named = [arn for arn in named if arn in providers]
    if not named:
        return False
    return _conditions_hold(statement.get("Condition", {}), claims, issuer)


def trust_allows(claims: dict, document: dict, oidc_provider_arns: Collection[str]) -> bool:
    """Whether a token with these (unverified) claims may assume the role with this trust policy, given the
    ARNs of the IAM OIDC providers of the role's account."""
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss.startswith("https://"):
        return False
    issuer = iss.removeprefix("https://")
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    allowed = False
    for statement in statements if isinstance(statements, list) else []:
        if not isinstance(statement, dict):
            continue
        matches = _statement_matches(statement, claims, issuer, oidc_provider_arns)
        if statement.get("Effect") == "Deny" and matches is not False:  # fail closed: unknown denies
            return False
        allowed = allowed or (statement.get("Effect") == "Allow" and matches is True)
    return allowed


def _sts_error(code: str, message: str, status: int) -> Exception:
    # moto's XML error; its authorization step (where this check runs) answers only HTTPExceptions.
    from moto.core.exceptions import _RESTError

    error = _RESTError(code, message)
    error.code = status
    return error


def check_web_identity_trust(response) -> None:
    """Raise STS's error unless the request's web identity token may assume its RoleArn (moto's request)."""
    from moto.iam.models import iam_backends

    try:
        claims = token_claims(response._get_param("WebIdentityToken") or "")
    except InvalidToken:
        raise _sts_error("InvalidIdentityToken", INVALID_IDENTITY_MESSAGE, 400) from None
    role_arn = response._get_param("RoleArn") or ""
    parts = role_arn.split(":")
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        raise _sts_error("AccessDenied", NOT_AUTHORIZED, 403)
    partition, account = parts[1], parts[4]
    if account not in iam_backends or partition not in iam_backends[account]:
        raise _sts_error("AccessDenied", NOT_AUTHORIZED, 403)
    backend = iam_backends[account][partition]
    role = next((r for r in backend.get_roles() if r.arn == role_arn), None)
    if role is None or not trust_allows(
        claims, trust_document(role.assume_role_policy_document or ""), backend.open_id_providers
    ):
        raise _sts_error("AccessDenied", NOT_AUTHORIZED, 403)
