"""Scale benchmark on the test ground: selectable scenarios, each printing a
Markdown section and replacing its own section of docs/benchmarks.md.

Run by tools/bench/scale.sh inside `tools/ground.sh run`, which provides
KUBECONFIG (a system:masters token), SRO_AWS_ENDPOINT and the AWS test
credentials. Parameters (environment):

  SCENARIO  steady (default) | throttled | shared | spec-latency | recovery |
            all, or a comma-separated list
  N         pairs (ConfigurationSet + EventDestination with an operator-owned
            SNS topic); default per scenario: steady 1000, throttled 100,
            shared 100, spec-latency 40, recovery 30. Under make, N counts
            only when given on make's command line (the Makefile's N ?= 200
            is ignored).
  RUNS      runs per scenario (1); the report quotes medians (min–max)
  TIMEOUT   seconds per wait (default per scenario, see DEFAULT_TIMEOUT)

  steady:        SES_RPS (1000: the operator's SES bucket is effectively off),
                 POLICIES (10 ReputationPolicies), SETTLE (30 s after all
                 Ready), STEADY (150 s window), SQS (0; 1 adds one SQS
                 subscription per topic), IDENTITIES (N/10 EmailIdentities,
                 each a domain with MAIL FROM and set i as its default,
                 applied once the pairs are Ready and verified through the
                 emulator's admin call; they stay through the steady window)
  throttled:     THROTTLED_RPS (emulator SES calls/s, 1); operator at its default 1
  shared:        SHARED_RPS (emulator, 0.5); operator at 1
  spec-latency:  SPEC_RPS (emulator, 1), DRIFT (operator --drift-interval-seconds, 10),
                 CHANGES (20), CHANGE_TIMEOUT (300 s), WARM (600 s: longest wait for drift checks to start)
  recovery:      RECOVERY_RPS (emulator while throttled, 0.2), HOLD (60 s of
                 throttling from the start of the apply); operator at its default 1

How the operator's API-server requests are told apart from everyone else's:
apiserver_request_total has no user label, so the operator does not run with
the ground's system:masters token but as its own ServiceAccount
(sro-bench-system/operator, bound to cluster-admin; token from TokenRequest),
and the script creates API Priority and Fairness FlowSchemas that match only
that ServiceAccount, one per verb and resource, plus per-verb and global
catch-alls. `apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}`
then counts exactly the operator's requests by verb and resource. The
benchmark's own client is the ground's admin (APF's `exempt` schema, never
counted there) and sends no request inside the steady window; the
apiserver_request_total delta over the same window (all clients: the
operator plus the apiserver's own loopback traffic) is shown beside it.

Package layout (run as `python3 -m scale` from tools/bench, or through the
tools/bench/scale.py shim): config (parameters), cluster (kubectl and the
API server), emulator (the AWS emulator's admin API), identity (the
operator's ServiceAccount and FlowSchemas), workload (the objects applied
and the AWS calls they should cost), fixture (the operator process, one
run's setup), measure (RSS, API request and AWS call counts), results
(per-run records), scenarios, report (Markdown and docs/benchmarks.md),
__main__ (the driver).
"""
