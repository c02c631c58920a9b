"""Security events: one structured log line each, with the request id, never a secret.

The events auth-service logs (field `security_event`, logger `security`):

  login_failed          reason, account_id (known email) or null, email_hash
  refresh_token_reuse   session_id, account_id, session_revoked
  session_revoked       session_id, account_id, reason ("logout")
  role_changed          account_id, old_role, new_role, changed_by, sessions_revoked
  admin_created         account_id (the ADMIN from ADMIN_EMAIL/ADMIN_PASSWORD)
  admin_email_taken     account_id (ADMIN_EMAIL belongs to a non-ADMIN; left unchanged)
  signing_key_created   kid (the first key of an empty key directory)
  signing_key_rotated   kid, pruned

shop_common adds `direct_call_refused` for requests without a gateway credential.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from shop_common.logging import log_security_event, request_id_var

# Public and fixed: it separates this digest from any other use of SHA-256 of an email
# (see docs/decisions/auth-audit-log.md); it is not a secret.
_EMAIL_HASH_KEY = b"shop-auth/audit-email/v1"


def security_event(event: str, **fields: Any) -> None:
    """Log one security event; the record carries the request id being handled."""
    request_id = request_id_var.get()
    if request_id is not None:
        fields.setdefault("request_id", request_id)
    log_security_event(event, **fields)


def email_hash(email: str) -> str:
    """A pseudonym for an address in the logs: equal addresses give equal values.

    Never the address itself: people type passwords into the email field, and logs
    travel further than the database.
    """
    message = email.strip().lower().encode("utf-8", "surrogatepass")
    return hmac.new(_EMAIL_HASH_KEY, message, hashlib.sha256).hexdigest()[:16]
