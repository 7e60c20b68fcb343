"""DescribeAlarmsForMetric, Enable/DisableAlarmActions, dashboards and tagging through real boto3
clients in all three wire protocols, and what an operation this endpoint does not serve answers.

Where each expectation comes from is noted beside it: "model" is botocore's CloudWatch service model
(botocore/data/cloudwatch/2010-08-01/service-2.json), otherwise the AWS documentation page named."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from eucadb.services.cloudwatch.operations import dashboards

from cwharness import PROTOCOLS, code_and_status

REGION = "us-east-1"   # the service's region (serve.region, default the cloud's): what ARNs carry
TEXT_WIDGET = {"type": "text", "x": 0, "y": 0, "width": 6, "height": 3, "properties": {"markdown": "hi"}}
BODY = json.dumps({"widgets": [TEXT_WIDGET]})


def alarm(cw, name: str, metric: str = "cpu", dims=(("Host", "h1"),), **kw) -> None:
    args = dict(AlarmName=name, Namespace="Ops", MetricName=metric, Statistic="Average", Period=60,
                EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
                Dimensions=[{"Name": n, "Value": v} for n, v in dims])
    cw.put_metric_alarm(**{**args, **kw})



@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_describe_alarms_for_metric_matches_metric_dimensions_and_filters(endpoint, protocol):
    cw = endpoint.client(protocol)
    ns = f"ForMetric/{protocol}"
    alarm(cw, f"{protocol}-fm-60", Namespace=ns)
    alarm(cw, f"{protocol}-fm-300", Namespace=ns, Period=300)
    alarm(cw, f"{protocol}-fm-other-host", Namespace=ns, dims=(("Host", "h2"),))
    alarm(cw, f"{protocol}-fm-other-metric", Namespace=ns, metric="mem")
    alarm(cw, f"{protocol}-fm-two-dims", Namespace=ns, dims=(("Host", "h1"), ("Disk", "d")))

    def names(**kw):
        out = cw.describe_alarms_for_metric(Namespace=ns, MetricName="cpu", **kw)["MetricAlarms"]
        return sorted(a["AlarmName"] for a in out)
    h1 = [{"Name": "Host", "Value": "h1"}]
    # the full dimension set must be given ("If the metric has any associated dimensions, you must
    # specify them in order for the call to succeed", model)
    assert names(Dimensions=h1) == [f"{protocol}-fm-300", f"{protocol}-fm-60"]
    assert names() == []
    # "To filter the results, specify a statistic, period, or unit" (model)
    assert names(Dimensions=h1, Period=60) == [f"{protocol}-fm-60"]
    assert names(Dimensions=h1, Statistic="Maximum") == []
    found = cw.describe_alarms_for_metric(Namespace=ns, MetricName="cpu", Dimensions=h1, Period=60)["MetricAlarms"][0]
    assert found["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:{endpoint.account}:alarm:{protocol}-fm-60"
    assert found["ActionsEnabled"] is True   # "The default is TRUE" (model, PutMetricAlarmInput.ActionsEnabled)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_enable_and_disable_alarm_actions_are_stored_and_described(endpoint, protocol):
    cw = endpoint.client(protocol)
    name = f"{protocol}-actions"
    alarm(cw, name, Namespace=f"Actions/{protocol}")

    def enabled() -> bool:
        return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["ActionsEnabled"]
    assert enabled() is True
    # names of no alarm are not an error: the model lists no error for either operation
    cw.disable_alarm_actions(AlarmNames=[name, "no-such-alarm"])
    assert enabled() is False
    for_metric = cw.describe_alarms_for_metric(Namespace=f"Actions/{protocol}", MetricName="cpu",
                                               Dimensions=[{"Name": "Host", "Value": "h1"}])["MetricAlarms"]
    assert [a["ActionsEnabled"] for a in for_metric] == [False]
    cw.enable_alarm_actions(AlarmNames=[name])
    assert enabled() is True
    with pytest.raises(ClientError) as err:   # AlarmNames max 100 (model)
        cw.disable_alarm_actions(AlarmNames=[f"a{i}" for i in range(101)])
    assert code_and_status(err) == ("InvalidParameterValue", 400)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dashboard_put_get_list_delete(endpoint, protocol):
    cw = endpoint.client(protocol)
    name = f"dash-{protocol}"
    out = cw.put_dashboard(DashboardName=name, DashboardBody=BODY, Tags=[{"Key": "team", "Value": "db"}])
    # "If the input for PutDashboard was correct [...] this result is empty" (model)
    assert out.get("DashboardValidationMessages", []) == []
    arn = f"arn:aws:cloudwatch::{endpoint.account}:dashboard/{name}"   # dashboards are global: no region (model, TagResource)
    got = cw.get_dashboard(DashboardName=name)
    assert (got["DashboardName"], got["DashboardBody"], got["DashboardArn"]) == (name, BODY, arn)
    entries = cw.list_dashboards(DashboardNamePrefix=name)["DashboardEntries"]
    assert [(e["DashboardName"], e["DashboardArn"], e["Size"]) for e in entries] == [(name, arn, len(BODY))]
    assert entries[0]["LastModified"].tzinfo is not None
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "db"}]
    # an update replaces the body; "If you specify Tags when updating an existing dashboard, the tag
    # updates are ignored" (model, PutDashboardInput.Tags)
    body2 = json.dumps({"widgets": []})
    cw.put_dashboard(DashboardName=name, DashboardBody=body2, Tags=[{"Key": "ignored", "Value": "x"}])
    assert cw.get_dashboard(DashboardName=name)["DashboardBody"] == body2
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "db"}]
    # a missing name: ResourceNotFound 404 and nothing deleted ("If there is an error during this call,
    # no dashboards are deleted", https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DeleteDashboards.html)
    with pytest.raises(ClientError) as err:
        cw.delete_dashboards(DashboardNames=[name, f"missing-{protocol}"])
    assert code_and_status(err) == ("ResourceNotFound", 404)
    assert f"missing-{protocol}" in err.value.response["Error"]["Message"]
    assert cw.get_dashboard(DashboardName=name)["DashboardName"] == name
    cw.delete_dashboards(DashboardNames=[name])
    with pytest.raises(ClientError) as err:   # DashboardNotFoundError: ResourceNotFound, 404 (model)
        cw.get_dashboard(DashboardName=name)
    assert code_and_status(err) == ("ResourceNotFound", 404)
    with pytest.raises(ClientError) as err:   # its tags went with it
        cw.list_tags_for_resource(ResourceARN=arn)
    assert code_and_status(err) == ("ResourceNotFoundException", 404)
    cw.put_dashboard(DashboardName=name, DashboardBody=BODY)
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == []
    cw.delete_dashboards(DashboardNames=[name])


INVALID_BODIES = {
    "not-json": ("{widgets: [", ""),
    "not-an-object": ("[]", ""),
    # "The dashboard must include a widgets array, but that array can be empty" (Dashboard Body
    # Structure, https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html)
    "no-widgets": ("{}", "/"),
    "widgets-not-array": ('{"widgets": {}}', "/widgets"),
    "bad-type": (json.dumps({"widgets": [{**TEXT_WIDGET, "type": "pie"}]}), "/widgets/0/type"),
    "width-25": (json.dumps({"widgets": [{**TEXT_WIDGET, "width": 25}]}), "/widgets/0/width"),
    "no-properties": (json.dumps({"widgets": [{"type": "text"}]}), "/widgets/0"),
    "501-widgets": (json.dumps({"widgets": [TEXT_WIDGET] * 501}), "/widgets"),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", INVALID_BODIES)
def test_put_dashboard_refuses_an_invalid_body(endpoint, protocol, case):
    cw = endpoint.client(protocol)
    body, path = INVALID_BODIES[case]
    name = f"bad-{case}-{protocol}"
    with pytest.raises(ClientError) as err:   # DashboardInvalidInputError: InvalidParameterInput, 400 (model)
        cw.put_dashboard(DashboardName=name, DashboardBody=body)
    assert code_and_status(err) == ("InvalidParameterInput", 400)
    # the error shape's dashboardValidationMessages member (model), parsed by botocore in every protocol
    messages = err.value.response["dashboardValidationMessages"]
    assert path in [m["DataPath"] for m in messages], messages
    assert err.value.response["Error"]["Message"].startswith("The dashboard body is invalid, there are ")
    with pytest.raises(ClientError) as err:   # nothing was stored
        cw.get_dashboard(DashboardName=name)
    assert code_and_status(err) == ("ResourceNotFound", 404)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_put_dashboard_warnings_store_the_dashboard(endpoint, protocol):
    """"If this result includes only warning messages, then the input was valid enough for the dashboard
    to be created" (model, PutDashboardOutput): a member the structure does not define is a warning."""
    cw = endpoint.client(protocol)
    name = f"warn-{protocol}"
    body = json.dumps({"widgets": [TEXT_WIDGET], "colour": "blue"})
    out = cw.put_dashboard(DashboardName=name, DashboardBody=body)
    assert [m["DataPath"] for m in out["DashboardValidationMessages"]] == ["/colour"]
    assert cw.get_dashboard(DashboardName=name)["DashboardBody"] == body
    cw.delete_dashboards(DashboardNames=[name])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dashboard_names(endpoint, protocol):
    """"The maximum length is 255, and valid characters are A-Z, a-z, 0-9, "-", and "_"" (model,
    PutDashboardInput.DashboardName); PutDashboard's own error is InvalidParameterInput, the other
    operations list InvalidParameterValue (model)."""
    cw = endpoint.client(protocol)
    for bad in ("has space", "dot.ted", "x" * 256, "é"):
        with pytest.raises(ClientError) as err:
            cw.put_dashboard(DashboardName=bad, DashboardBody=BODY)
        assert code_and_status(err) == ("InvalidParameterInput", 400), bad
        with pytest.raises(ClientError) as err:
            cw.get_dashboard(DashboardName=bad)
        assert code_and_status(err) == ("InvalidParameterValue", 400), bad
    with pytest.raises(ClientError) as err:   # the prefix allows "." as well, and nothing else (model)
        cw.list_dashboards(DashboardNamePrefix="no/slash")
    assert code_and_status(err) == ("InvalidParameterValue", 400)
    assert cw.list_dashboards(DashboardNamePrefix="no.such.")["DashboardEntries"] == []
    cw.put_dashboard(DashboardName="x" * 255, DashboardBody=BODY)
    cw.delete_dashboards(DashboardNames=["x" * 255])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_list_dashboards_pages(endpoint, protocol, monkeypatch):
    """Pages of PAGE entries with NextToken ("ListDashboards returns up to 1000 results on one page",
    model); the page size is lowered here so that paging is reached with five dashboards."""
    monkeypatch.setattr(dashboards, "PAGE", 2)
    cw = endpoint.client(protocol)
    names = [f"page-{protocol.replace('-', '')}-{i}" for i in range(5)]
    for name in names:
        cw.put_dashboard(DashboardName=name, DashboardBody=BODY)
    cw.put_dashboard(DashboardName=f"pagex-{protocol}", DashboardBody=BODY)   # outside the prefix
    seen, token, pages = [], None, 0
    while True:
        out = cw.list_dashboards(DashboardNamePrefix=f"page-{protocol.replace('-', '')}-",
                                 **({"NextToken": token} if token else {}))
        seen += [e["DashboardName"] for e in out["DashboardEntries"]]
        pages += 1
        token = out.get("NextToken")
        if not token:
            break
    assert (seen, pages) == (names, 3)
    with pytest.raises(ClientError) as err:
        cw.list_dashboards(NextToken="bm90LWEtdG9rZW4=")
    assert code_and_status(err)[0] == "InvalidNextToken"
    cw.delete_dashboards(DashboardNames=[*names, f"pagex-{protocol}"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_alarm_tags(endpoint, protocol):
    cw = endpoint.client(protocol)
    name = f"tagged-{protocol}"
    alarm(cw, name, Namespace="Tags", Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "db"}])
    arn = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
    assert arn == f"arn:aws:cloudwatch:{REGION}:{endpoint.account}:alarm:{name}"
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "prod"},
                                                                   {"Key": "team", "Value": "db"}]
    # "If you specify a tag key that is already associated with the alarm, the new tag value that you
    # specify replaces the previous value for that tag" (model, TagResource)
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "test"}, {"Key": "owner", "Value": ""}])
    cw.untag_resource(ResourceARN=arn, TagKeys=["team", "never-there"])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "test"},
                                                                   {"Key": "owner", "Value": ""}]
    # "If you are using this operation to update an existing alarm, any tags you specify in this
    # parameter are ignored" (model, PutMetricAlarmInput.Tags)
    alarm(cw, name, Namespace="Tags", Tags=[{"Key": "ignored", "Value": "x"}])
    assert [t["Key"] for t in cw.list_tags_for_resource(ResourceARN=arn)["Tags"]] == ["env", "owner"]
    # tags are deleted with the alarm: a new alarm of the same name starts without them
    cw.delete_alarms(AlarmNames=[name])
    with pytest.raises(ClientError) as err:
        cw.list_tags_for_resource(ResourceARN=arn)
    assert code_and_status(err) == ("ResourceNotFoundException", 404)
    alarm(cw, name, Namespace="Tags")
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == []
    cw.delete_alarms(AlarmNames=[name])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tag_limits_and_unknown_resources(endpoint, protocol):
    cw = endpoint.client(protocol)
    name = f"limits-{protocol}"
    alarm(cw, name, Namespace="Tags")
    arn = f"arn:aws:cloudwatch:{REGION}:{endpoint.account}:alarm:{name}"
    # "You can associate as many as 50 tags with a CloudWatch resource" (model, TagResource); key
    # 1-128 and value 0-256 characters (model, TagKey / TagValue)
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    refused = [[{"Key": "one-more", "Value": "v"}], [{"Key": "k" * 129, "Value": "v"}],
               [{"Key": "long-value", "Value": "v" * 257}]]
    for tags in refused:
        with pytest.raises(ClientError) as err:
            cw.tag_resource(ResourceARN=arn, Tags=tags)
        assert code_and_status(err) == ("InvalidParameterValue", 400)
    assert len(cw.list_tags_for_resource(ResourceARN=arn)["Tags"]) == 50, "a refused request changes nothing"
    with pytest.raises(ClientError) as err:   # 51 at creation too
        alarm(cw, f"{name}-51", Namespace="Tags", Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert code_and_status(err) == ("InvalidParameterValue", 400)
    assert cw.describe_alarms(AlarmNames=[f"{name}-51"])["MetricAlarms"] == []
    # ResourceNotFoundException, 404 (model) for an ARN naming nothing here: no such alarm or
    # dashboard, or another region, account or partition
    for missing in (f"arn:aws:cloudwatch:{REGION}:{endpoint.account}:alarm:no-such-{protocol}",
                    f"arn:aws:cloudwatch::{endpoint.account}:dashboard/no-such-{protocol}",
                    f"arn:aws:cloudwatch:us-west-2:{endpoint.account}:alarm:{name}",
                    f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:{name}",
                    f"arn:aws-cn:cloudwatch:{REGION}:{endpoint.account}:alarm:{name}"):
        for call in (lambda: cw.list_tags_for_resource(ResourceARN=missing),
                     lambda: cw.tag_resource(ResourceARN=missing, Tags=[{"Key": "a", "Value": "b"}]),
                     lambda: cw.untag_resource(ResourceARN=missing, TagKeys=["a"])):
            with pytest.raises(ClientError) as err:
                call()
            assert code_and_status(err) == ("ResourceNotFoundException", 404), missing
    with pytest.raises(ClientError) as err:   # not an ARN of a taggable resource at all
        cw.list_tags_for_resource(ResourceARN="not-an-arn")
    assert code_and_status(err) == ("InvalidParameterValue", 400)
    cw.delete_alarms(AlarmNames=[name])


@pytest.mark.parametrize("protocol,code", [("query", "InvalidAction"), ("json", "UnknownOperationException"),
                                           ("smithy-rpc-v2-cbor", "UnknownOperationException")])
def test_an_operation_not_served_answers_as_aws_does_for_an_unknown_action(endpoint, protocol, code):
    """Query: InvalidAction, 400 ("The action or operation requested is invalid", AWS Common Errors,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CommonErrors.html); JSON and
    CBOR: the front end's com.amazon.coral.service#UnknownOperationException with 400, as AWS JSON
    endpoints answer it (seen by SDK users in aws/aws-sdk-js#425 and aws/aws-sdk-net#1536)."""
    cw = endpoint.client(protocol, retries={"total_max_attempts": 1})
    with pytest.raises(ClientError) as err:
        cw.list_metric_streams()
    assert code_and_status(err) == (code, 400)
    if protocol == "query":
        assert err.value.response["Error"]["Message"] == "The action ListMetricStreams is not valid for this web service."


@pytest.mark.parametrize("region,partition", [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"),
                                              ("eu-west-1", "aws")])
def test_arns_take_the_partition_of_the_region(endpoint, monkeypatch, region, partition):
    """The partition of an ARN follows the region (AWS partitions: aws-cn for the China regions,
    aws-us-gov for GovCloud, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html)."""
    monkeypatch.setattr(endpoint.service, "region", region)
    cw = endpoint.client("json", region=region)   # signed for the service's region, as AWS requires
    name = f"partition-{region}"
    alarm(cw, name, Namespace="Partition", Tags=[{"Key": "p", "Value": partition}])
    arn = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
    assert arn == f"arn:{partition}:cloudwatch:{region}:{endpoint.account}:alarm:{name}"
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "p", "Value": partition}]
    cw.put_dashboard(DashboardName=name, DashboardBody=BODY)
    assert cw.get_dashboard(DashboardName=name)["DashboardArn"] == f"arn:{partition}:cloudwatch::{endpoint.account}:dashboard/{name}"
    cw.delete_dashboards(DashboardNames=[name])
    cw.delete_alarms(AlarmNames=[name])
