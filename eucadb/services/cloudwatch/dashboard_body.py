"""Validation of a DashboardBody, after the structure AWS documents.

Source: "Dashboard Body Structure and Syntax",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html
— a JSON object that must include a `widgets` array (which may be empty) of 0 to 500 widget objects;
each widget has a `type` (metric, text, log, alarm, explorer, custom), a `properties` object, and
optional grid placement: x 0-23, y >= 0, width 1-24, height 1-1000.

Problems come back as DashboardValidationMessages (DataPath + Message). Errors refuse the body;
warnings let it be stored ("If this result includes only warning messages, then the input was valid
enough for the dashboard to be created or modified, but some elements of the dashboard might not
render", model, PutDashboardOutput): members the structure does not define are warnings.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from eucadb.services import bounds
from eucadb.services.cloudwatch.limits import MAX_DOCUMENT_DEPTH

MAX_WIDGETS = 500
WIDGET_TYPES = ("metric", "text", "log", "alarm", "explorer", "custom")
TOP_LEVEL = ("widgets", "start", "end", "periodOverride", "variables")
WIDGET_MEMBERS = ("type", "properties", "x", "y", "width", "height")
# placement member → inclusive range
PLACEMENT = {"x": (0, 23), "y": (0, 2 ** 31 - 1), "width": (1, 24), "height": (1, 1000)}


@dataclass
class Findings:
    errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors.append({"DataPath": path, "Message": message})

    def warn(self, path: str, message: str) -> None:
        self.warnings.append({"DataPath": path, "Message": message})


def _widget(widget: object, path: str, out: Findings) -> None:
    if not isinstance(widget, dict):
        out.error(path, "Should be object")
        return
    kind = widget.get("type")
    if kind is None:
        out.error(path, "Should have required property 'type'")
    elif kind not in WIDGET_TYPES:
        out.error(f"{path}/type", f"Should be equal to one of the allowed values: {', '.join(WIDGET_TYPES)}")
    if "properties" not in widget:
        out.error(path, "Should have required property 'properties'")
    elif not isinstance(widget["properties"], dict):
        out.error(f"{path}/properties", "Should be object")
    for member, (low, high) in PLACEMENT.items():
        if member not in widget:
            continue
        value = widget[member]
        if isinstance(value, bool) or not isinstance(value, int):
            out.error(f"{path}/{member}", "Should be integer")
        elif not low <= value <= high:
            out.error(f"{path}/{member}", f"Should be between {low} and {high}")
    for member in widget:
        if member not in WIDGET_MEMBERS:
            out.warn(f"{path}/{member}", "Should NOT have additional properties")


def validate(body: str) -> Findings:
    out = Findings()
    try:
        doc = bounds.load_json(body, MAX_DOCUMENT_DEPTH)
    except bounds.Malformed:
        out.error("", "The field DashboardBody must be a valid JSON object")
        return out
    if not isinstance(doc, dict):
        out.error("", "The field DashboardBody must be a valid JSON object")
        return out
    if "widgets" not in doc:
        out.error("/", "Should have required property 'widgets'")
        return out
    widgets = doc["widgets"]
    if not isinstance(widgets, list):
        out.error("/widgets", "Should be array")
        return out
    if len(widgets) > MAX_WIDGETS:
        out.error("/widgets", f"Should NOT have more than {MAX_WIDGETS} items")
        return out
    for i, widget in enumerate(widgets):
        _widget(widget, f"/widgets/{i}", out)
    for member in doc:
        if member not in TOP_LEVEL:
            out.warn(f"/{member}", "Should NOT have additional properties")
    return out
