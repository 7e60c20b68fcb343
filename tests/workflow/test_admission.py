"""The default allowed CIDR is the front end's own address towards the cloud."""
from eucadb.workflow.steps.admission import front_end_address


def test_front_end_address_is_the_source_address_towards_the_endpoint():
    assert front_end_address("http://127.0.0.1:5000", "us-east-1") == "127.0.0.1"
    assert front_end_address("http://localhost:5000", "us-east-1").startswith("127.")
