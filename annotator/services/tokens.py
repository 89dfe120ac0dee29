"""Writes for personal API tokens: create (the key is returned once), revoke, authenticate."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from annotator.models import ApiToken

KEY_PREFIX = "sa_"
# How stale last_used_at may get before a request writes it again: one write per minute at most
# per token, instead of one per API call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    key: str  # shown to the user once; only its hash is stored


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def token_create(*, user, name: str) -> NewToken:
    """Create a personal API token. The plain key is in the result and nowhere else."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name.strip(), prefix=key[:10], key_hash=token_hash(key))
    token.full_clean()
    token.save()
    return NewToken(token=token, key=key)


def token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token; it stays listed (with its revocation time) but no longer authenticates."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_authenticate(*, key: str) -> ApiToken | None:
    """The active token whose key this is (with its active user), or None."""
    # get(), not first(): the hash is unique, and first() adds an ORDER BY to every API call.
    try:
        token = ApiToken.objects.select_related("user").get(key_hash=token_hash(key),
                                                            revoked_at__isnull=True)
    except ApiToken.DoesNotExist:
        return None
    if not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
