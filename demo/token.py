"""Print a bearer token for trying the APIs locally.

    python -m demo.token ops | storefront | member:self <member-id>

Signed with MF_JWT_SECRET (the same development default as the services when unset).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from memberflow_platform.auth import ALL_SCOPES, TokenVerifier
from memberflow_platform.settings import ServiceSettings


def token_for(scope: str, subject: str, ttl: timedelta = timedelta(hours=12)) -> str:
    defaults = ServiceSettings.model_fields
    secret = os.environ.get("MF_JWT_SECRET") or defaults["jwt_secret"].default.get_secret_value()
    verifier = TokenVerifier(
        secret,
        os.environ.get("MF_JWT_ISSUER", defaults["jwt_issuer"].default),
        os.environ.get("MF_JWT_AUDIENCE", defaults["jwt_audience"].default),
    )
    return verifier.issue(subject, [scope], ttl=ttl)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ALL_SCOPES or (argv[0] == "member:self" and len(argv) < 2):
        print(__doc__, file=sys.stderr)
        return 2
    subject = argv[1] if len(argv) > 1 else f"local-{argv[0]}"
    print(token_for(argv[0], subject))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
