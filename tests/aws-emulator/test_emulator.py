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
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ses_ext.control import Control  # noqa: E402
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
    for region in admin(endpoint, "GET", "faults")["regions"]:
        admin(endpoint, "POST", "faults", {"ses_rps": None, "error_rate": 0, "region": region})
    admin(endpoint, "POST", "account", {"region": REGION, "enforcement_status": "HEALTHY",
                                        "sending_enabled": True, "production_access_enabled": True,
                                        "max_24_hour_send": None, "max_send_rate": None,
                                        "sent_last_24_hours": None})


def client(endpoint: str, service: str, attempts: int = 1, region: str = REGION):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=region,
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


# --- ListConfigurationSets ---------------------------------------------------
# AWS serves it as GET /v2/email/configuration-sets?NextToken=&PageSize= (the
# API reference) and as POST /v2/email/list-configuration-sets with a JSON
# body (the model of botocore >= 1.43.105 and aws-sdk-sesv2 1.145, which the
# operator uses). Each test lists in a region of its own so that it sees
# exactly the sets it made.


def ses_raw(endpoint: str, method: str, path: str, region: str = REGION,
            body: dict | None = None) -> tuple[int, dict[str, str], dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{endpoint}{path}", data=data, method=method, headers={
        "Content-Type": "application/json",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20240101/{region}/ses/aws4_request, "
                         "SignedHeaders=host, Signature=x"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, headers, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, headers, raw = err.code, dict(err.headers), err.read()
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(raw or b"{}")


def list_get(endpoint: str, region: str, **query) -> tuple[int, dict[str, str], dict]:
    qs = urllib.parse.urlencode(query)
    return ses_raw(endpoint, "GET", "/v2/email/configuration-sets" + (f"?{qs}" if qs else ""), region)


def make_sets(endpoint: str, region: str, n: int, prefix: str = "ls") -> list[str]:
    ses = client(endpoint, "sesv2", region=region)
    names = [unique(prefix) for _ in range(n)]
    with ThreadPoolExecutor(8) as pool:  # boto3 clients are thread-safe
        list(pool.map(lambda name: ses.create_configuration_set(ConfigurationSetName=name), names))
    return sorted(names)


def test_list_configuration_sets_get_paginates(endpoint):
    region = "ca-central-1"
    names = make_sets(endpoint, region, 5)
    pages, token = [], None
    while True:
        status, headers, out = list_get(endpoint, region, PageSize=2, **({"NextToken": token} if token else {}))
        assert status == 200, out
        assert headers["content-type"].startswith("application/json")
        assert set(out) <= {"ConfigurationSets", "NextToken"}
        pages.append(out["ConfigurationSets"])
        token = out.get("NextToken")
        if token is None:
            break
        assert isinstance(token, str) and token
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [n for p in pages for n in p] == names  # by name, each once
    # No parameters: one page, no NextToken (AWS leaves it out, not null).
    status, _, out = list_get(endpoint, region)
    assert (status, out) == (200, {"ConfigurationSets": names})
    # A page that ends exactly at the last set has no NextToken either.
    status, _, out = list_get(endpoint, region, PageSize=5)
    assert out == {"ConfigurationSets": names}


def test_list_configuration_sets_post_paginates(endpoint):
    # What boto3 1.44 and the Rust SDK send: POST /v2/email/list-configuration-sets.
    region = "ca-west-1"
    names = make_sets(endpoint, region, 3)
    ses = client(endpoint, "sesv2", region=region)
    first = ses.list_configuration_sets(PageSize=2)
    assert first["ConfigurationSets"] == names[:2]
    second = ses.list_configuration_sets(PageSize=2, NextToken=first["NextToken"])
    assert second["ConfigurationSets"] == names[2:]
    assert "NextToken" not in second
    # Tokens are the same on both routes.
    status, _, out = list_get(endpoint, region, PageSize=2, NextToken=first["NextToken"])
    assert (status, out) == (200, {"ConfigurationSets": names[2:]})
    listed, kwargs = [], {}
    while True:
        page = ses.list_configuration_sets(PageSize=1, **kwargs)
        assert len(page["ConfigurationSets"]) == 1
        listed += page["ConfigurationSets"]
        if "NextToken" not in page:
            break
        kwargs = {"NextToken": page["NextToken"]}
    assert listed == names
    # A token stays valid when sets are deleted or created between pages.
    first = ses.list_configuration_sets(PageSize=1)
    ses.delete_configuration_set(ConfigurationSetName=names[0])
    ses.delete_configuration_set(ConfigurationSetName=names[1])
    assert ses.list_configuration_sets(PageSize=1, NextToken=first["NextToken"])["ConfigurationSets"] == names[2:]


def test_list_configuration_sets_filter(endpoint):
    region = "ap-northeast-3"
    names = make_sets(endpoint, region, 2, "alpha") + make_sets(endpoint, region, 2, "beta")
    ses = client(endpoint, "sesv2", region=region)
    got = ses.list_configuration_sets(Filter={"CONFIGURATION_SET_NAME_CONTAINS": "pha-"})["ConfigurationSets"]
    assert got == [n for n in names if n.startswith("alpha")]
    with pytest.raises(ClientError) as err:
        ses.list_configuration_sets(Filter={"NAME_STARTS_WITH": "a"})
    assert code(err) == "BadRequestException"


def test_list_configuration_sets_page_size_limits(endpoint):
    region = "me-central-1"
    ses = client(endpoint, "sesv2", region=region)
    # Default and maximum page size: 1,000 (see README.md).
    names = make_sets(endpoint, region, 1001)
    out = ses.list_configuration_sets()
    assert out["ConfigurationSets"] == names[:1000]
    assert ses.list_configuration_sets(NextToken=out["NextToken"])["ConfigurationSets"] == names[1000:]
    status, _, out = list_get(endpoint, region)
    assert len(out["ConfigurationSets"]) == 1000 and "NextToken" in out
    assert len(ses.list_configuration_sets(PageSize=1000)["ConfigurationSets"]) == 1000
    for size in (0, -1, 1001, 1.5, "10", True):
        with pytest.raises(ClientError) as err:
            ses.list_configuration_sets(PageSize=size)
        assert code(err) == "BadRequestException", size
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    for query in ({"PageSize": "0"}, {"PageSize": "1001"}, {"PageSize": "ten"}, {"PageSize": ""},
                  {"NextToken": "not-a-token"}):
        status, headers, out = list_get(endpoint, region, **query)
        assert status == 400, query
        assert headers["x-amzn-errortype"] == "BadRequestException"
    with pytest.raises(ClientError) as err:
        ses.list_configuration_sets(NextToken="bm9wZQ==")
    assert code(err) == "BadRequestException"


def test_list_configuration_sets_counted_and_throttled(endpoint):
    region = "ap-south-2"
    make_sets(endpoint, region, 1)
    admin(endpoint, "POST", "calls/reset")
    assert list_get(endpoint, region)[0] == 200
    client(endpoint, "sesv2", region=region).list_configuration_sets()
    assert admin(endpoint, "GET", "calls")["calls"] == {"sesv2:ListConfigurationSets": 2}
    admin(endpoint, "POST", "faults", {"ses_rps": 0.05, "region": region})
    assert list_get(endpoint, region)[0] == 200
    status, headers, out = list_get(endpoint, region)
    assert (status, headers["x-amzn-errortype"], out) == (429, "TooManyRequestsException",
                                                          {"message": "Too many requests."})
    assert admin(endpoint, "GET", "calls")["throttled"] == {"sesv2:ListConfigurationSets": 1}
    admin(endpoint, "POST", "faults", {"error_rate": 1.0, "region": region})
    status, headers, _ = list_get(endpoint, region)
    assert (status, headers["x-amzn-errortype"]) == (500, "InternalFailure")


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


VALIDATION = {"ConditionThreshold": {"ConditionThresholdEnabled": "ENABLED",
                                     "OverallConfidenceThreshold": {"ConfidenceVerdictThreshold": "HIGH"}}}


def test_auto_validation_options_on_a_set(ses):
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name, SuppressionOptions={
        "SuppressedReasons": ["BOUNCE"], "ValidationOptions": VALIDATION})
    assert ses.get_configuration_set(ConfigurationSetName=name)["SuppressionOptions"] == {
        "SuppressedReasons": ["BOUNCE"], "ValidationOptions": VALIDATION}
    managed = {"ConditionThreshold": {"ConditionThresholdEnabled": "DISABLED",
                                      "OverallConfidenceThreshold": {"ConfidenceVerdictThreshold": "MANAGED"}}}
    ses.put_configuration_set_suppression_options(ConfigurationSetName=name, SuppressedReasons=["COMPLAINT"],
                                                  ValidationOptions=managed)
    assert ses.get_configuration_set(ConfigurationSetName=name)["SuppressionOptions"] == {
        "SuppressedReasons": ["COMPLAINT"], "ValidationOptions": managed}
    # Without OverallConfidenceThreshold; a Put replaces the whole group.
    bare = {"ConditionThreshold": {"ConditionThresholdEnabled": "ENABLED"}}
    ses.put_configuration_set_suppression_options(ConfigurationSetName=name, ValidationOptions=bare)
    assert ses.get_configuration_set(ConfigurationSetName=name)["SuppressionOptions"] == {
        "SuppressedReasons": [], "ValidationOptions": bare}
    ses.put_configuration_set_suppression_options(ConfigurationSetName=name, SuppressedReasons=["BOUNCE"])
    assert ses.get_configuration_set(ConfigurationSetName=name)["SuppressionOptions"] == {
        "SuppressedReasons": ["BOUNCE"]}


