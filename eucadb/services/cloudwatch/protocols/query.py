"""AWS Query: form-encoded parameters in, XML out (euca2ools, older SDKs)."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

from botocore.model import OperationModel

from eucadb.services.cloudwatch.errors import ApiError, invalid, missing
from eucadb.services.cloudwatch.model import XMLNS
from eucadb.services.cloudwatch.protocols import HttpRequest, HttpResponse, error_shape
from eucadb.services.cloudwatch.shapes import from_query, query_tree, to_xml, xml_safe

MAX_FIELDS = 200_000
XML_TYPE = ("Content-Type", "text/xml")


def form_params(request: HttpRequest) -> dict[str, str]:
    """Query-string and form body parameters together (GET and POST are both allowed)."""
    try:
        pairs = parse_qsl(request.query, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
        if request.body:
            text = request.body.decode("utf-8")
            pairs += parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise invalid("The request parameters are not valid form-encoded UTF-8.") from None
    return dict(pairs)


class AwsQuery:
    name = "query"

    def matches(self, request: HttpRequest) -> bool:
        return True

    def operation_name(self, request: HttpRequest) -> str:
        action = form_params(request).get("Action")
        if not action:
            raise missing("Action")
        return action

    def decode(self, request: HttpRequest, op: OperationModel) -> dict[str, Any]:
        if op.input_shape is None:
            return {}
        return from_query(op.input_shape, query_tree(form_params(request)))

    def encode(self, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
        root = ET.Element(f"{op.name}Response", xmlns=XMLNS)
        shape = op.output_shape
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper", f"{op.name}Result")
            to_xml(root, shape, result, wrapper)
        meta = ET.SubElement(root, "ResponseMetadata")
        ET.SubElement(meta, "RequestId").text = request_id
        return HttpResponse(200, [XML_TYPE], ET.tostring(root, encoding="utf-8", xml_declaration=True))

    def error(self, err: ApiError, request_id: str) -> HttpResponse:
        root = ET.Element("ErrorResponse", xmlns=XMLNS)
        node = ET.SubElement(root, "Error")
        ET.SubElement(node, "Type").text = "Sender" if err.sender else "Receiver"
        ET.SubElement(node, "Code").text = xml_safe(err.code)
        ET.SubElement(node, "Message").text = xml_safe(err.message)
        shape = error_shape(err)
        for member, value in err.details.items():
            if shape is not None and member in shape.members:
                to_xml(node, shape.members[member], value, member)
        ET.SubElement(root, "RequestId").text = request_id
        return HttpResponse(err.status, [XML_TYPE], ET.tostring(root, encoding="utf-8", xml_declaration=True))

    def unknown_operation(self, name: str) -> ApiError:
        return ApiError("InvalidAction", f"The action {name[:100]} is not valid for this web service.")
