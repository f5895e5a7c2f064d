"""Tests of the AWS emulator through boto3 against a real server process.

Run with the emulator's venv: `$(./setup.sh) -m pytest -q test_emulator.py`.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

HERE = Path(__file__).resolve().parent
REGION = "us-east-1"
ACCOUNT = "123456789012"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory):
    port = _free_port()
    # A file, not a pipe: an unread pipe would fill up and block the server.
    log = open(tmp_path_factory.mktemp("emulator") / "emulator.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "emulator.py"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/_emulator/faults", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                log.seek(0)
                raise RuntimeError(f"emulator did not start: {log.read()}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.seek(0)
    # An exception inside a handler is a bug even when the client saw a 500.
    assert "Traceback" not in log.read()


def admin(endpoint: str, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{endpoint}/_emulator/{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture(autouse=True)
def clean(endpoint):
    yield
    admin(endpoint, "POST", "faults", {"ses_rps": None, "error_rate": 0})
    admin(endpoint, "POST", "account", {"region": REGION, "enforcement_status": "HEALTHY",
                                        "sending_enabled": True, "production_access_enabled": True})


def client(endpoint: str, service: str, attempts: int = 1):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
        # Server-side validation is under test, so botocore must not pre-empt it.
        config=Config(retries={"mode": "standard", "max_attempts": attempts}, parameter_validation=False),
    )


@pytest.fixture
def ses(endpoint):
    return client(endpoint, "sesv2")


def code(err: pytest.ExceptionInfo) -> str:
    return err.value.response["Error"]["Code"]


def unique(prefix: str = "cs") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


FULL_SET = {
    "TrackingOptions": {"CustomRedirectDomain": "track.example.com", "HttpsPolicy": "REQUIRE"},
    "DeliveryOptions": {"TlsPolicy": "REQUIRE", "MaxDeliverySeconds": 600},
    "ReputationOptions": {"ReputationMetricsEnabled": True},
    "SendingOptions": {"SendingEnabled": True},
    "SuppressionOptions": {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]},
    "VdmOptions": {"DashboardOptions": {"EngagementMetrics": "ENABLED"},
                   "GuardianOptions": {"OptimizedSharedDelivery": "DISABLED"}},
    "Tags": [{"Key": "team", "Value": "mail"}, {"Key": "env", "Value": "test"}],
}


def strip(resp: dict) -> dict:
    resp.pop("ResponseMetadata", None)
    return resp


# --- configuration sets ------------------------------------------------------


def test_create_get_list_every_option_group(ses):
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name, **FULL_SET)
    assert strip(ses.get_configuration_set(ConfigurationSetName=name)) == {"ConfigurationSetName": name, **FULL_SET}
    assert name in ses.list_configuration_sets(PageSize=1000)["ConfigurationSets"]
    arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/{name}"
    assert ses.list_tags_for_resource(ResourceArn=arn)["Tags"] == FULL_SET["Tags"]


def test_defaults_of_a_bare_set(ses):
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name)
    assert strip(ses.get_configuration_set(ConfigurationSetName=name)) == {
        "ConfigurationSetName": name,
        "DeliveryOptions": {"TlsPolicy": "OPTIONAL"},
        "ReputationOptions": {"ReputationMetricsEnabled": False},
        "SendingOptions": {"SendingEnabled": True},
        "Tags": [],
    }


def test_put_calls_change_each_group(ses):
    name = unique()
    pool = unique("pool")
    ses.create_dedicated_ip_pool(PoolName=pool)
    ses.create_configuration_set(ConfigurationSetName=name, **FULL_SET)
    ses.put_configuration_set_sending_options(ConfigurationSetName=name, SendingEnabled=False)
    ses.put_configuration_set_reputation_options(ConfigurationSetName=name, ReputationMetricsEnabled=False)
    ses.put_configuration_set_suppression_options(ConfigurationSetName=name, SuppressedReasons=["BOUNCE"])
    ses.put_configuration_set_tracking_options(ConfigurationSetName=name, CustomRedirectDomain="t.example.org",
                                               HttpsPolicy="OPTIONAL")
    ses.put_configuration_set_delivery_options(ConfigurationSetName=name, TlsPolicy="OPTIONAL",
                                               SendingPoolName=pool, MaxDeliverySeconds=50400)
    ses.put_configuration_set_vdm_options(ConfigurationSetName=name, VdmOptions={
        "DashboardOptions": {"EngagementMetrics": "DISABLED"},
        "GuardianOptions": {"OptimizedSharedDelivery": "ENABLED"}})
    got = strip(ses.get_configuration_set(ConfigurationSetName=name))
    assert got == {
        "ConfigurationSetName": name,
        "SendingOptions": {"SendingEnabled": False},
        "ReputationOptions": {"ReputationMetricsEnabled": False},
        "SuppressionOptions": {"SuppressedReasons": ["BOUNCE"]},
        "TrackingOptions": {"CustomRedirectDomain": "t.example.org", "HttpsPolicy": "OPTIONAL"},
        "DeliveryOptions": {"TlsPolicy": "OPTIONAL", "SendingPoolName": pool, "MaxDeliverySeconds": 50400},
        "VdmOptions": {"DashboardOptions": {"EngagementMetrics": "DISABLED"},
                       "GuardianOptions": {"OptimizedSharedDelivery": "ENABLED"}},
        "Tags": FULL_SET["Tags"],
    }


def test_omitted_boolean_means_false(endpoint, ses):
    # The Rust SDK leaves false booleans out of the body; AWS reads that as false.
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name)
    req = urllib.request.Request(f"{endpoint}/v2/email/configuration-sets/{name}/sending", data=b"{}", method="PUT",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/"
                                                           "us-east-1/ses/aws4_request, SignedHeaders=host, Signature=x"})
    urllib.request.urlopen(req, timeout=5).read()
    assert ses.get_configuration_set(ConfigurationSetName=name)["SendingOptions"] == {"SendingEnabled": False}


@pytest.mark.parametrize("seconds", [299, 50401])
def test_max_delivery_seconds_range(ses, seconds):
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name)
    with pytest.raises(ClientError) as err:
        ses.put_configuration_set_delivery_options(ConfigurationSetName=name, MaxDeliverySeconds=seconds)
    assert code(err) == "BadRequestException"
    with pytest.raises(ClientError) as err:
        ses.create_configuration_set(ConfigurationSetName=unique(), DeliveryOptions={"MaxDeliverySeconds": seconds})
    assert code(err) == "BadRequestException"


def test_configuration_set_errors(ses):
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name)
    with pytest.raises(ClientError) as err:
        ses.create_configuration_set(ConfigurationSetName=name)
    assert code(err) == "AlreadyExistsException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    missing = unique()
    for call in (
        lambda: ses.get_configuration_set(ConfigurationSetName=missing),
        lambda: ses.delete_configuration_set(ConfigurationSetName=missing),
        lambda: ses.put_configuration_set_sending_options(ConfigurationSetName=missing, SendingEnabled=True),
        lambda: ses.put_configuration_set_delivery_options(ConfigurationSetName=name, SendingPoolName=unique("p")),
        lambda: ses.get_configuration_set_event_destinations(ConfigurationSetName=missing),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "NotFoundException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as err:
        ses.create_configuration_set(ConfigurationSetName="bad name!")
    assert code(err) == "BadRequestException"
    with pytest.raises(ClientError) as err:
        ses.put_configuration_set_tracking_options(ConfigurationSetName=name, HttpsPolicy="SOMETIMES")
    assert code(err) == "BadRequestException"
    ses.delete_configuration_set(ConfigurationSetName=name)
    assert name not in ses.list_configuration_sets(PageSize=1000)["ConfigurationSets"]


def test_tags(ses):
    name = unique()
    arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/{name}"
    ses.create_configuration_set(ConfigurationSetName=name, Tags=[{"Key": "a", "Value": "1"}])
    ses.tag_resource(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    ses.untag_resource(ResourceArn=arn, TagKeys=["b"])
    assert ses.get_configuration_set(ConfigurationSetName=name)["Tags"] == [{"Key": "a", "Value": "3"}]
    with pytest.raises(ClientError) as err:
        ses.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert code(err) == "BadRequestException"
    ses.delete_configuration_set(ConfigurationSetName=name)
    with pytest.raises(ClientError) as err:
        ses.list_tags_for_resource(ResourceArn=arn)
    assert code(err) == "NotFoundException"
    # A set re-created under the same name starts without the old tags.
    ses.create_configuration_set(ConfigurationSetName=name)
    assert ses.list_tags_for_resource(ResourceArn=arn)["Tags"] == []


# --- event destinations ------------------------------------------------------


SNS_DEST = {"Enabled": True, "MatchingEventTypes": ["BOUNCE", "COMPLAINT"],
            "SnsDestination": {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:events"}}


def test_event_destination_crud(ses):
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name)
    ses.create_configuration_set_event_destination(ConfigurationSetName=name, EventDestinationName="sns",
                                                   EventDestination=SNS_DEST)
    cw = {"MatchingEventTypes": ["SEND", "DELIVERY"], "CloudWatchDestination": {"DimensionConfigurations": [
        {"DimensionName": "campaign", "DimensionValueSource": "MESSAGE_TAG", "DefaultDimensionValue": "none"}]}}
    ses.create_configuration_set_event_destination(ConfigurationSetName=name, EventDestinationName="cw",
                                                   EventDestination=cw)
    eb = {"Enabled": True, "MatchingEventTypes": ["OPEN"],
          "EventBridgeDestination": {"EventBusArn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"}}
    ses.create_configuration_set_event_destination(ConfigurationSetName=name, EventDestinationName="eb",
                                                   EventDestination=eb)
    got = ses.get_configuration_set_event_destinations(ConfigurationSetName=name)["EventDestinations"]
    assert got == [
        {"Name": "sns", **SNS_DEST},
        {"Name": "cw", "Enabled": False, **cw},  # Enabled left out means false
        {"Name": "eb", **eb},
    ]
    ses.update_configuration_set_event_destination(ConfigurationSetName=name, EventDestinationName="sns",
                                                   EventDestination={**SNS_DEST, "Enabled": False,
                                                                     "MatchingEventTypes": ["BOUNCE"]})
    ses.delete_configuration_set_event_destination(ConfigurationSetName=name, EventDestinationName="cw")
    got = ses.get_configuration_set_event_destinations(ConfigurationSetName=name)["EventDestinations"]
    assert [(d["Name"], d["Enabled"], d["MatchingEventTypes"]) for d in got] == [
        ("sns", False, ["BOUNCE"]), ("eb", True, ["OPEN"])]


def test_event_destination_errors(ses):
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name)

    def create(dest_name, dest, set_name=name):
        ses.create_configuration_set_event_destination(ConfigurationSetName=set_name, EventDestinationName=dest_name,
                                                       EventDestination=dest)

    create("d0", SNS_DEST)
    cases = [
        (lambda: create("d0", SNS_DEST), "AlreadyExistsException"),
        (lambda: create("x", SNS_DEST, unique()), "NotFoundException"),
        (lambda: create("x", {"Enabled": True, "MatchingEventTypes": ["BOUNCE"]}), "BadRequestException"),
        (lambda: create("x", {**SNS_DEST, "MatchingEventTypes": ["EXPLODE"]}), "BadRequestException"),
        (lambda: create("x", {**SNS_DEST, "MatchingEventTypes": []}), "BadRequestException"),
        (lambda: create("x", {**SNS_DEST, "SnsDestination": {"TopicArn": "not-an-arn"}}), "BadRequestException"),
        (lambda: create("x", {**SNS_DEST, "EventBridgeDestination": {"EventBusArn": "arn:x"}}),
         "BadRequestException"),
        (lambda: ses.update_configuration_set_event_destination(
            ConfigurationSetName=name, EventDestinationName="nope", EventDestination=SNS_DEST), "NotFoundException"),
        (lambda: ses.delete_configuration_set_event_destination(
            ConfigurationSetName=name, EventDestinationName="nope"), "NotFoundException"),
    ]
    for call, expected in cases:
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == expected
    for i in range(1, 10):
        create(f"d{i}", SNS_DEST)
    with pytest.raises(ClientError) as err:
        create("d10", SNS_DEST)
    assert code(err) == "LimitExceededException"
    # Deleting the set deletes its destinations.
    ses.delete_configuration_set(ConfigurationSetName=name)
    ses.create_configuration_set(ConfigurationSetName=name)
    assert ses.get_configuration_set_event_destinations(ConfigurationSetName=name)["EventDestinations"] == []


# --- account -----------------------------------------------------------------


def test_account(endpoint, ses):
    acct = strip(ses.get_account())
    assert acct["EnforcementStatus"] == "HEALTHY"
    assert acct["SendingEnabled"] is True and acct["ProductionAccessEnabled"] is True
    assert set(acct["SendQuota"]) == {"Max24HourSend", "MaxSendRate", "SentLast24Hours"}
    ses.put_account_suppression_attributes(SuppressedReasons=["COMPLAINT"])
    ses.put_account_sending_attributes(SendingEnabled=False)
    acct = ses.get_account()
    assert acct["SuppressionAttributes"] == {"SuppressedReasons": ["COMPLAINT"]}
    assert acct["SendingEnabled"] is False
    ses.put_account_sending_attributes(SendingEnabled=True)
    admin(endpoint, "POST", "account", {"region": REGION, "enforcement_status": "PROBATION",
                                        "production_access_enabled": False})
    acct = ses.get_account()
    assert acct["EnforcementStatus"] == "PROBATION" and acct["ProductionAccessEnabled"] is False
    assert acct["SendQuota"]["Max24HourSend"] == 200.0
    # State is per region.
    other = boto3.client("sesv2", endpoint_url=endpoint, region_name="eu-west-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing")
    assert other.get_account()["EnforcementStatus"] == "HEALTHY"


# --- sending and events ------------------------------------------------------


@pytest.fixture
def pipeline(endpoint, ses):
    """A verified sender, a set whose SNS destination feeds two SQS queues
    (one raw, one wrapped in the SNS envelope)."""
    sns, sqs = client(endpoint, "sns"), client(endpoint, "sqs")
    name = unique()
    topic = sns.create_topic(Name=unique("topic"))["TopicArn"]
    queues = {}
    for raw in (True, False):
        url = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                      Attributes={"RawMessageDelivery": "true" if raw else "false"})
        queues[raw] = url
    ses.create_email_identity(EmailIdentity="example.com")
    ses.create_configuration_set(ConfigurationSetName=name)
    ses.create_configuration_set_event_destination(
        ConfigurationSetName=name, EventDestinationName="all",
        EventDestination={"Enabled": True, "SnsDestination": {"TopicArn": topic},
                          "MatchingEventTypes": ["SEND", "DELIVERY", "BOUNCE", "COMPLAINT"]})

    def drain(raw: bool = True) -> list[dict]:
        out = []
        while True:
            msgs = sqs.receive_message(QueueUrl=queues[raw], MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queues[raw], ReceiptHandle=m["ReceiptHandle"])

    return {"set": name, "topic": topic, "drain": drain}


def send(ses, to: str, set_name: str | None, **extra) -> str:
    kwargs = {"ConfigurationSetName": set_name} if set_name else {}
    return ses.send_email(FromEmailAddress="Sender <sender@example.com>", Destination={"ToAddresses": [to]},
                          Content={"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "x"}}}},
                          **kwargs, **extra)["MessageId"]


def test_bounce_event_shape(ses, pipeline):
    message_id = send(ses, "bounce@simulator.amazonses.com", pipeline["set"],
                      EmailTags=[{"Name": "campaign", "Value": "c1"}])
    events = pipeline["drain"]()
    assert [e["eventType"] for e in events] == ["Send", "Bounce"]
    bounce = events[1]
    mail = bounce["mail"]
    assert mail["messageId"] == message_id
    assert mail["source"] == "Sender <sender@example.com>"
    assert mail["sourceArn"] == f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com"
    assert mail["sendingAccountId"] == ACCOUNT
    assert mail["destination"] == ["bounce@simulator.amazonses.com"]
    assert mail["headersTruncated"] is False
    assert {"name": "Subject", "value": "hi"} in mail["headers"]
    assert mail["commonHeaders"] == {"from": ["Sender <sender@example.com>"],
                                     "to": ["bounce@simulator.amazonses.com"],
                                     "messageId": message_id, "subject": "hi"}
    assert mail["tags"]["ses:configuration-set"] == [pipeline["set"]]
    assert mail["tags"]["ses:from-domain"] == ["example.com"]
    assert mail["tags"]["campaign"] == ["c1"]
    assert set(mail["tags"]) >= {"ses:source-ip", "ses:caller-identity"}
    assert dt.datetime.strptime(mail["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    b = bounce["bounce"]
    assert (b["bounceType"], b["bounceSubType"]) == ("Permanent", "General")
    assert b["bouncedRecipients"] == [{"emailAddress": "bounce@simulator.amazonses.com", "action": "failed",
                                       "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]
    assert set(b) == {"bounceType", "bounceSubType", "bouncedRecipients", "timestamp", "feedbackId", "reportingMTA"}
    assert events[0]["send"] == {}


def test_simulator_addresses(ses, pipeline):
    expected = {
        "success@simulator.amazonses.com": ["Send", "Delivery"],
        "ooto@simulator.amazonses.com": ["Send", "Delivery"],
        "someone@example.org": ["Send", "Delivery"],
        "complaint@simulator.amazonses.com": ["Send", "Delivery", "Complaint"],
        "suppressionlist@simulator.amazonses.com": ["Send", "Bounce"],
        "bounce+label@simulator.amazonses.com": ["Send", "Bounce"],
    }
    for to, types in expected.items():
        send(ses, to, pipeline["set"])
        events = pipeline["drain"]()
        assert [e["eventType"] for e in events] == types, to
    send(ses, "complaint@simulator.amazonses.com", pipeline["set"])
    complaint = pipeline["drain"]()[-1]["complaint"]
    assert complaint["complainedRecipients"] == [{"emailAddress": "complaint@simulator.amazonses.com"}]
    assert complaint["complaintFeedbackType"] == "abuse"
    assert set(complaint) == {"complainedRecipients", "timestamp", "feedbackId", "complaintFeedbackType",
                              "userAgent", "arrivalDate"}
    send(ses, "success@simulator.amazonses.com", pipeline["set"])
    delivery = pipeline["drain"]()[-1]["delivery"]
    assert delivery["recipients"] == ["success@simulator.amazonses.com"]
    assert set(delivery) == {"timestamp", "processingTimeMillis", "recipients", "smtpResponse", "reportingMTA"}
    send(ses, "suppressionlist@simulator.amazonses.com", pipeline["set"])
    assert pipeline["drain"]()[-1]["bounce"]["bounceSubType"] == "OnAccountSuppressionList"


def test_wrapped_sns_delivery(ses, pipeline):
    send(ses, "bounce@simulator.amazonses.com", pipeline["set"])
    wrapped = pipeline["drain"](raw=False)
    assert [w["Type"] for w in wrapped] == ["Notification", "Notification"]
    assert wrapped[1]["TopicArn"] == pipeline["topic"]
    assert wrapped[1]["Subject"] == "Amazon SES Email Event Notification"
    assert json.loads(wrapped[1]["Message"])["eventType"] == "Bounce"


def test_destination_filters(ses, pipeline):
    name = pipeline["set"]
    ses.update_configuration_set_event_destination(
        ConfigurationSetName=name, EventDestinationName="all",
        EventDestination={"Enabled": True, "SnsDestination": {"TopicArn": pipeline["topic"]},
                          "MatchingEventTypes": ["BOUNCE"]})
    send(ses, "bounce@simulator.amazonses.com", name)
    assert [e["eventType"] for e in pipeline["drain"]()] == ["Bounce"]
    ses.update_configuration_set_event_destination(
        ConfigurationSetName=name, EventDestinationName="all",
        EventDestination={"Enabled": False, "SnsDestination": {"TopicArn": pipeline["topic"]},
                          "MatchingEventTypes": ["BOUNCE"]})
    send(ses, "bounce@simulator.amazonses.com", name)
    assert pipeline["drain"]() == []
    # Without a configuration set nothing is published.
    send(ses, "bounce@simulator.amazonses.com", None)
    assert pipeline["drain"]() == []


def test_cloudwatch_destination_metrics(endpoint, ses, pipeline):
    name = pipeline["set"]
    ses.create_configuration_set_event_destination(
        ConfigurationSetName=name, EventDestinationName="cw",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["BOUNCE"], "CloudWatchDestination": {
            "DimensionConfigurations": [{"DimensionName": "campaign", "DimensionValueSource": "MESSAGE_TAG",
                                         "DefaultDimensionValue": "none"}]}})
    send(ses, "bounce@simulator.amazonses.com", name, EmailTags=[{"Name": "campaign", "Value": name}])
    cw = client(endpoint, "cloudwatch")
    metrics = cw.list_metrics(Namespace="AWS/SES", MetricName="Bounce",
                              Dimensions=[{"Name": "campaign", "Value": name}])["Metrics"]
    assert len(metrics) == 1


def test_sending_refused(endpoint, ses, pipeline):
    name = pipeline["set"]
    ses.put_configuration_set_sending_options(ConfigurationSetName=name, SendingEnabled=False)
    with pytest.raises(ClientError) as err:
        send(ses, "success@simulator.amazonses.com", name)
    assert code(err) == "SendingPausedException"
    ses.put_configuration_set_sending_options(ConfigurationSetName=name, SendingEnabled=True)
    ses.put_account_sending_attributes(SendingEnabled=False)
    with pytest.raises(ClientError) as err:
        send(ses, "success@simulator.amazonses.com", name)
    assert code(err) == "SendingPausedException"
    ses.put_account_sending_attributes(SendingEnabled=True)
    admin(endpoint, "POST", "account", {"region": REGION, "enforcement_status": "SHUTDOWN"})
    with pytest.raises(ClientError) as err:
        send(ses, "success@simulator.amazonses.com", name)
    assert code(err) == "AccountSuspendedException"
    admin(endpoint, "POST", "account", {"region": REGION, "enforcement_status": "HEALTHY"})
    with pytest.raises(ClientError) as err:
        send(ses, "success@simulator.amazonses.com", unique())
    assert code(err) == "NotFoundException"
    with pytest.raises(ClientError) as err:
        ses.send_email(FromEmailAddress="x@unverified.example", Destination={"ToAddresses": ["a@b.example"]},
                       Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}})
    assert code(err) == "MessageRejected"
    assert pipeline["drain"]() == []


# --- counting and faults -----------------------------------------------------


def test_call_counts(endpoint, ses):
    admin(endpoint, "POST", "calls/reset")
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name)
    for _ in range(3):
        ses.put_configuration_set_sending_options(ConfigurationSetName=name, SendingEnabled=True)
    client(endpoint, "sns").create_topic(Name=unique("t"))
    client(endpoint, "cloudwatch").put_metric_data(Namespace="X", MetricData=[{"MetricName": "m", "Value": 1}])
    calls = admin(endpoint, "GET", "calls")["calls"]
    assert calls["sesv2:CreateConfigurationSet"] == 1
    assert calls["sesv2:PutConfigurationSetSendingOptions"] == 3
    assert calls["sns:CreateTopic"] == 1
    assert calls["cloudwatch:PutMetricData"] == 1
    assert admin(endpoint, "POST", "calls/reset")["calls"] == {}


def test_throttling(endpoint, ses):
    name = unique()
    ses.create_email_identity(EmailIdentity="example.com")
    # One token every 4 s: the second call lands well inside the refill even
    # on a loaded machine (at 1/s a slow second request got a fresh token).
    assert admin(endpoint, "POST", "faults", {"ses_rps": 0.25})["ses_rps"] == 0.25
    assert admin(endpoint, "GET", "faults") == {"ses_rps": 0.25, "error_rate": 0.0, "seed": None, "regions": {}}
    ses.create_configuration_set(ConfigurationSetName=name)
    with pytest.raises(ClientError) as err:
        ses.create_configuration_set(ConfigurationSetName=unique())
    assert code(err) == "TooManyRequestsException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "TooManyRequestsException"
    assert err.value.response["Error"]["Message"] == "Too many requests."
    # Sending is not throttled.
    send(ses, "success@simulator.amazonses.com", None)
    time.sleep(4.1)
    ses.get_configuration_set(ConfigurationSetName=name)
    admin(endpoint, "POST", "faults", {"ses_rps": None})
    # The throttled create changed nothing: only the first set exists.
    sets = ses.list_configuration_sets(PageSize=1000)["ConfigurationSets"]
    assert name in sets
    assert admin(endpoint, "GET", "calls")["throttled"].get("sesv2:CreateConfigurationSet", 0) >= 1


def test_error_rate(endpoint, ses):
    name = unique()
    admin(endpoint, "POST", "faults", {"error_rate": 1.0})
    with pytest.raises(ClientError) as err:
        ses.create_configuration_set(ConfigurationSetName=name)
    assert code(err) == "InternalFailure"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    for service, call in (
        ("sns", lambda c: c.create_topic(Name=unique("t"))),
        ("cloudwatch", lambda c: c.put_metric_data(Namespace="X", MetricData=[{"MetricName": "m", "Value": 1}])),
    ):
        with pytest.raises(ClientError) as err:
            call(client(endpoint, service))
        assert code(err) == "InternalFailure", service
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    # SQS is never failed; failed calls changed nothing.
    client(endpoint, "sqs").list_queues()
    admin(endpoint, "POST", "faults", {"error_rate": 0})
    with pytest.raises(ClientError) as err:
        ses.get_configuration_set(ConfigurationSetName=name)
    assert code(err) == "NotFoundException"


def test_faults_scoped_to_a_region(endpoint, ses):
    admin(endpoint, "POST", "faults", {"error_rate": 1.0, "region": "ap-southeast-2"})
    assert admin(endpoint, "GET", "faults")["regions"] == {
        "ap-southeast-2": {"ses_rps": None, "error_rate": 1.0, "seed": None}}
    elsewhere = boto3.client("sesv2", endpoint_url=endpoint, region_name="ap-southeast-2",
                             aws_access_key_id="testing", aws_secret_access_key="testing",
                             config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as err:
        elsewhere.get_account()
    assert code(err) == "InternalFailure"
    ses.get_account()  # us-east-1 is untouched
    admin(endpoint, "POST", "faults", {"error_rate": 0, "region": "ap-southeast-2"})
    assert admin(endpoint, "GET", "faults")["regions"] == {}
    elsewhere.get_account()


def test_error_rate_is_seeded(endpoint, ses):
    def pattern():
        admin(endpoint, "POST", "faults", {"error_rate": 0.5, "seed": 42})
        out = []
        for _ in range(12):
            try:
                ses.list_configuration_sets()
                out.append(True)
            except ClientError:
                out.append(False)
        return out

    first = pattern()
    assert first == pattern()
    assert True in first and False in first


# --- CloudWatch over rpc-v2-cbor (what the Rust SDK speaks) -----------------


def cbor_call(endpoint: str, operation: str, params: dict) -> tuple[int, dict]:
    model = botocore.session.get_session().get_service_model("cloudwatch")
    op = model.operation_model(operation)
    req = create_serializer("smithy-rpc-v2-cbor").serialize_to_request(params, op)
    http = urllib.request.Request(
        f"{endpoint}{req['url_path']}", data=req["body"], method="POST",
        headers={**req["headers"], "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/"
                                                    f"{REGION}/monitoring/aws4_request, SignedHeaders=host, Signature=x"})
    try:
        with urllib.request.urlopen(http, timeout=5) as resp:
            status, headers, body = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, headers, body = err.code, dict(err.headers), err.read()
    assert headers["smithy-protocol"] == "rpc-v2-cbor"
    headers = {k.lower(): v for k, v in headers.items()}
    parsed = create_parser("smithy-rpc-v2-cbor").parse(
        {"body": body, "headers": headers, "status_code": status}, op.output_shape)
    return status, parsed


def test_cloudwatch_cbor(endpoint):
    name = unique()
    dims = [{"Name": "ses:configuration-set", "Value": name}]
    now = dt.datetime.now(dt.timezone.utc)
    status, _ = cbor_call(endpoint, "PutMetricData", {"Namespace": "AWS/SES", "MetricData": [
        {"MetricName": "Reputation.BounceRate", "Dimensions": dims, "Value": 0.03, "Timestamp": now}]})
    assert status == 200
    status, out = cbor_call(endpoint, "GetMetricData", {
        "StartTime": now - dt.timedelta(minutes=5), "EndTime": now + dt.timedelta(minutes=1),
        "MetricDataQueries": [{"Id": "b", "MetricStat": {"Metric": {
            "Namespace": "AWS/SES", "MetricName": "Reputation.BounceRate", "Dimensions": dims},
            "Period": 60, "Stat": "Average"}}]})
    assert status == 200
    result = out["MetricDataResults"][0]
    assert result["Values"] == [0.03]
    assert isinstance(result["Timestamps"][0], dt.datetime)
    status, out = cbor_call(endpoint, "GetDashboard", {"DashboardName": unique("missing")})
    assert status >= 400
    assert out["Error"]["Code"] == "ResourceNotFound"


# --- the rest of moto --------------------------------------------------------


def test_other_services_answer(endpoint):
    assert client(endpoint, "sts").get_caller_identity()["Account"] == ACCOUNT
    assert "Users" in client(endpoint, "iam").list_users()


def test_moto_reset_resets_extension(endpoint, ses):
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name)
    ses.put_account_sending_attributes(SendingEnabled=False)
    admin(endpoint, "POST", "faults", {"error_rate": 0.25})
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=5).read()
    assert admin(endpoint, "GET", "faults") == {"ses_rps": None, "error_rate": 0.0, "seed": None, "regions": {}}
    assert name not in ses.list_configuration_sets(PageSize=1000)["ConfigurationSets"]
    assert ses.get_account()["SendingEnabled"] is True


def test_topic_signature_version_is_reported(endpoint):
    sns = client(endpoint, "sns")
    arn = sns.create_topic(Name=unique("sigv"))["TopicArn"]
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SignatureVersion"] == "1"
    sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SignatureVersion"] == "2"