@pytest.mark.parametrize("options", [
    {"ConditionThreshold": {"ConditionThresholdEnabled": "ON"}},
    {"ConditionThreshold": {"ConditionThresholdEnabled": "ENABLED",
                            "OverallConfidenceThreshold": {"ConfidenceVerdictThreshold": "LOW"}}},
    {"ConditionThreshold": {"OverallConfidenceThreshold": {"ConfidenceVerdictThreshold": "HIGH"}}},
    {"ConditionThreshold": {"ConditionThresholdEnabled": "ENABLED", "OverallConfidenceThreshold": {}}},
    {},
])
def test_auto_validation_bad_values(ses, options):
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name)
    with pytest.raises(ClientError) as err:
        ses.put_configuration_set_suppression_options(ConfigurationSetName=name, ValidationOptions=options)
    assert code(err) == "BadRequestException"
    with pytest.raises(ClientError) as err:
        ses.create_configuration_set(ConfigurationSetName=unique(), SuppressionOptions={"ValidationOptions": options})
    assert code(err) == "BadRequestException"
    with pytest.raises(ClientError) as err:
        ses.put_account_suppression_attributes(SuppressedReasons=["BOUNCE"], ValidationAttributes=options)
    assert code(err) == "BadRequestException"
    assert "SuppressionOptions" not in ses.get_configuration_set(ConfigurationSetName=name)


def test_account_auto_validation(endpoint):
    # A region of its own: account state outlives the test.
    ses = client(endpoint, "sesv2", region="eu-central-1")
    assert "ValidationAttributes" not in ses.get_account()["SuppressionAttributes"]
    ses.put_account_suppression_attributes(SuppressedReasons=["BOUNCE"], ValidationAttributes=VALIDATION)
    assert ses.get_account()["SuppressionAttributes"] == {"SuppressedReasons": ["BOUNCE"],
                                                          "ValidationAttributes": VALIDATION}
    # Left out: kept.
    ses.put_account_suppression_attributes(SuppressedReasons=["BOUNCE", "COMPLAINT"])
    assert ses.get_account()["SuppressionAttributes"] == {"SuppressedReasons": ["BOUNCE", "COMPLAINT"],
                                                          "ValidationAttributes": VALIDATION}
    other = client(endpoint, "sesv2", region="eu-west-2")
    assert "ValidationAttributes" not in other.get_account()["SuppressionAttributes"]


def test_send_quota_admin(endpoint, ses, pipeline):
    admin(endpoint, "POST", "account", {"region": REGION, "max_24_hour_send": 1000, "max_send_rate": 20,
                                        "sent_last_24_hours": 850})
    assert ses.get_account()["SendQuota"] == {"Max24HourSend": 1000.0, "MaxSendRate": 20.0,
                                              "SentLast24Hours": 850.0}
    # The override holds while mail is sent...
    send(ses, "success@simulator.amazonses.com", pipeline["set"])
    assert ses.get_account()["SendQuota"]["SentLast24Hours"] == 850.0
    # ...until a POST sets it to null: then the count shows again.
    admin(endpoint, "POST", "account", {"region": REGION, "sent_last_24_hours": None})
    quota = ses.get_account()["SendQuota"]
    assert quota["Max24HourSend"] == 1000.0 and quota["SentLast24Hours"] >= 1.0
    admin(endpoint, "POST", "account", {"region": REGION, "max_24_hour_send": None, "max_send_rate": None})
    assert ses.get_account()["SendQuota"]["Max24HourSend"] == 50_000.0
    for bad in ({"max_send_rate": "fast"}, {"max_24_hour_send": -1}, {"sent_last_24_hours": True}):
        with pytest.raises(urllib.error.HTTPError) as err:
            admin(endpoint, "POST", "account", {"region": REGION, "enforcement_status": "PROBATION", **bad})
        assert err.value.code == 400
    assert ses.get_account()["EnforcementStatus"] == "HEALTHY"


def test_moto_reset_clears_quota_overrides(endpoint, ses):
    admin(endpoint, "POST", "account", {"region": "ap-south-1", "max_24_hour_send": 10, "sent_last_24_hours": 9})
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=5).read()
    quota = client(endpoint, "sesv2", region="ap-south-1").get_account()["SendQuota"]
    assert quota == {"Max24HourSend": 50_000.0, "MaxSendRate": 14.0, "SentLast24Hours": 0.0}


# --- sending and events ------------------------------------------------------


def sender_identity(ses, name: str) -> None:
    """Create an identity to send from; AWS refuses to create one twice."""
    try:
        ses.create_email_identity(EmailIdentity=name)
    except ClientError as e:
        if code_of(e) != "AlreadyExistsException":
            raise


def code_of(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def allow_ses(sns, topic: str, set_name: str) -> None:
    """The topic policy that lets SES publish for one set (what the
    operator writes): without it the emulator drops SES's events, as SNS."""
    set_arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/{set_name}"
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ses.amazonaws.com"}, "Action": "SNS:Publish",
        "Resource": topic,
        "Condition": {"StringEquals": {"AWS:SourceAccount": ACCOUNT, "AWS:SourceArn": set_arn}}}]}
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(policy))


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
    sender_identity(ses, "example.com")
    ses.create_configuration_set(ConfigurationSetName=name)
    allow_ses(sns, topic, name)
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


def test_the_topic_policy_decides_what_ses_may_publish(endpoint, ses, pipeline):
    sns = client(endpoint, "sns")
    topic = pipeline["topic"]
    send(ses, "success@simulator.amazonses.com", pipeline["set"])
    assert [e["eventType"] for e in pipeline["drain"]()] == ["Send", "Delivery"]
    # Another set of the account publishing to the same topic: refused.
    other = unique()
    ses.create_configuration_set(ConfigurationSetName=other)
    ses.create_configuration_set_event_destination(
        ConfigurationSetName=other, EventDestinationName="borrowed",
        EventDestination={"Enabled": True, "SnsDestination": {"TopicArn": topic}, "MatchingEventTypes": ["SEND"]})
    send(ses, "success@simulator.amazonses.com", other)
    assert pipeline["drain"]() == []
    # SNS's default policy (the owner, by AWS:SourceOwner) does not admit SES.
    default = {"Version": "2008-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["SNS:Publish", "SNS:Subscribe"],
        "Resource": topic, "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT}}}]}
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(default))
    send(ses, "success@simulator.amazonses.com", pipeline["set"])
    assert pipeline["drain"]() == []
    dropped = admin(endpoint, "GET", "calls")["dropped_events"]
    assert dropped[topic] == 3, dropped


@pytest.mark.parametrize("policy, allowed", [
    ({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sns:*", "Resource": "*"}}, True),
    ({"Statement": [{"Effect": "Allow", "Principal": {"Service": ["ses.amazonaws.com"]}, "Action": "SNS:Publish",
                     "Resource": "arn:aws:sns:us-east-1:123456789012:t?",
                     "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:ses:*:123456789012:configuration-set/o*"}}}]},
     True),
    ({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ses.amazonaws.com"}, "Action": "SNS:Publish",
                     "Resource": "*", "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:ses:*:*:configuration-set/x"}}}]},
     False),
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "Principal": {"Service": "ses.amazonaws.com"}, "Action": "sns:Publish",
                     "Resource": "*"}]}, False),
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sns:Publish", "Resource": "*",
                     "Condition": {"StringEqualsIfExists": {"aws:SourceOwner": "x"}}}]}, True),
    ("not json", False),
])
def test_topic_policy_rules(policy, allowed):
    from ses_ext.topic_policy import ses_may_publish
    text = policy if isinstance(policy, str) else json.dumps(policy)
    assert ses_may_publish(text, "arn:aws:sns:us-east-1:123456789012:t1", ACCOUNT,
                           "arn:aws:ses:us-east-1:123456789012:configuration-set/orders") is allowed


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


