"""CloudWatch over TLS as `eucadb serve` terminates it (cheroot, a certificate from the deployment's
CA): boto3 with verify=<CA bundle> round-trips, without the CA it refuses the server; a request signed
for another region than the service's is refused as AWS refuses it."""
from __future__ import annotations

import ssl
from datetime import datetime, timezone

import boto3
import pytest
from botocore.exceptions import ClientError, SSLError
from cheroot.ssl.builtin import BuiltinSSLAdapter

from cwharness import start_endpoint
from eucadb.workflow import pki


@pytest.fixture(scope="module")
def tls_endpoint(pg_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("cw-tls")
    ca_key, ca_cert = pki.create_ca("eucadb test CA")
    key, cert = pki.issue_server_certificate(ca_key, ca_cert, "127.0.0.1", days=1)
    (home / "serve.crt").write_text(cert)
    (home / "serve.key").write_text(key)
    (home / "ca.pem").write_text(ca_cert)
    endpoint, stop = start_endpoint(pg_server, home, "cheroot",
                                    BuiltinSSLAdapter(str(home / "serve.crt"), str(home / "serve.key")))
    yield endpoint, home / "ca.pem"
    stop()


def client(endpoint, ca, region: str = "us-east-1", verify=None):
    return boto3.client("cloudwatch", endpoint_url=endpoint.url, region_name=region, verify=verify or str(ca),
                        aws_access_key_id=endpoint.key_id, aws_secret_access_key=endpoint.secret)


def test_boto3_round_trip_over_tls_verified_by_the_ca(tls_endpoint):
    endpoint, ca = tls_endpoint
    assert endpoint.url.startswith("https://")
    cw = client(endpoint, ca)
    cw.put_metric_data(Namespace="Tls", MetricData=[{"MetricName": "Handshakes", "Value": 1.0,
                                                    "Timestamp": datetime.now(timezone.utc)}])
    names = [m["MetricName"] for m in cw.list_metrics(Namespace="Tls")["Metrics"]]
    assert names == ["Handshakes"]


def test_a_client_without_the_ca_refuses_the_server(tls_endpoint):
    endpoint, ca = tls_endpoint
    with pytest.raises(SSLError):
        client(endpoint, ca, verify=ssl.get_default_verify_paths().cafile or True).list_metrics()


def test_a_signature_for_another_region_is_refused(tls_endpoint):
    # AWS (Query protocol, as CloudWatch's awsQuery): 403 SignatureDoesNotMatch "Credential should be
    # scoped to a valid region, not 'ap-southeast-2'." — as reported in cognitect-labs/aws-api#27 (STS)
    # and JuliaCloud/AWS.jl#565 (IAM); before, any region was accepted.
    endpoint, ca = tls_endpoint
    with pytest.raises(ClientError) as caught:
        client(endpoint, ca, region="eu-west-1").list_metrics()
    error = caught.value.response["Error"]
    assert error["Code"] == "SignatureDoesNotMatch"
    assert "Credential should be scoped to a valid region, not 'eu-west-1'." in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
