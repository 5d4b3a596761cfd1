"""A 403 explained for the way the connector signed in: the client subclasses of delegated access and of
managed identities say what *their* caller lacks (a person's View data role; an identity's Ip.Read.All
grant), where the base client's message speaks of an app registration's consent."""

from __future__ import annotations

from connector.client import MdeClient
from connector.errors import PermissionDeniedError
from connector.lanes import Admission
from connector.results import OrgStatistics


class ExplainsForbidden(MdeClient):
    """An MdeClient whose 403s are reworded by ``explain_forbidden`` (None keeps the base message)."""

    def ip_stats(self, ip: str, lookback_hours: int, deadline: float,
                 admission: Admission | None = None) -> OrgStatistics:
        try:
            return super().ip_stats(ip, lookback_hours, deadline, admission)
        except PermissionDeniedError as exc:
            if exc.http_status != 403:
                raise
            explained = self.explain_forbidden(exc, deadline)
            if explained is None:
                raise
            raise explained from None

    def explain_forbidden(self, exc: PermissionDeniedError, deadline: float) -> PermissionDeniedError | None:
        return None
