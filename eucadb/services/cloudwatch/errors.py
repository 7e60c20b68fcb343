"""API errors as AWS names them: every failure a client can cause maps to one code and a 4xx.

Codes come from botocore's CloudWatch model (awsQueryCompatible), plus the auth and throttling codes
every AWS endpoint shares. Handlers raise `ApiError`; the protocol layer renders it.
"""
from __future__ import annotations

from typing import Any

import psycopg2
from sqlalchemy.exc import SQLAlchemyError

from eucadb.errors import DatabaseError, ServiceUnavailable

# A database that cannot be reached (pool not ready, connection refused, ...): the caller answers 503.
STORAGE_ERRORS: tuple[type[Exception], ...] = (ServiceUnavailable, DatabaseError, SQLAlchemyError, psycopg2.Error)


class ApiError(Exception):
    """An error answered to the client: AWS code, message, HTTP status, sender (client) fault."""

    def __init__(self, code: str, message: str, status: int = 400, sender: bool = True,
                 details: dict[str, Any] | None = None, shape: str | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.sender = code, message, status, sender
        self.details = details or {}   # members of the modeled error shape besides the message
        self.shape = shape             # the modeled shape when two share a code (JSON/CBOR `__type`)


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterValue", message)


def missing(name: str) -> ApiError:
    return ApiError("MissingParameter", f"The parameter {name} is required.")


def combination(message: str) -> ApiError:
    return ApiError("InvalidParameterCombination", message)


def limit(message: str) -> ApiError:
    return ApiError("LimitExceeded", message)


def validation(member: str, constraint: str) -> ApiError:
    """A model constraint broken, worded as AWS services word it (the model's ValidationException)."""
    return ApiError("ValidationError", f"1 validation error detected: Value at '{member}' failed to satisfy "
                                       f"constraint: {constraint}")


def serialization(message: str) -> ApiError:
    """A value the wire format carries but no member of its type can hold (Smithy's malformed requests)."""
    return ApiError("SerializationException", message)


def bad_token(message: str = "The NextToken is invalid.") -> ApiError:
    return ApiError("InvalidNextToken", message)


def not_found(message: str, shape: str = "ResourceNotFound") -> ApiError:
    """ResourceNotFound, 404 in all three protocols: the model's ResourceNotFound and
    DashboardNotFoundError carry both awsQueryError(code ResourceNotFound, httpResponseCode 404),
    which only the Query protocol uses, and httpError 404, which JSON 1.0 and RPC v2 CBOR use
    (Smithy model of CloudWatch, aws/api-models-aws; Smithy's awsQuery protocol documentation:
    "The aws.protocols#awsQueryError trait is only used when serializing operation errors using
    the aws.protocols#query protocol"). The two shapes share the code; `shape` names the one the
    operation models (GetDashboard / DeleteDashboards: DashboardNotFoundError)."""
    return ApiError("ResourceNotFound", message, 404, shape=shape)


def auth(code: str, message: str) -> ApiError:
    return ApiError(code, message, 403)


def unavailable(message: str) -> ApiError:
    return ApiError("ServiceUnavailable", message, 503, sender=False)


def unknown_operation(name: str) -> ApiError:
    """What AWS's JSON and CBOR front end answers for an operation it does not know (a Coral
    framework error, so its type is Coral's, not the service's; Query says InvalidAction)."""
    return ApiError("UnknownOperationException", f"The operation {name[:100]} is not valid for this web service.")


def resource_not_found(resource_type: str, resource_id: str, message: str) -> ApiError:
    """The tagging operations' ResourceNotFoundException (its shape carries ResourceType and ResourceId)."""
    return ApiError("ResourceNotFoundException", message, 404,
                    details={"ResourceType": resource_type, "ResourceId": resource_id})