def test_request_log(endpoint, ses):
    """Every call, faulted or not, in order, with its signing key and time."""
    start = admin(endpoint, "GET", "log?since=0&limit=100000")["next"]
    name = unique()
    mine = boto3.client("sesv2", endpoint_url=endpoint, region_name="eu-north-1", aws_access_key_id="LOGKEY",
                        aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))
    mine.create_configuration_set(ConfigurationSetName=name, Tags=[{"Key": "ses.reputation.io/owner",
                                                                     "Value": "c/ns/a"}])
    mine.put_configuration_set_sending_options(ConfigurationSetName=name, SendingEnabled=False)
    admin(endpoint, "POST", "faults", {"error_rate": 1.0, "region": "eu-north-1"})
    with pytest.raises(ClientError):
        mine.put_configuration_set_sending_options(ConfigurationSetName=name, SendingEnabled=True)
    admin(endpoint, "POST", "faults", {"error_rate": 0, "region": "eu-north-1"})
    with pytest.raises(ClientError):
        mine.get_configuration_set(ConfigurationSetName=unique())
    page = admin(endpoint, "GET", f"log?since={start}")
    entries = [e for e in page["entries"] if e["key"] == "LOGKEY"]
    assert [(e["op"], e["outcome"], e.get("sending_enabled")) for e in entries] == [
        ("sesv2:CreateConfigurationSet", "ok", True),
        ("sesv2:PutConfigurationSetSendingOptions", "ok", False),
        ("sesv2:PutConfigurationSetSendingOptions", "fail", True),
        ("sesv2:GetConfigurationSet", "status:404", None),
    ]
    assert entries[0]["resource"] == f"configuration-set/{name}" and entries[0]["region"] == "eu-north-1"
    assert entries[0]["owner"] == "c/ns/a" and "owner" not in entries[1]
    assert entries[3]["resource"] is None and entries[3]["reads"].startswith("configuration-set/cs-")
    sns = boto3.client("sns", endpoint_url=endpoint, region_name="eu-north-1", aws_access_key_id="LOGKEY",
                       aws_secret_access_key="x")
    sns.create_topic(Name=unique("t"), Tags=[{"Key": "team", "Value": "x"},
                                             {"Key": "ses.reputation.io/owner", "Value": "c/ns/b"}])
    last = admin(endpoint, "GET", f"log?since={page['next']}")["entries"][-1]
    assert (last["op"], last["owner"]) == ("sns:CreateTopic", "c/ns/b")
    assert all(e["signed"] and e["signed"].endswith("Z") for e in entries)
    seqs = [e["seq"] for e in page["entries"]]
    assert seqs == list(range(start, start + len(seqs))) and page["next"] == start + len(seqs)


def test_slow_responses(endpoint, ses):
    admin(endpoint, "POST", "faults", {"slow_rate": 1.0, "slow_seconds": 1.5, "region": "eu-south-1"})
    slow = client(endpoint, "sesv2", region="eu-south-1")
    began = time.monotonic()
    slow.create_configuration_set(ConfigurationSetName=unique())
    assert time.monotonic() - began >= 1.5
    began = time.monotonic()
    ses.create_configuration_set(ConfigurationSetName=unique())
    assert time.monotonic() - began < 1.5, "another region is not slowed"
    admin(endpoint, "POST", "faults", {"region": "eu-south-1"})
    assert "eu-south-1" not in admin(endpoint, "GET", "faults")["regions"]
    for bad in ({"slow_rate": 2}, {"slow_seconds": -1}, {"slow_seconds": 61}):
        with pytest.raises(urllib.error.HTTPError):
            admin(endpoint, "POST", "faults", bad)


def test_throttling(endpoint, ses):
    name = unique()
    sender_identity(ses, "example.com")
    # One token every 4 s: the second call lands well inside the refill even
    # on a loaded machine (at 1/s a slow second request got a fresh token).
    assert admin(endpoint, "POST", "faults", {"ses_rps": 0.25})["ses_rps"] == 0.25
    assert admin(endpoint, "GET", "faults") == {"ses_rps": 0.25, "ses_burst": 1, "error_rate": 0.0, "seed": None,
                                                 "sqs": False, "slow_rate": 0.0, "slow_seconds": 0.0,
                                                 "regions": {}}
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


def test_ses_burst(endpoint, ses):
    # One token every 20 s, bucket of 3: three calls pass at once, the fourth
    # is throttled.
    faults = admin(endpoint, "POST", "faults", {"ses_rps": 0.05, "ses_burst": 3})
    assert (faults["ses_rps"], faults["ses_burst"]) == (0.05, 3)
    for _ in range(3):
        ses.create_configuration_set(ConfigurationSetName=unique())
    with pytest.raises(ClientError) as err:
        ses.create_configuration_set(ConfigurationSetName=unique())
    assert code(err) == "TooManyRequestsException"
    # Region-scoped, and left out means 1.
    admin(endpoint, "POST", "faults", {"ses_rps": 0.05, "region": "ap-southeast-2"})
    assert admin(endpoint, "GET", "faults")["regions"]["ap-southeast-2"]["ses_burst"] == 1
    admin(endpoint, "POST", "faults", {"ses_rps": 0.05, "ses_burst": 2, "region": "ap-southeast-2"})
    assert admin(endpoint, "GET", "faults")["regions"]["ap-southeast-2"]["ses_burst"] == 2
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(urllib.error.HTTPError) as err:
            admin(endpoint, "POST", "faults", {"ses_rps": 1.0, "ses_burst": bad})
        assert err.value.code == 400, bad
    # A refused setting changed nothing.
    assert admin(endpoint, "GET", "faults")["ses_burst"] == 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_rules():
    """The rules README.md documents, on a clock the test moves."""
    clock = FakeClock()
    control = Control(clock=clock)
    control.set_faults(None, 2.0, 0.0, None, burst=3)

    def admit(operation: str = "CreateConfigurationSet", service: str = "sesv2", account: str = ACCOUNT,
              region: str = REGION) -> str | None:
        return control.admit(service, operation, account, region)

    # A new bucket is full: `burst` calls pass at once.
    assert [admit() for _ in range(4)] == [None, None, None, "throttle"]
    # Refill is continuous at ses_rps tokens/s; a call needs a whole token.
    clock.now += 0.25
    assert admit() == "throttle"
    # Throttled calls take nothing and do not delay the refill: at exactly
    # 1/ses_rps s after the bucket ran dry the call passes.
    clock.now += 0.25
    assert admit() is None
    assert admit() == "throttle"
    # Sending, other services and SES v1 are never throttled nor take tokens.
    for op in ("SendEmail", "SendRawEmail", "SendBulkEmail"):
        assert admit(op) is None
    assert admit("CreateTopic", "sns") is None
    assert admit("PutMetricData", "cloudwatch") is None
    assert admit("ListConfigurationSets", "ses") is None
    # Buckets are per account and region.
    assert admit(region="eu-west-1") is None
    assert admit(account="210987654321") is None
    # An idle bucket fills up to `burst`, no further.
    clock.now += 3600
    assert [admit() for _ in range(4)] == [None, None, None, "throttle"]
    snapshot = control.snapshot()
    assert snapshot["throttled"] == {"sesv2:CreateConfigurationSet": 4}
    assert snapshot["calls"]["sesv2:CreateConfigurationSet"] == 13


def test_token_bucket_boundary_is_inclusive():
    # 1/3 s is not a float: the boundary still admits (tolerance 1e-9 token).
    clock = FakeClock()
    control = Control(clock=clock)
    control.set_faults(None, 3.0, 0.0, None)
    assert control.admit("sesv2", "GetAccount", ACCOUNT, REGION) is None
    for _ in range(50):
        clock.now += 1 / 3
        assert control.admit("sesv2", "GetAccount", ACCOUNT, REGION) is None
        assert control.admit("sesv2", "GetAccount", ACCOUNT, REGION) == "throttle"
    # Changing a setting starts from a full bucket.
    control.set_faults(None, 3.0, 0.0, None, burst=2)
    assert [control.admit("sesv2", "GetAccount", ACCOUNT, REGION) for _ in range(3)] == [None, None, "throttle"]


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
    # SQS is failed only when asked (tests read their own queues); failed
    # calls changed nothing.
    sqs = client(endpoint, "sqs")
    sqs.list_queues()
    admin(endpoint, "POST", "faults", {"error_rate": 1.0, "sqs": True})
    with pytest.raises(ClientError) as err:
        sqs.list_queues()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    admin(endpoint, "POST", "faults", {"error_rate": 0})
    with pytest.raises(ClientError) as err:
        ses.get_configuration_set(ConfigurationSetName=name)
    assert code(err) == "NotFoundException"


def test_faults_scoped_to_a_region(endpoint, ses):
    admin(endpoint, "POST", "faults", {"error_rate": 1.0, "region": "ap-southeast-2"})
    assert admin(endpoint, "GET", "faults")["regions"] == {
        "ap-southeast-2": {"ses_rps": None, "ses_burst": 1, "error_rate": 1.0, "seed": None, "sqs": False,
                           "slow_rate": 0.0, "slow_seconds": 0.0}}
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


def cbor_call(endpoint: str, operation: str, params: dict, region: str = REGION) -> tuple[int, dict]:
    model = botocore.session.get_session().get_service_model("cloudwatch")
    op = model.operation_model(operation)
    req = create_serializer("smithy-rpc-v2-cbor").serialize_to_request(params, op)
    http = urllib.request.Request(
        f"{endpoint}{req['url_path']}", data=req["body"], method="POST",
        headers={**req["headers"], "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/"
                                                    f"{region}/monitoring/aws4_request, SignedHeaders=host, Signature=x"})
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


