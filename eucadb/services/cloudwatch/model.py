"""botocore's CloudWatch service model, used server-side as the wire contract.

The same JSON that boto3 serialises requests from tells us how to decode them and how to shape the
responses, so the three protocols stay in step with what real clients send.
"""
from __future__ import annotations

from functools import lru_cache

import botocore.session
from botocore.model import OperationModel, ServiceModel

SERVICE = "monitoring"
TARGET_PREFIX = "GraniteServiceVersion20100801"
XMLNS = "http://monitoring.amazonaws.com/doc/2010-08-01/"
SHAPE_NAMESPACE = "com.amazonaws.cloudwatch"


@lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("cloudwatch")


@lru_cache(maxsize=1)
def error_shape_by_code() -> dict[str, str]:
    """AWS query error code → modeled shape name (JSON/CBOR `__type`)."""
    return {s.error_code: s.name for s in service_model().error_shapes if s.error_code}


def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)
