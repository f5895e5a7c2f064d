"""AWS side of `make demo` (tools/demo.sh), run with the emulator venv's python.

    demo_aws.py queue NAME                    create an SQS queue, print its URL
    demo_aws.py identity EMAIL                create (verify) a sender identity
    demo_aws.py send SET FROM TO...           SES v2 SendEmail through SET, print the MessageId
    demo_aws.py bounces QUEUE_URL [SECONDS]   wait for SES Bounce events on the queue, print them
    demo_aws.py bounce-rate SET VALUE MINUTES_AGO
                                              put one Reputation.BounceRate datapoint
    demo_aws.py spike SET FROM N BOUNCE_EVERY send N mails through SET, every BOUNCE_EVERYth
                                              to the bounce simulator, until SES refuses one;
                                              print how many went out and how long it took

Endpoint, region and credentials come from the environment (AWS_ENDPOINT_URL...).
Exit status 1 with the AWS error on stderr when a call fails.
"""

import datetime
import json
import sys
import time

import boto3
from botocore.exceptions import ClientError


def client(service):
    return boto3.client(service)


def queue(name):
    print(client("sqs").create_queue(QueueName=name)["QueueUrl"])


def identity(email):
    ses = client("sesv2")
    try:
        ses.create_email_identity(EmailIdentity=email)
    except ClientError as e:
        if e.response["Error"]["Code"] != "AlreadyExistsException":
            raise


def send(config_set, sender, *to):
    out = client("sesv2").send_email(
        FromEmailAddress=sender,
        Destination={"ToAddresses": list(to)},
        Content={"Simple": {"Subject": {"Data": "demo"}, "Body": {"Text": {"Data": "Hello from make demo"}}}},
        ConfigurationSetName=config_set,
    )
    print(out["MessageId"])


def bounces(queue_url, seconds="30"):
    sqs = client("sqs")
    deadline = time.monotonic() + float(seconds)
    found = 0
    while time.monotonic() < deadline and not found:
        out = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in out.get("Messages", []):
            event = json.loads(m["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            kind = event.get("eventType")
            if kind == "Bounce":
                b = event["bounce"]
                to = ", ".join(r["emailAddress"] for r in b.get("bouncedRecipients", []))
                print(f"  eventType={kind} bounceType={b['bounceType']}/{b['bounceSubType']} recipient={to}")
                found += 1
            else:
                print(f"  eventType={kind}")
    if not found:
        sys.exit(f"no Bounce event arrived on {queue_url} within {seconds}s")


def bounce_rate(config_set, value, minutes_ago):
    # Each step uses a later minute, so the newest datapoint is the step's value.
    at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=int(minutes_ago))
    client("cloudwatch").put_metric_data(
        Namespace="AWS/SES",
        MetricData=[{
            "MetricName": "Reputation.BounceRate",
            "Dimensions": [{"Name": "ses:configuration-set", "Value": config_set}],
            "Timestamp": at,
            "Value": float(value),
            "Unit": "None",
        }],
    )


def spike(config_set, sender, n, bounce_every):
    ses = client("sesv2")
    started = time.monotonic()
    sent = 0
    for i in range(int(n)):
        to = "bounce@simulator.amazonses.com" if i % int(bounce_every) == int(bounce_every) - 1 else "success@simulator.amazonses.com"
        try:
            ses.send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": [to]},
                Content={"Simple": {"Subject": {"Data": "campaign"}, "Body": {"Text": {"Data": "Big sale"}}}},
                ConfigurationSetName=config_set,
            )
            sent += 1
        except ClientError as e:
            code = e.response["Error"]["Code"]
            print(f"   SES accepted {sent} mails, then refused with {code} {time.monotonic() - started:.1f} s after the first")
            return
    print(f"   SES accepted all {sent} mails in {time.monotonic() - started:.1f} s")


COMMANDS = {"spike": spike, "queue": queue, "identity": identity, "send": send, "bounces": bounces, "bounce-rate": bounce_rate}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except ClientError as e:
        err = e.response["Error"]
        sys.exit(f"{err['Code']}: {err.get('Message', '')}")