def put_metric(endpoint: str, region: str, value: float, when: dt.datetime, dims: list[tuple[str, str]] = (),
               name: str = "Reputation.BounceRate", namespace: str = "AWS/SES", **extra) -> None:
    datum = {"MetricName": name, "Value": value, "Timestamp": when, **extra}
    if dims:
        datum["Dimensions"] = [{"Name": k, "Value": v} for k, v in dims]
    status, out = cbor_call(endpoint, "PutMetricData", {"Namespace": namespace, "MetricData": [datum]}, region)
    assert status == 200, out


def metric_data(endpoint: str, region: str, start: dt.datetime, end: dt.datetime,
                queries: dict[str, list[tuple[str, str]] | None], period: int = 60, stat: str = "Average",
                name: str = "Reputation.BounceRate") -> dict[str, list[tuple[dt.datetime, float]]]:
    """GetMetricData over CBOR, as the Rust SDK sends it: a query for the
    account-level metric carries no Dimensions member at all."""
    built = []
    for qid, dims in queries.items():
        metric = {"Namespace": "AWS/SES", "MetricName": name}
        if dims is not None:
            metric["Dimensions"] = [{"Name": k, "Value": v} for k, v in dims]
        built.append({"Id": qid, "ReturnData": True,
                      "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}})
    status, out = cbor_call(endpoint, "GetMetricData", {"StartTime": start, "EndTime": end,
                                                        "ScanBy": "TimestampAscending",
                                                        "MetricDataQueries": built}, region)
    assert status == 200, out
    return {r["Id"]: list(zip(r.get("Timestamps", []), r.get("Values", []))) for r in out["MetricDataResults"]}


def test_cloudwatch_matches_the_exact_dimension_set(endpoint):
    region = "eu-north-1"  # this test's own CloudWatch store
    a, b = unique("a"), unique("b")
    set_dim = "ses:configuration-set"
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    when = now - dt.timedelta(minutes=2)
    put_metric(endpoint, region, 0.01, when)  # the account's rate
    put_metric(endpoint, region, 0.05, when, [(set_dim, a)])
    put_metric(endpoint, region, 0.09, when, [(set_dim, b)])
    put_metric(endpoint, region, 0.5, when, [(set_dim, a)], namespace="Custom/Other")
    put_metric(endpoint, region, 0.7, when, [("campaign", "x"), (set_dim, a)])
    got = metric_data(endpoint, region, now - dt.timedelta(minutes=10), now + dt.timedelta(minutes=1), {
        "account": None,
        "empty": [],
        "a": [(set_dim, a)],
        "b": [(set_dim, b)],
        "c": [(set_dim, unique("c"))],
        "a_campaign": [(set_dim, a), ("campaign", "x")],  # the other order than put
        "campaign": [("campaign", "x")],
    })
    values = {qid: [v for _, v in points] for qid, points in got.items()}
    assert values == {
        "account": [0.01],  # not the average over every set's data
        "empty": [0.01],
        "a": [0.05],  # neither b, the account, Custom/Other nor the 2-dimension metric
        "b": [0.09],
        "c": [],
        "a_campaign": [0.7],
        "campaign": [],  # a subset of a metric's dimensions is another metric
    }


def test_cloudwatch_period_alignment(endpoint):
    region = "eu-west-3"
    minute = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
    put_metric(endpoint, region, 1.0, minute + dt.timedelta(seconds=10))
    put_metric(endpoint, region, 3.0, minute + dt.timedelta(seconds=70))
    put_metric(endpoint, region, 5.0, minute + dt.timedelta(seconds=75))
    # Less than 15 days ago: StartTime rounds down to the whole minute, and
    # datapoints are at StartTime + k * Period.
    start = minute + dt.timedelta(seconds=34, microseconds=500_000)
    got = metric_data(endpoint, region, start, minute + dt.timedelta(minutes=5), {"q": None})
    assert got["q"] == [(minute, 1.0), (minute + dt.timedelta(minutes=1), 4.0)]
    got = metric_data(endpoint, region, start, minute + dt.timedelta(minutes=5), {"q": None}, period=120)
    assert got["q"] == [(minute, 3.0)]
    # Period 5/10/20/30: rounds down to that division of the minute.
    put_metric(endpoint, region, 7.0, minute + dt.timedelta(seconds=31), name="HighRes", StorageResolution=1)
    got = metric_data(endpoint, region, start, minute + dt.timedelta(minutes=1), {"q": None}, period=10,
                      name="HighRes")
    assert got["q"] == [(minute + dt.timedelta(seconds=30), 7.0)]
    # 15 to 63 days ago: down to the 5-minute clock interval.
    old = minute.replace(minute=minute.minute - minute.minute % 5) - dt.timedelta(days=20)
    put_metric(endpoint, region, 2.0, old + dt.timedelta(minutes=1), name="Old")
    got = metric_data(endpoint, region, old + dt.timedelta(minutes=2, seconds=34), old + dt.timedelta(hours=1),
                      {"q": None}, period=300, name="Old")
    assert got["q"] == [(old, 2.0)]
    # More than 63 days ago: down to the hour.
    older = minute.replace(minute=0) - dt.timedelta(days=70)
    put_metric(endpoint, region, 6.0, older + dt.timedelta(minutes=7), name="Older")
    got = metric_data(endpoint, region, older + dt.timedelta(minutes=12), older + dt.timedelta(hours=2),
                      {"q": None}, period=3600, name="Older")
    assert got["q"] == [(older, 6.0)]


def test_cloudwatch_refuses_a_bad_period(endpoint):
    now = dt.datetime.now(dt.timezone.utc)
    for period in (7, 45, 90):  # the SDKs refuse 0 themselves
        status, out = cbor_call(endpoint, "GetMetricData", {
            "StartTime": now - dt.timedelta(minutes=5), "EndTime": now,
            "MetricDataQueries": [{"Id": "q", "MetricStat": {"Metric": {
                "Namespace": "AWS/SES", "MetricName": "Reputation.BounceRate"}, "Period": period, "Stat": "Average"}}]})
        assert status == 400, period
        assert out["Error"]["Code"] == "ValidationError"


def test_cloudwatch_math_insights_and_json_protocol(endpoint):
    # What the replaced GetMetricData still does, through boto3's JSON protocol.
    cw = client(endpoint, "cloudwatch", region="us-west-1")
    name = unique("m")
    cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": name, "Value": 2.0}])  # no Timestamp
    now = dt.datetime.now(dt.timezone.utc)
    out = cw.get_metric_data(StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1),
                             MetricDataQueries=[
                                 {"Id": "m1", "ReturnData": False, "MetricStat": {
                                     "Metric": {"Namespace": "App", "MetricName": name}, "Period": 60, "Stat": "Sum"}},
                                 # moto's metric math knows only an expression naming a query.
                                 {"Id": "same", "Expression": "m1"},
                                 {"Id": "sel", "Expression": f'SELECT SUM("{name}") FROM "App"', "Period": 60},
                             ])["MetricDataResults"]
    assert [r["Id"] for r in out] == ["same", "sel"]
    assert out[0]["Values"] == [2.0]
    assert out[0]["Timestamps"][0].second == 0  # on the minute
    assert out[1]["Values"] == [2.0]


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
    assert admin(endpoint, "GET", "faults") == {"ses_rps": None, "ses_burst": 1, "error_rate": 0.0, "seed": None,
                                                 "sqs": False, "slow_rate": 0.0, "slow_seconds": 0.0,
                                                 "regions": {}}
    assert name not in ses.list_configuration_sets(PageSize=1000)["ConfigurationSets"]
    assert ses.get_account()["SendingEnabled"] is True


def test_topic_signature_version_is_reported(endpoint):
    sns = client(endpoint, "sns")
    arn = sns.create_topic(Name=unique("sigv"))["TopicArn"]
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SignatureVersion"] == "1"
    sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SignatureVersion"] == "2"


def test_calls_are_counted_per_signing_access_key(endpoint):
    admin(endpoint, "POST", "calls/reset")
    for key, n in (("replica-a", 2), ("replica-b", 1)):
        ses = boto3.client(
            "sesv2", endpoint_url=endpoint, region_name=REGION,
            aws_access_key_id=key, aws_secret_access_key="testing",
        )
        for _ in range(n):
            ses.get_account()
    by_key = admin(endpoint, "GET", "calls")["by_access_key"]
    assert by_key["replica-a"] == {"sesv2:GetAccount": 2}
    assert by_key["replica-b"] == {"sesv2:GetAccount": 1}


# --- email identities ----------------------------------------------------------


def test_domain_identity_dkim_tokens_and_verification(endpoint, ses):
    domain = f"{unique('d')}.example.org"
    created = ses.create_email_identity(EmailIdentity=domain, DkimSigningAttributes={"NextSigningKeyLength": "RSA_2048_BIT"},
                                        Tags=[{"Key": "team", "Value": "mail"}])
    assert created["IdentityType"] == "DOMAIN"
    assert created["VerifiedForSendingStatus"] is False
    tokens = created["DkimAttributes"]["Tokens"]
    assert len(tokens) == 3 and all(len(t) == 32 for t in tokens)
    got = ses.get_email_identity(EmailIdentity=domain)
    assert got["VerificationStatus"] == "PENDING"
    assert got["DkimAttributes"]["Status"] == "PENDING"
    assert got["DkimAttributes"]["SigningEnabled"] is True
    assert got["DkimAttributes"]["NextSigningKeyLength"] == "RSA_2048_BIT"
    assert got["DkimAttributes"]["Tokens"] == tokens
    assert got["Tags"] == [{"Key": "team", "Value": "mail"}]
    with pytest.raises(ClientError) as err:
        ses.create_email_identity(EmailIdentity=domain)
    assert code(err) == "AlreadyExistsException"

    admin(endpoint, "POST", "identity", {"identity": domain, "verification": "SUCCESS"})
    got = ses.get_email_identity(EmailIdentity=domain)
    assert (got["VerificationStatus"], got["VerifiedForSendingStatus"], got["DkimAttributes"]["Status"]) == (
        "SUCCESS", True, "SUCCESS")
    assert "LastSuccessTimestamp" in got["VerificationInfo"]

    admin(endpoint, "POST", "identity", {"identity": domain, "verification": "FAILED", "error_type": "HOST_NOT_FOUND"})
    got = ses.get_email_identity(EmailIdentity=domain)
    assert got["VerificationStatus"] == "FAILED"
    assert got["VerificationInfo"]["ErrorType"] == "HOST_NOT_FOUND"

    rotated = admin(endpoint, "POST", "identity", {"identity": domain, "rotate_dkim": True})
    assert rotated["dkim"]["Tokens"] != tokens
    assert ses.get_email_identity(EmailIdentity=domain)["DkimAttributes"]["Tokens"] == rotated["dkim"]["Tokens"]

    ses.delete_email_identity(EmailIdentity=domain)
    with pytest.raises(ClientError) as err:
        ses.get_email_identity(EmailIdentity=domain)
    assert code(err) == "NotFoundException"


def test_identity_attribute_calls(ses):
    domain = f"{unique('d')}.example.org"
    name = unique()
    ses.create_configuration_set(ConfigurationSetName=name)
    ses.create_email_identity(EmailIdentity=domain)
    ses.put_email_identity_dkim_attributes(EmailIdentity=domain)  # SigningEnabled left out: false
    ses.put_email_identity_dkim_signing_attributes(EmailIdentity=domain, SigningAttributesOrigin="AWS_SES",
                                                   SigningAttributes={"NextSigningKeyLength": "RSA_1024_BIT"})
    ses.put_email_identity_mail_from_attributes(EmailIdentity=domain, MailFromDomain=f"bounce.{domain}",
                                                BehaviorOnMxFailure="REJECT_MESSAGE")
    ses.put_email_identity_configuration_set_attributes(EmailIdentity=domain, ConfigurationSetName=name)
    ses.put_email_identity_feedback_attributes(EmailIdentity=domain)
    ses.tag_resource(ResourceArn=f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{domain}",
                     Tags=[{"Key": "k", "Value": "v"}])
    got = ses.get_email_identity(EmailIdentity=domain)
    assert got["DkimAttributes"]["SigningEnabled"] is False
    assert got["DkimAttributes"]["NextSigningKeyLength"] == "RSA_1024_BIT"
    assert got["MailFromAttributes"] == {"MailFromDomain": f"bounce.{domain}", "MailFromDomainStatus": "PENDING",
                                         "BehaviorOnMxFailure": "REJECT_MESSAGE"}
    assert got["ConfigurationSetName"] == name
    assert got["FeedbackForwardingStatus"] is False
    assert got["Tags"] == [{"Key": "k", "Value": "v"}]

    with pytest.raises(ClientError) as err:
        ses.put_email_identity_mail_from_attributes(EmailIdentity=domain, MailFromDomain="bounce.other.org")
    assert code(err) == "BadRequestException"
    with pytest.raises(ClientError) as err:
        ses.put_email_identity_configuration_set_attributes(EmailIdentity=domain, ConfigurationSetName=unique())
    assert code(err) == "NotFoundException"
    with pytest.raises(ClientError) as err:
        ses.create_email_identity(EmailIdentity="not an identity")
    assert code(err) == "BadRequestException"
    with pytest.raises(ClientError) as err:
        ses.get_email_identity(EmailIdentity=f"missing.{domain}")
    assert code(err) == "NotFoundException"
    ses.put_email_identity_configuration_set_attributes(EmailIdentity=domain)
    assert "ConfigurationSetName" not in ses.get_email_identity(EmailIdentity=domain)


def test_address_identity_has_no_dkim_tokens(ses):
    address = f"{unique('a')}@example.net"
    created = ses.create_email_identity(EmailIdentity=address)
    assert created["IdentityType"] == "EMAIL_ADDRESS"
    assert "Tokens" not in created["DkimAttributes"]
    assert created["DkimAttributes"]["Status"] == "NOT_STARTED"


def test_send_without_set_uses_identity_default_set(endpoint, ses):
    sns, sqs = client(endpoint, "sns"), client(endpoint, "sqs")
    domain = f"{unique('d')}.example.org"
    name = unique()
    topic = sns.create_topic(Name=unique("topic"))["TopicArn"]
    url = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    ses.create_configuration_set(ConfigurationSetName=name)
    allow_ses(sns, topic, name)
    ses.create_configuration_set_event_destination(
        ConfigurationSetName=name, EventDestinationName="all",
        EventDestination={"Enabled": True, "SnsDestination": {"TopicArn": topic}, "MatchingEventTypes": ["SEND"]})
    ses.create_email_identity(EmailIdentity=domain, ConfigurationSetName=name)
    message_id = ses.send_email(FromEmailAddress=f"app@{domain}",
                                Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
                                Content={"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "x"}}}})[
        "MessageId"]
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    events = [json.loads(m["Body"]) for m in msgs]
    assert [(e["eventType"], e["mail"]["messageId"]) for e in events] == [("Send", message_id)]
    assert events[0]["mail"]["tags"]["ses:configuration-set"] == [name]


# --- write log and denied roles ----------------------------------------------


def assumed(endpoint: str, service: str, role_arn: str):
    """A client signed with credentials from AssumeRole of `role_arn`."""
    creds = client(endpoint, "sts").assume_role(RoleArn=role_arn, RoleSessionName="test")["Credentials"]
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def test_writes_are_logged_per_configuration_set_and_topic(endpoint, ses):
    admin(endpoint, "POST", "calls/reset")
    name, other = unique("wl"), unique("wl")
    arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/{name}"
    ses.create_configuration_set(ConfigurationSetName=name)
    ses.create_configuration_set(ConfigurationSetName=other)
    with pytest.raises(ClientError):  # AlreadyExists: refused, so not a write
        ses.create_configuration_set(ConfigurationSetName=other)
    with pytest.raises(ClientError):  # NotFound
        ses.put_configuration_set_sending_options(ConfigurationSetName=unique("none"), SendingEnabled=True)
    ses.put_configuration_set_sending_options(ConfigurationSetName=name, SendingEnabled=False)
    ses.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
    ses.untag_resource(ResourceArn=arn, TagKeys=["k"])
    ses.get_configuration_set(ConfigurationSetName=name)  # a read: not logged
    ses.create_configuration_set_event_destination(
        ConfigurationSetName=name, EventDestinationName="d",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["BOUNCE"],
                          "CloudWatchDestination": {"DimensionConfigurations": [
                              {"DimensionName": "x", "DimensionValueSource": "MESSAGE_TAG",
                               "DefaultDimensionValue": "y"}]}})
    ses.delete_configuration_set(ConfigurationSetName=name)
    sns = client(endpoint, "sns")
    topic = sns.create_topic(Name=unique("wlt"))["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="DisplayName", AttributeValue="x")
    sns.get_topic_attributes(TopicArn=topic)

    writes = admin(endpoint, "GET", "calls")["writes"]
    assert writes[f"configuration-set/{name}"] == {
        "sesv2:CreateConfigurationSet": 1,
        "sesv2:CreateConfigurationSetEventDestination": 1,
        "sesv2:DeleteConfigurationSet": 1,
        "sesv2:PutConfigurationSetSendingOptions": 1,
        "sesv2:TagResource": 1,
        "sesv2:UntagResource": 1,
    }
    assert writes[f"configuration-set/{other}"] == {"sesv2:CreateConfigurationSet": 1}
    assert writes[f"topic/{topic}"] == {"sns:CreateTopic": 1, "sns:SetTopicAttributes": 1}
    admin(endpoint, "POST", "calls/reset")
    assert admin(endpoint, "GET", "calls")["writes"] == {}


def test_a_denied_role_gets_access_denied_and_writes_nothing(endpoint, ses):
    role = f"arn:aws:iam::{ACCOUNT}:role/{unique('denied')}"
    other_role = f"arn:aws:iam::{ACCOUNT}:role/{unique('allowed')}"
    admin(endpoint, "POST", "deny", {"role_arn": role, "operations": ["sesv2:CreateConfigurationSet", "sns:*"]})
    assert admin(endpoint, "GET", "deny")[role] == ["sesv2:CreateConfigurationSet", "sns:*"]
    admin(endpoint, "POST", "calls/reset")
    name = unique("den")
    denied_ses = assumed(endpoint, "sesv2", role)
    with pytest.raises(ClientError) as err:
        denied_ses.create_configuration_set(ConfigurationSetName=name)
    assert code(err) == "AccessDeniedException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert f"assumed-role/{role.rsplit('/', 1)[1]}/" in str(err.value)
    assert "ses:CreateConfigurationSet" in str(err.value)
    denied_ses.get_account()  # not in the rule
    with pytest.raises(ClientError) as err:
        assumed(endpoint, "sns", role).create_topic(Name=unique("den"))
    assert code(err) == "AuthorizationError"
    # Another role, and the plain test credentials, are not affected.
    assumed(endpoint, "sesv2", other_role).create_configuration_set(ConfigurationSetName=name)
    snapshot = admin(endpoint, "GET", "calls")
    assert snapshot["denied"] == {"sesv2:CreateConfigurationSet": 1, "sns:CreateTopic": 1}
    assert snapshot["writes"][f"configuration-set/{name}"] == {"sesv2:CreateConfigurationSet": 1}
    admin(endpoint, "POST", "deny", {"role_arn": role, "operations": []})
    assert role not in admin(endpoint, "GET", "deny")
    with pytest.raises(urllib.error.HTTPError):
        admin(endpoint, "POST", "deny", {"role_arn": role, "operations": ["CreateConfigurationSet"]})


def test_identity_writes_are_logged_per_identity(endpoint, ses):
    domain = f"{unique('d')}.example.org"
    resource = f"identity/{domain}"
    ses.create_email_identity(EmailIdentity=domain)
    ses.put_email_identity_feedback_attributes(EmailIdentity=domain, EmailForwardingEnabled=True)
    ses.tag_resource(ResourceArn=f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{domain}", Tags=[{"Key": "k", "Value": "v"}])
    ses.get_email_identity(EmailIdentity=domain)
    with pytest.raises(ClientError):
        ses.create_email_identity(EmailIdentity=domain)  # AlreadyExists writes nothing
    assert admin(endpoint, "GET", "calls")["writes"][resource] == {
        "sesv2:CreateEmailIdentity": 1, "sesv2:PutEmailIdentityFeedbackAttributes": 1, "sesv2:TagResource": 1}


# --- tenants and reputation entities -------------------------------------------


def tenant_arn_re(name: str) -> str:
    return rf"^arn:aws:ses:{REGION}:{ACCOUNT}:tenant/{name}/[A-Za-z0-9-]+$"


def test_tenant_crud(ses):
    import re
    name = unique("tenant")
    created = strip(ses.create_tenant(TenantName=name, Tags=[{"Key": "owner", "Value": "op"}]))
    assert re.match(tenant_arn_re(name), created["TenantArn"])
    assert created["TenantArn"].endswith("/" + created["TenantId"])
    assert created["TenantName"] == name and created["SendingStatus"] == "ENABLED"
    assert created["Tags"] == [{"Key": "owner", "Value": "op"}]
    assert isinstance(created["CreatedTimestamp"], dt.datetime)
    got = ses.get_tenant(TenantName=name)["Tenant"]
    assert got == created
    with pytest.raises(ClientError) as err:
        ses.create_tenant(TenantName=name)
    assert code(err) == "AlreadyExistsException"
    for bad in ("", "a" * 65, "has space", "dot.ted"):
        with pytest.raises(ClientError) as err:
            ses.create_tenant(TenantName=bad)
        assert code(err) == "BadRequestException", bad
    longest = ("t_" + uuid.uuid4().hex * 2)[:64]
    assert ses.create_tenant(TenantName=longest)["TenantName"] == longest
    listed = ses.list_tenants()["Tenants"]
    assert {k: v for k, v in created.items() if k != "Tags"} in listed
    ses.delete_tenant(TenantName=name)
    for call in (ses.get_tenant, ses.delete_tenant):
        with pytest.raises(ClientError) as err:
            call(TenantName=name)
        assert code(err) == "NotFoundException"
    assert name not in [t["TenantName"] for t in ses.list_tenants()["Tenants"]]


def test_list_tenants_paginates_and_filters(endpoint):
    ses = client(endpoint, "sesv2", region="ca-central-1")
    names = sorted(unique("pg") for _ in range(5))
    for n in names:
        ses.create_tenant(TenantName=n)
    first = ses.list_tenants(PageSize=2)
    assert [t["TenantName"] for t in first["Tenants"]] == names[:2] and first["NextToken"]
    second = ses.list_tenants(PageSize=2, NextToken=first["NextToken"])
    third = ses.list_tenants(PageSize=2, NextToken=second["NextToken"])
    assert [t["TenantName"] for t in second["Tenants"] + third["Tenants"]] == names[2:]
    assert "NextToken" not in third
    assert [t["TenantName"] for t in ses.list_tenants(Filter={"TENANT_NAME_CONTAINS": names[3][3:]})["Tenants"]] \
        == [names[3]]
    arn = ses.get_tenant(TenantName=names[0])["Tenant"]["TenantArn"]
    ses.update_reputation_entity_customer_managed_status(
        ReputationEntityType="RESOURCE", ReputationEntityReference=arn, SendingStatus="DISABLED")
    assert [t["TenantName"] for t in ses.list_tenants(Filter={"SENDING_STATUS": "DISABLED"})["Tenants"]] \
        == [names[0]]
    for bad in ({"PageSize": 0}, {"PageSize": 101}, {"NextToken": "nope"}, {"Filter": {"OTHER": "x"}},
                {"Filter": {"SENDING_STATUS": "PAUSED"}}):
        with pytest.raises(ClientError) as err:
            ses.list_tenants(**bad)
        assert code(err) == "BadRequestException", bad


def test_tenant_resource_associations(endpoint, ses):
    tenant = unique("tenant")
    ses.create_tenant(TenantName=tenant)
    set_name = unique()
    ses.create_configuration_set(ConfigurationSetName=set_name)
    domain = f"{unique('d')}.example.com"
    ses.create_email_identity(EmailIdentity=domain)
    template = unique("tpl")
    client(endpoint, "ses").create_template(Template={"TemplateName": template, "SubjectPart": "s",
                                                      "TextPart": "t"})
    set_arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/{set_name}"
    identity_arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{domain}"
    template_arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:template/{template}"
    for arn in (set_arn, identity_arn, template_arn):
        ses.create_tenant_resource_association(TenantName=tenant, ResourceArn=arn)
    with pytest.raises(ClientError) as err:
        ses.create_tenant_resource_association(TenantName=tenant, ResourceArn=set_arn)
    assert code(err) == "AlreadyExistsException"
    for who, arn, expected in ((unique("none"), set_arn, "NotFoundException"),
                               (tenant, set_arn + "-missing", "NotFoundException"),
                               (tenant, f"arn:aws:ses:eu-west-1:{ACCOUNT}:configuration-set/{set_name}",
                                "NotFoundException"),
                               (tenant, "arn:aws:sns:us-east-1:123456789012:topic", "BadRequestException")):
        with pytest.raises(ClientError) as err:
            ses.create_tenant_resource_association(TenantName=who, ResourceArn=arn)
        assert code(err) == expected, (who, arn)
    resources = ses.list_tenant_resources(TenantName=tenant)["TenantResources"]
    assert sorted((r["ResourceType"], r["ResourceArn"]) for r in resources) == sorted([
        ("CONFIGURATION_SET", set_arn), ("EMAIL_IDENTITY", identity_arn), ("EMAIL_TEMPLATE", template_arn)])
    assert ses.list_tenant_resources(TenantName=tenant, Filter={"RESOURCE_TYPE": "EMAIL_IDENTITY"})[
        "TenantResources"] == [{"ResourceType": "EMAIL_IDENTITY", "ResourceArn": identity_arn}]
    page = ses.list_tenant_resources(TenantName=tenant, PageSize=2)
    rest = ses.list_tenant_resources(TenantName=tenant, PageSize=2, NextToken=page["NextToken"])
    assert len(page["TenantResources"]) == 2 and len(rest["TenantResources"]) == 1 and "NextToken" not in rest
    with pytest.raises(ClientError) as err:
        ses.list_tenant_resources(TenantName=tenant, Filter={"RESOURCE_TYPE": "TOPIC"})
    assert code(err) == "BadRequestException"
    with pytest.raises(ClientError) as err:
        ses.list_tenant_resources(TenantName=unique("none"))
    assert code(err) == "NotFoundException"
    other = unique("tenant")
    other_id = ses.create_tenant(TenantName=other)["TenantId"]
    ses.create_tenant_resource_association(TenantName=other, ResourceArn=set_arn)
    owners = ses.list_resource_tenants(ResourceArn=set_arn)["ResourceTenants"]
    assert [o["TenantName"] for o in owners] == sorted([tenant, other])
    assert {"TenantName": other, "TenantId": other_id, "ResourceArn": set_arn} == {
        k: v for k, v in owners[[o["TenantName"] for o in owners].index(other)].items() if k != "AssociatedTimestamp"}
    assert all(isinstance(o["AssociatedTimestamp"], dt.datetime) for o in owners)
    with pytest.raises(ClientError) as err:
        ses.list_resource_tenants(ResourceArn=set_arn + "-missing")
    assert code(err) == "NotFoundException"
    ses.delete_tenant_resource_association(TenantName=tenant, ResourceArn=template_arn)
    with pytest.raises(ClientError) as err:
        ses.delete_tenant_resource_association(TenantName=tenant, ResourceArn=template_arn)
    assert code(err) == "NotFoundException"
    # Deleting a resource ends its associations; deleting a tenant ends its own.
    ses.delete_email_identity(EmailIdentity=domain)
    assert [r["ResourceArn"] for r in ses.list_tenant_resources(TenantName=tenant)["TenantResources"]] == [set_arn]
    ses.delete_tenant(TenantName=tenant)
    assert [o["TenantName"] for o in ses.list_resource_tenants(ResourceArn=set_arn)["ResourceTenants"]] == [other]


def test_tags_on_tenants(ses):
    name = unique("tenant")
    arn = ses.create_tenant(TenantName=name)["TenantArn"]
    ses.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ses.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert ses.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    assert ses.get_tenant(TenantName=name)["Tenant"]["Tags"] == [{"Key": "b", "Value": "2"}]
    for missing in (arn[: arn.rindex("/")] + "/tn-0000", arn.replace(name, unique("none"))):
        with pytest.raises(ClientError) as err:
            ses.tag_resource(ResourceArn=missing, Tags=[{"Key": "a", "Value": "1"}])
        assert code(err) == "NotFoundException"
    ses.delete_tenant(TenantName=name)
    with pytest.raises(ClientError) as err:
        ses.list_tags_for_resource(ResourceArn=arn)
    assert code(err) == "NotFoundException"


POLICY = f"arn:aws:ses:{REGION}:aws:reputation-policy/"


def test_reputation_entity_of_a_tenant(endpoint, ses):
    name = unique("tenant")
    arn = ses.create_tenant(TenantName=name)["TenantArn"]
    entity = ses.get_reputation_entity(ReputationEntityType="RESOURCE", ReputationEntityReference=arn)[
        "ReputationEntity"]
    assert entity["ReputationEntityReference"] == arn and entity["ReputationEntityType"] == "RESOURCE"
    assert entity["ReputationManagementPolicy"] == POLICY + "standard"
    assert entity["CustomerManagedStatus"]["Status"] == "ENABLED"
    assert entity["AwsSesManagedStatus"]["Status"] == "ENABLED"
    assert isinstance(entity["AwsSesManagedStatus"]["LastUpdatedTimestamp"], dt.datetime)
    assert entity["SendingStatusAggregate"] == "ENABLED" and entity["ReputationImpact"] == "LOW"
    assert set(entity) == {"ReputationEntityReference", "ReputationEntityType", "ReputationManagementPolicy",
                           "CustomerManagedStatus", "AwsSesManagedStatus", "SendingStatusAggregate",
                           "ReputationImpact"}

    def get():
        return ses.get_reputation_entity(ReputationEntityType="RESOURCE", ReputationEntityReference=arn)[
            "ReputationEntity"]

    ses.update_reputation_entity_policy(ReputationEntityType="RESOURCE", ReputationEntityReference=arn,
                                        ReputationEntityPolicy=POLICY + "strict")
    assert get()["ReputationManagementPolicy"] == POLICY + "strict"
    for bad in (POLICY + "lenient", "standard", f"arn:aws:ses:eu-west-1:aws:reputation-policy/none"):
        with pytest.raises(ClientError) as err:
            ses.update_reputation_entity_policy(ReputationEntityType="RESOURCE", ReputationEntityReference=arn,
                                                ReputationEntityPolicy=bad)
        assert code(err) == "BadRequestException", bad
    # SES pauses the tenant: the aggregate follows, REINSTATED does not override it.
    shown = admin(endpoint, "POST", "reputation-entity", {"region": REGION, "reference": arn, "ses_status": "DISABLED",
                                                          "cause": "High bounce rate", "impact": "HIGH"})
    assert shown["AwsSesManagedStatus"]["Status"] == "DISABLED" and shown["SendingStatusAggregate"] == "DISABLED"
    got = get()
    assert got["AwsSesManagedStatus"]["Cause"] == "High bounce rate" and got["ReputationImpact"] == "HIGH"
    assert got["SendingStatusAggregate"] == "DISABLED"
    assert ses.get_tenant(TenantName=name)["Tenant"]["SendingStatus"] == "DISABLED"
    ses.update_reputation_entity_customer_managed_status(ReputationEntityType="RESOURCE",
                                                         ReputationEntityReference=arn, SendingStatus="REINSTATED")
    assert get()["CustomerManagedStatus"]["Status"] == "REINSTATED"
    assert get()["SendingStatusAggregate"] == "DISABLED"
    admin(endpoint, "POST", "reputation-entity", {"region": REGION, "reference": arn, "ses_status": "ENABLED",
                                                  "cause": None, "impact": None})
    got = get()
    assert "Cause" not in got["AwsSesManagedStatus"] and got["SendingStatusAggregate"] == "ENABLED"
    assert got["ReputationImpact"] == "LOW"
    # The customer's DISABLED stops sending alone.
    ses.update_reputation_entity_customer_managed_status(ReputationEntityType="RESOURCE",
                                                         ReputationEntityReference=arn, SendingStatus="DISABLED")
    assert get()["SendingStatusAggregate"] == "DISABLED"
    with pytest.raises(ClientError) as err:
        ses.update_reputation_entity_customer_managed_status(ReputationEntityType="RESOURCE",
                                                             ReputationEntityReference=arn, SendingStatus="PAUSED")
    assert code(err) == "BadRequestException"
    # Unknown entities, bad types, bad admin values.
    missing = arn.replace(name, unique("none"))
    with pytest.raises(ClientError) as err:
        ses.get_reputation_entity(ReputationEntityType="RESOURCE", ReputationEntityReference=missing)
    assert code(err) == "NotFoundException"
    with pytest.raises(ClientError) as err:
        ses.get_reputation_entity(ReputationEntityType="TENANT", ReputationEntityReference=arn)
    assert code(err) == "BadRequestException"
    with pytest.raises(ClientError) as err:
        ses.update_reputation_entity_customer_managed_status(
            ReputationEntityType="RESOURCE", ReputationEntityReference=missing, SendingStatus="ENABLED")
    assert code(err) == "BadRequestException"
    for bad in ({"reference": missing, "ses_status": "DISABLED"}, {"reference": arn, "ses_status": "REINSTATED"},
                {"reference": arn, "impact": "MEDIUM"}, {"reference": arn, "cause": ""}):
        with pytest.raises(urllib.error.HTTPError) as err:
            admin(endpoint, "POST", "reputation-entity", {"region": REGION, **bad})
        assert err.value.code == 400, bad
    # Deleting the tenant deletes its entity.
    ses.delete_tenant(TenantName=name)
    with pytest.raises(ClientError) as err:
        get()
    assert code(err) == "NotFoundException"


def test_reputation_entity_of_a_set_and_unencoded_paths(endpoint, ses):
    set_name = unique()
    ses.create_configuration_set(ConfigurationSetName=set_name)
    arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/{set_name}"
    entity = ses.get_reputation_entity(ReputationEntityType="RESOURCE", ReputationEntityReference=arn)[
        "ReputationEntity"]
    assert entity["SendingStatusAggregate"] == "ENABLED"
    # A client that leaves the ARN's slashes unencoded reaches the same routes.
    auth = ("AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/ses/aws4_request, "
            "SignedHeaders=host, Signature=x")
    req = urllib.request.Request(
        f"{endpoint}/v2/email/reputation/entities/RESOURCE/{arn}/customer-managed-status",
        data=json.dumps({"SendingStatus": "DISABLED"}).encode(), method="PUT",
        headers={"Content-Type": "application/json", "Authorization": auth})
    urllib.request.urlopen(req, timeout=5).read()
    req = urllib.request.Request(f"{endpoint}/v2/email/reputation/entities/RESOURCE/{arn}",
                                 headers={"Authorization": auth})
    shown = json.loads(urllib.request.urlopen(req, timeout=5).read())["ReputationEntity"]
    assert shown["CustomerManagedStatus"]["Status"] == "DISABLED"
    calls = admin(endpoint, "GET", "calls")["calls"]
    assert calls["sesv2:UpdateReputationEntityCustomerManagedStatus"] >= 1
    assert calls["sesv2:GetReputationEntity"] >= 2
    ses.delete_configuration_set(ConfigurationSetName=set_name)
    with pytest.raises(ClientError) as err:
        ses.get_reputation_entity(ReputationEntityType="RESOURCE", ReputationEntityReference=arn)
    assert code(err) == "NotFoundException"


def test_list_reputation_entities(endpoint):
    region = "ap-northeast-1"
    ses = client(endpoint, "sesv2", region=region)
    arns = sorted(ses.create_tenant(TenantName=unique("rep"))["TenantArn"] for _ in range(3))
    listed = ses.list_reputation_entities()["ReputationEntities"]
    assert [e["ReputationEntityReference"] for e in listed] == arns
    page = ses.list_reputation_entities(PageSize=2)
    rest = ses.list_reputation_entities(PageSize=2, NextToken=page["NextToken"])
    assert [e["ReputationEntityReference"] for e in page["ReputationEntities"] + rest["ReputationEntities"]] == arns
    assert "NextToken" not in rest
    admin(endpoint, "POST", "reputation-entity", {"region": region, "reference": arns[1], "ses_status": "DISABLED",
                                                  "impact": "HIGH"})
    for flt, expected in (({"SENDING_STATUS": "DISABLED"}, [arns[1]]), ({"REPUTATION_IMPACT": "LOW"}, [arns[0], arns[2]]),
                          ({"ENTITY_REFERENCE_PREFIX": arns[2][:-3]}, [arns[2]]), ({"ENTITY_TYPE": "RESOURCE"}, arns)):
        got = ses.list_reputation_entities(Filter=flt)["ReputationEntities"]
        assert [e["ReputationEntityReference"] for e in got] == expected, flt
    with pytest.raises(ClientError) as err:
        ses.list_reputation_entities(Filter={"NAME": "x"})
    assert code(err) == "BadRequestException"


def test_send_email_with_a_tenant(endpoint, ses, pipeline):
    name = unique("tenant")
    arn = ses.create_tenant(TenantName=name)["TenantArn"]
    send(ses, "success@simulator.amazonses.com", pipeline["set"], TenantName=name)
    assert [e["eventType"] for e in pipeline["drain"]()] == ["Send", "Delivery"]
    with pytest.raises(ClientError) as err:
        send(ses, "success@simulator.amazonses.com", pipeline["set"], TenantName=unique("none"))
    assert code(err) == "NotFoundException"
    admin(endpoint, "POST", "reputation-entity", {"region": REGION, "reference": arn, "ses_status": "DISABLED"})
    with pytest.raises(ClientError) as err:
        send(ses, "success@simulator.amazonses.com", pipeline["set"], TenantName=name)
    assert code(err) == "SendingPausedException"
    assert name in err.value.response["Error"]["Message"]
    ses.update_reputation_entity_customer_managed_status(ReputationEntityType="RESOURCE",
                                                         ReputationEntityReference=arn, SendingStatus="REINSTATED")
    with pytest.raises(ClientError) as err:
        send(ses, "success@simulator.amazonses.com", pipeline["set"], TenantName=name)
    assert code(err) == "SendingPausedException"
    admin(endpoint, "POST", "reputation-entity", {"region": REGION, "reference": arn, "ses_status": "ENABLED"})
    send(ses, "success@simulator.amazonses.com", pipeline["set"], TenantName=name)
    # The other checks still come first: a paused set refuses mail for any tenant.
    ses.put_configuration_set_sending_options(ConfigurationSetName=pipeline["set"], SendingEnabled=False)
    with pytest.raises(ClientError) as err:
        send(ses, "success@simulator.amazonses.com", pipeline["set"], TenantName=name)
    assert code(err) == "SendingPausedException" and "configuration set" in err.value.response["Error"]["Message"]
    assert [e["eventType"] for e in pipeline["drain"]()] == ["Send", "Delivery"]


# --- recommendations (findings) ------------------------------------------------


def test_recommendations(endpoint):
    region = "sa-east-1"
    ses = client(endpoint, "sesv2", region=region)
    assert ses.list_recommendations()["Recommendations"] == []
    arn = f"arn:aws:ses:{region}:{ACCOUNT}:tenant/t1/tn-1"
    dmarc = admin(endpoint, "POST", "recommendation", {
        "region": region, "resource_arn": arn, "type": "DMARC", "impact": "HIGH", "status": "OPEN",
        "description": "No DMARC record"})
    assert dmarc["Status"] == "OPEN" and dmarc["CreatedTimestamp"] == dmarc["LastUpdatedTimestamp"]
    for kind in ("SPF", "BOUNCE", "DKIM"):
        admin(endpoint, "POST", "recommendation", {"region": region, "resource_arn": f"arn:other/{kind}",
                                                   "type": kind, "impact": "LOW", "status": "OPEN",
                                                   "description": kind})
    recs = ses.list_recommendations()["Recommendations"]
    assert [r["Type"] for r in recs] == ["DMARC", "SPF", "BOUNCE", "DKIM"]
    first = recs[0]
    assert set(first) == {"ResourceArn", "Type", "Description", "Status", "CreatedTimestamp",
                          "LastUpdatedTimestamp", "Impact"}
    assert (first["ResourceArn"], first["Impact"], first["Description"]) == (arn, "HIGH", "No DMARC record")
    assert isinstance(first["CreatedTimestamp"], dt.datetime)
    # Same resource+type: updated in place, LastUpdatedTimestamp bumped.
    fixed = admin(endpoint, "POST", "recommendation", {"region": region, "resource_arn": arn, "type": "DMARC",
                                                       "status": "FIXED"})
    assert fixed["Status"] == "FIXED" and fixed["Impact"] == "HIGH"
    assert fixed["CreatedTimestamp"] == dmarc["CreatedTimestamp"]
    assert fixed["LastUpdatedTimestamp"] > dmarc["LastUpdatedTimestamp"]
    recs = ses.list_recommendations()["Recommendations"]
    assert len(recs) == 4 and recs[0]["Status"] == "FIXED" and recs[0]["LastUpdatedTimestamp"] > recs[0]["CreatedTimestamp"]
    # Pagination.
    page = ses.list_recommendations(PageSize=3)
    rest = ses.list_recommendations(PageSize=3, NextToken=page["NextToken"])
    assert [r["Type"] for r in page["Recommendations"] + rest["Recommendations"]] == ["DMARC", "SPF", "BOUNCE", "DKIM"]
    assert "NextToken" not in rest and "NextToken" not in ses.list_recommendations(PageSize=4)
    # Filters: one key, or STATUS with IMPACT or TYPE.
    for flt, expected in (({"STATUS": "OPEN"}, ["SPF", "BOUNCE", "DKIM"]), ({"TYPE": "DMARC"}, ["DMARC"]),
                          ({"RESOURCE_ARN": arn}, ["DMARC"]), ({"IMPACT": "HIGH"}, ["DMARC"]),
                          ({"STATUS": "OPEN", "TYPE": "SPF"}, ["SPF"]),
                          ({"STATUS": "FIXED", "IMPACT": "LOW"}, [])):
        assert [r["Type"] for r in ses.list_recommendations(Filter=flt)["Recommendations"]] == expected, flt
    for bad in ({"Filter": {"TYPE": "SPF", "IMPACT": "LOW"}}, {"Filter": {"STATUS": "CLOSED"}},
                {"Filter": {"COLOR": "red"}}, {"Filter": {"TYPE": "SPF", "STATUS": "OPEN", "IMPACT": "LOW"}},
                {"PageSize": 0}, {"PageSize": 101}, {"NextToken": "garbage"}):
        with pytest.raises(ClientError) as err:
            ses.list_recommendations(**bad)
        assert code(err) == "BadRequestException", bad
    for bad in ({"resource_arn": arn, "type": "SPAM"}, {"resource_arn": arn, "type": "SPF", "impact": "MEDIUM"},
                {"resource_arn": arn, "type": "SPF", "status": "CLOSED"}, {"type": "SPF"}):
        with pytest.raises(urllib.error.HTTPError) as err:
            admin(endpoint, "POST", "recommendation", {"region": region, **bad})
        assert err.value.code == 400, bad
    # An open finding sets its entity's ReputationImpact, unless SES's own says otherwise.
    tenant_arn = ses.create_tenant(TenantName=unique("tenant"))["TenantArn"]
    admin(endpoint, "POST", "recommendation", {"region": region, "resource_arn": tenant_arn, "type": "BOUNCE",
                                               "impact": "HIGH"})
    entity = ses.get_reputation_entity(ReputationEntityType="RESOURCE", ReputationEntityReference=tenant_arn)
    assert entity["ReputationEntity"]["ReputationImpact"] == "HIGH"
    assert admin(endpoint, "GET", "calls")["calls"]["sesv2:ListRecommendations"] >= 1
