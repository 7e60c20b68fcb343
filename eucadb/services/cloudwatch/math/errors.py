"""Errors of a bad expression, worded once: every refusal is a ValidationError naming the query Id."""
from __future__ import annotations

from eucadb.services.cloudwatch.errors import ApiError


class ExpressionError(Exception):
    """A problem in one expression; `in_query` turns it into the API error for that query Id."""

    def __init__(self, detail: str, position: int | None = None):
        super().__init__(detail)
        self.detail, self.position = detail, position

    def in_query(self, query_id: str) -> ApiError:
        where = f" (at character {self.position + 1})" if self.position is not None else ""
        return ApiError("ValidationError", f"Error in expression {query_id}: {self.detail}{where}")


def validation(message: str) -> ApiError:
    return ApiError("ValidationError", message)
