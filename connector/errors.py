"""One error hierarchy for everything that can go wrong in a lookup.

Each error carries what an analyst or a playbook needs to act on it: a category (the stable,
documented vocabulary of the result object), the HTTP status, Defender's or Entra ID's error code,
Defender's correlation id, and how long to wait before retrying. Messages are written for people and
never contain a secret or a token: build them from facts the connector chose, not from raw payloads.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """The error categories of the standard result object (see manifest.json)."""

    INVALID_INPUT = "invalid_input"
    CONFIGURATION = "configuration"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    NETWORK = "network"
    UNEXPECTED_RESPONSE = "unexpected_response"


class ConnectorError(Exception):
    """Base of every error the core turns into a failed result."""

    category: Category = Category.UNEXPECTED_RESPONSE

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.correlation_id = correlation_id
        self.retry_after_s = retry_after_s


class InvalidInputError(ConnectorError):
    category = Category.INVALID_INPUT


class ConfigurationError(ConnectorError):
    category = Category.CONFIGURATION


class AuthenticationError(ConnectorError):
    category = Category.AUTHENTICATION


class PermissionDeniedError(ConnectorError):
    category = Category.PERMISSION


class RateLimitedError(ConnectorError):
    category = Category.RATE_LIMITED


class UnavailableError(ConnectorError):
    category = Category.UNAVAILABLE


class NetworkError(ConnectorError):
    category = Category.NETWORK


class UnexpectedResponseError(ConnectorError):
    category = Category.UNEXPECTED_RESPONSE
