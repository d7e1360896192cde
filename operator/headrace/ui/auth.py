"""Who may read what in `headrace ui --auth kubernetes`: the caller's own Kubernetes identity.

Each API request carries a bearer token (a ServiceAccount's from `kubectl create token`, or
any token the cluster accepts). The UI asks the cluster who it is (TokenReview) and whether
that identity may list FlowRuns in the namespace asked about (SubjectAccessReview), the model
of Argo Workflows' server in client auth mode: the UI's own account reads, but only what the
caller could have read. Answers are kept for a minute, so a page polling every second does
not cost two API calls a second.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from headrace.crd.models import GROUP

CACHE_SECONDS = 60.0


class Unauthenticated(Exception):
    """No token, or one the cluster does not accept: HTTP 401."""


@dataclass(frozen=True)
class Identity:
    username: str
    uid: str
    groups: tuple[str, ...]
    extra: tuple[tuple[str, tuple[str, ...]], ...]


class KubeAuth:
    """TokenReview and SubjectAccessReview with the UI's own client, cached per token."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.authn = client.AuthenticationV1Api(api_client)
        self.authz = client.AuthorizationV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self._identities: dict[str, tuple[float, Identity | None]] = {}
        self._decisions: dict[tuple[str, str], tuple[float, bool]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()  # tokens are not kept in memory

    def identity(self, token: str) -> Identity:
        """Who the token belongs to; Unauthenticated if no one."""
        if not token:
            raise Unauthenticated("no bearer token: send `Authorization: Bearer TOKEN`")
        key = self._key(token)
        now = time.monotonic()
        with self._lock:
            cached = self._identities.get(key)
        if cached is None or now - cached[0] > CACHE_SECONDS:
            review = self.authn.create_token_review(
                client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
            )
            status = review.status
            found = None
            if status is not None and status.authenticated and status.user is not None:
                user = status.user
                found = Identity(
                    username=user.username or "",
                    uid=user.uid or "",
                    groups=tuple(user.groups or ()),
                    extra=tuple(sorted((k, tuple(v)) for k, v in (user.extra or {}).items())),
                )
            cached = (now, found)
            with self._lock:
                self._identities[key] = cached
        if cached[1] is None:
            raise Unauthenticated("the cluster does not accept this token")
        return cached[1]

    def may_list(self, token: str, namespace: str) -> bool:
        """May the token's identity list FlowRuns in `namespace` ('' for every namespace)?"""
        who = self.identity(token)
        key = (self._key(token), namespace)
        now = time.monotonic()
        with self._lock:
            cached = self._decisions.get(key)
        if cached is not None and now - cached[0] <= CACHE_SECONDS:
            return cached[1]
        review = self.authz.create_subject_access_review(
            client.V1SubjectAccessReview(
                spec=client.V1SubjectAccessReviewSpec(
                    user=who.username,
                    uid=who.uid or None,
                    groups=list(who.groups),
                    extra={k: list(v) for k, v in who.extra} or None,
                    resource_attributes=client.V1ResourceAttributes(
                        group=GROUP, resource="flowruns", verb="list", namespace=namespace or None
                    ),
                )
            )
        )
        allowed = bool(review.status and review.status.allowed)
        with self._lock:
            self._decisions[key] = (now, allowed)
        return allowed

    def readable_namespaces(self, token: str) -> list[str] | None:
        """The namespaces whose FlowRuns the token may list; None for all of them."""
        if self.may_list(token, ""):
            return None
        names: list[Any] = [
            ns.metadata.name for ns in self.core.list_namespace().items if ns.metadata is not None
        ]
        return [name for name in names if self.may_list(token, name)]


COOKIE = "headrace-token"


def bearer(headers: Any, cookies: Any = None) -> str:
    """The token of an `Authorization: Bearer …` header, else of the page's cookie (which
    the page's sign-in sets, so plain links such as a result file's carry it too), or ''."""
    value = str(headers.get("Authorization", ""))
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return str((cookies or {}).get(COOKIE, "")).strip()
