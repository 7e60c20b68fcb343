"""PutDashboard, GetDashboard, ListDashboards and DeleteDashboards (local table cw_dashboards).

Errors as the model lists them per operation: PutDashboard refuses with InvalidParameterInput
(DashboardInvalidInputError, carrying dashboardValidationMessages), GetDashboard and DeleteDashboards
answer ResourceNotFound 404 for a dashboard that does not exist (DashboardNotFoundError; the API
reference lists it for DeleteDashboards, https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DeleteDashboards.html,
where "If there is an error during this call, no dashboards are deleted"), and bad names are
InvalidParameterValue outside PutDashboard.
"""
from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from eucadb.services.cloudwatch import arns, dashboard_body, limits, tags, tokens
from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.errors import ApiError, invalid, not_found
from eucadb.services.cloudwatch.service import CloudWatch
from eucadb.services.cloudwatch.tables import Dashboard

# "The maximum length is 255, and valid characters are A-Z, a-z, 0-9, "-", and "_"" (PutDashboard);
# the prefix of ListDashboards also allows "." (model documentation of both members).
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
PREFIX_RE = re.compile(r"[A-Za-z0-9._-]{0,255}")
PAGE = 1000          # "ListDashboards returns up to 1000 results on one page" (model documentation)
DASHBOARD_NOT_FOUND = "DashboardNotFoundError"   # the shape GetDashboard and DeleteDashboards model
MAX_DELETE = 100     # "You can specify up to 100 dashboards to delete" (model documentation)


def _input_error(message: str, messages: list[dict] | None = None) -> ApiError:
    return ApiError("InvalidParameterInput", message, details={"dashboardValidationMessages": messages or []})


def _check_name(name: str, where: str, error=invalid) -> None:
    if not NAME_RE.fullmatch(name):
        raise error(f"The value {name[:300]!r} for {where} is invalid: a dashboard name is 1 to 255 characters "
                    "A-Z, a-z, 0-9, - and _.")


def put_dashboard(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "DashboardName", "DashboardBody")
    name, body = p["DashboardName"], p["DashboardBody"]
    _check_name(name, "DashboardName", _input_error)
    new_tags = tags.check(p.get("Tags", []))
    findings = dashboard_body.validate(body)
    if findings.errors:
        # worded as AWS words it: the count, then the errors as a JSON list (on one line here)
        listed = json.dumps([{"dataPath": m["DataPath"], "message": m["Message"]} for m in findings.errors[:10]])
        raise _input_error(f"The dashboard body is invalid, there are {len(findings.errors)} validation errors: "
                           f"{listed}", findings.errors + findings.warnings)
    now = cw.clock()
    with cw.pools.session(LOCAL) as s:
        row = s.get(Dashboard, (cw.account, name))
        fresh = row is None
        if fresh:
            row = Dashboard(account=cw.account, name=name)
            s.add(row)
        row.body, row.size, row.updated_at = body, len(body.encode("utf-8")), now
        if fresh:
            # "If you specify Tags when updating an existing dashboard, the tag updates are ignored"
            # (model, PutDashboardInput.Tags)
            tags.put(s, cw.account, "dashboard", name, new_tags)
    return {"DashboardValidationMessages": findings.warnings}


def get_dashboard(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "DashboardName")
    name = p["DashboardName"]
    _check_name(name, "DashboardName")
    with cw.pools.session(LOCAL) as s:
        row = s.get(Dashboard, (cw.account, name))
        if row is None:
            raise not_found(f"Dashboard {name} does not exist", DASHBOARD_NOT_FOUND)
        return {"DashboardArn": arns.dashboard_arn(cw.region, cw.account, name), "DashboardBody": row.body,
                "DashboardName": name}


def list_dashboards(cw: CloudWatch, p: dict) -> dict:
    prefix = p.get("DashboardNamePrefix") or ""
    if not PREFIX_RE.fullmatch(prefix):
        raise invalid("The parameter DashboardNamePrefix must be at most 255 characters A-Z, a-z, 0-9, ., - and _.")
    after = tokens.decode("dashboard", p.get("NextToken"))
    stmt = select(Dashboard).where(Dashboard.account == cw.account).order_by(Dashboard.name).limit(PAGE + 1)
    if prefix:
        stmt = stmt.where(Dashboard.name.startswith(prefix, autoescape=True))
    if after is not None:
        stmt = stmt.where(Dashboard.name > after)
    with cw.pools.session(LOCAL) as s:
        rows = [(r.name, r.updated_at, r.size) for r in s.scalars(stmt)]
    out: dict[str, Any] = {"DashboardEntries": [
        {"DashboardName": n, "DashboardArn": arns.dashboard_arn(cw.region, cw.account, n), "LastModified": at,
         "Size": size} for n, at, size in rows[:PAGE]]}
    if len(rows) > PAGE:
        out["NextToken"] = tokens.encode("dashboard", rows[PAGE - 1][0])
    return out


def delete_dashboards(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "DashboardNames")
    names = list(dict.fromkeys(p["DashboardNames"]))
    if len(names) > MAX_DELETE:
        raise invalid(f"The collection DashboardNames must not have a size greater than {MAX_DELETE}.")
    for i, name in enumerate(names, 1):
        _check_name(name, f"DashboardNames.member.{i}")
    with cw.pools.session(LOCAL) as s:
        rows = s.scalars(select(Dashboard).where(Dashboard.account == cw.account,
                                                 Dashboard.name.in_(names))).all()
        absent = set(names) - {r.name for r in rows}
        if absent:
            raise not_found(f"Dashboards do not exist: {', '.join(sorted(absent))}", DASHBOARD_NOT_FOUND)
        for r in rows:
            s.delete(r)
        tags.remove(s, cw.account, "dashboard", names)
    return {}
