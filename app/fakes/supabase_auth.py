"""A fake Supabase Auth signing service: an ES256 and an RS256 key, published as the project's
JWKS at `/auth/v1/.well-known/jwks.json`, and access tokens signed with them as Supabase
signs them (`kid` in the header; `aud` authenticated, `sub`, `role`, `exp`, `iss`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI

from app.fakes import server

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


class FakeSupabaseAuth:
    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, Any]] = {}
        self.jwks_requests = 0
        self.add_key("ES256")
        self.add_key("RS256")

    def add_key(self, algorithm: str) -> str:
        """A new signing key (a rotation); returns its kid."""
        private: Any
        if algorithm == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = str(uuid.uuid4())
        self._keys[kid] = (algorithm, private)
        return kid

    def kid(self, algorithm: str) -> str:
        """The newest key of this algorithm."""
        return [kid for kid, (alg, _) in self._keys.items() if alg == algorithm][-1]

    def sign(
        self,
        user_id: uuid.UUID,
        algorithm: str,
        *,
        kid: str | None = None,
        header_kid: str | None = None,
        ttl: timedelta = timedelta(hours=1),
        **claims: Any,
    ) -> str:
        """A token signed with key `kid` (the newest of `algorithm` by default); `header_kid`
        names another key in its header, as a forger would."""
        kid = kid or self.kid(algorithm)
        now = datetime.now(UTC)
        body = {
            "sub": str(user_id),
            "aud": "authenticated",
            "role": "authenticated",
            "iat": now,
            "exp": now + ttl,
            **claims,
        }
        return jwt.encode(body, self._keys[kid][1], algorithm, headers={"kid": header_kid or kid})

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, (algorithm, private) in self._keys.items():
            jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(private.public_key()))
            keys.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})
        return {"keys": keys}

    @contextmanager
    def serve(self, *, port: int = 0) -> Iterator[server.RunningServer]:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

        @app.get(JWKS_PATH)
        def jwks() -> dict[str, Any]:
            self.jwks_requests += 1
            return self.jwks()

        with server.serve(app, port=port) as running:
            yield running
