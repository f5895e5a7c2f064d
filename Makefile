# ses-reputation-operator. `make test` runs every test on the local test
# ground (real kube-apiserver + etcd, moto-based AWS emulator); the first
# run builds the Kubernetes binaries and installs the emulator (minutes),
# later runs reuse them from $(SRO_CACHE).
SRO_CACHE ?= $(HOME)/.cache/ses-reputation-operator
export SRO_CACHE
CARGO ?= cargo
BIN := target/debug/ses-reputation-operator

.PHONY: all build test unit-test lint fmt crds manifests image ground emulator-test ground-up bench-scale bench-live demo readme-test fuzz soak upgrade-test node-test

all: build

build:
	$(CARGO) build

## Regenerate the CRD YAML in the chart and deploy/ from the Rust types.
crds: build
	$(BIN) crds > charts/ses-reputation-operator/crds/crds.yaml
	$(BIN) crds > deploy/crds/crds.yaml
	$(BIN) docs > docs/crd-reference.md

# helm from the Go module proxy (cached); evaluated only when used.
HELM ?= $(shell tools/helm.sh)

## Regenerate deploy/manifests.yaml (the chart with default values, plus
## its Namespace). The chart tests fail when it is out of date.
manifests:
	HELM=$(HELM) tools/manifests.sh > deploy/manifests.yaml.tmp
	mv deploy/manifests.yaml.tmp deploy/manifests.yaml

## The operator's container image, built offline and reproducibly with
## buildah FROM scratch and checked (tools/image.sh; the Dockerfile builds
## the same image with Docker): target/image/ses-reputation-operator.oci.tar.
image:
	CARGO=$(CARGO) tools/image.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Every test: unit tests, the emulator's own tests, then the integration
## tests against the ground (started and stopped by tools/ground.sh).
test:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --lib --bins
	$(MAKE) emulator-test
	# Tools the integration tests run (built from the Go module proxy, cached):
	# fetched first, so no test waits minutes inside its own timeout.
	tools/kstatus.sh >/dev/null
	tools/argocd-health.sh >/dev/null
	tools/promtool.sh >/dev/null
	tools/external-dns-crd.sh >/dev/null
	# The previous release for the upgrade test (built once, cached by commit).
	tools/previous-release.sh >/dev/null
	tools/ground.sh run -- $(CARGO) test --test integration -- --test-threads=$${SRO_TEST_THREADS:-6}
	$(MAKE) upgrade-test
	# A 5-minute chaos soak (faults for the first 3): its seed is printed,
	# SOAK_SEED=<seed> make soak SOAK_MINUTES=5 repeats it.
	$(MAKE) soak SOAK_MINUTES=5 SOAK_OUT=target/soak-test
	$(MAKE) node-test
	$(MAKE) readme-test
	$(MAKE) demo DEMO_EXIT=1

## The ground with a node (tools/node.sh: controller-manager, scheduler,
## containerd, kubelet; needs root): a Deployment with the chart's security
## contexts runs as the chart promises, and a namespace finishes deleting
## (tools/node_test.py); then the chart itself, from the operator's image
## (a debug build: a release one costs CI ten minutes more), through
## install, failover, eviction, upgrade and uninstall (tools/chart_node_test.py).
node-test:
	SRO_IMAGE_PROFILE=debug IMAGE=localhost/ses-reputation-operator:node-a CARGO=$(CARGO) tools/image.sh
	python=$$(tests/aws-emulator/setup.sh) && SRO_GROUND_NODE=1 tools/ground.sh run -- env PYTHONPATH=tools:tools/bench \
	  sh -c "$$python tools/node_test.py && $$python tools/chart_node_test.py"

## The property tests of src/domain/fuzz_tests.rs (event parser, live
## windows, checkpoint, topic policy, diffs) with many more cases than the
## 256 `make test` runs; a failure prints the seed and proptest keeps it
## under proptest-regressions/ so the next run tries it first.
FUZZ_CASES ?= 20000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --release --lib domain::fuzz_tests

## Chaos soak on the ground (tools/soak/): two replicas with leader election,
## a random workload over all five kinds in three tenant namespaces, random
## faults (SIGKILL, SIGSTOP, kube-apiserver restarts, dropped and stalled
## connections, SES throttling, 5xx and slow AWS) until SOAK_MINUTES less
## two, then an independent invariant checker. SOAK_SEED repeats a run.
SOAK_MINUTES ?= 30
soak: build
	# On a failure the report is printed again after the ground's log tails,
	# so it is the last thing a CI log shows.
	python=$$(tests/aws-emulator/setup.sh) && tools/ground.sh run -- env PYTHONPATH=tools:tools/bench \
	  $$python -m soak --minutes $(SOAK_MINUTES) $${SOAK_SEED:+--seed $$SOAK_SEED} $${SOAK_OUT:+--out $$SOAK_OUT} \
	  || { rc=$$?; [ -z "$(SOAK_OUT)" ] || cat $(SOAK_OUT)/report.md 2>/dev/null | cut -c1-2000; exit $$rc; }

## The previous release (tools/previous-release.sh) with objects in every
## state, upgraded in place to this build on its own ground: nothing
## created, deleted or resumed in AWS, no status regression, old objects
## valid under the new CRDs (tools/soak/upgrade.py).
upgrade-test: build
	python=$$(tests/aws-emulator/setup.sh) && tools/ground.sh run -- env PYTHONPATH=tools:tools/bench \
	  $$python -m soak.upgrade

emulator-test:
	python=$$(tests/aws-emulator/setup.sh) && cd tests/aws-emulator && $$python -m pytest -q
	# The scale benchmark's driver against the original script's output.
	python=$$(tests/aws-emulator/setup.sh) && cd tools/bench && $$python -m unittest -q scale.test_golden
	# The soak's invariant checker against records with planted violations, and
	# its proxy's faults against an echo server.
	python=$$(tests/aws-emulator/setup.sh) && cd tools && PYTHONPATH=.:bench $$python -m unittest -q soak.test_checker soak.test_proxy

## The operator end to end on the ground, step by step, then left running
## until Ctrl-C. DEMO_EXIT=1: check each step and exit (CI).
## DEMO_REAL_CLUSTER=1 with KUBECONFIG: only install the CRDs and apply
## deploy/examples/ to that cluster.
demo:
	tools/demo.sh

## Run every ```sh runnable block of README.md, in order, on the ground
## with the CRDs installed and the operator running.
readme-test:
	tools/readme-snippets.sh

## Start the ground and keep it running (prints the env to use it).
ground-up:
	tools/ground.sh up

## Scale benchmark (not a test): N sets + N destinations on the ground,
## release build; SES_RPS=1000 leaves the operator's SES bucket unthrottled.
## Prints a Markdown report and updates docs/benchmarks.md.
N ?= 200
SES_RPS ?= 1000
RUNS ?= 1
bench-scale:
	N=$(N) SES_RPS=$(SES_RPS) RUNS=$(RUNS) tools/bench/scale.sh

## Live-source benchmarks (not tests): the window's CPU per event and
## memory per 1,000 sets (release build of src/domain/reputation/windows.rs alone),
## then on the ground the time to protect (RUNS spikes, median) and the
## consumer's drain rate beside the emulator's own (EVENTS events), and
## the time to protect when the leader is killed mid-spike, with the live
## checkpoint off and on (FAILOVER_RUNS runs, sender at SEND_RATE/s).
## Prints Markdown for docs/benchmarks.md.
EVENTS ?= 5000
LIVE_RUNS ?= 5
FAILOVER_RUNS ?= 3
SEND_RATE ?= 3
bench-live:
	cd tools/bench/live-micro && $(CARGO) run --release --quiet
	RUNS=$(LIVE_RUNS) tools/ground.sh run -- $(CARGO) test --test integration -- --ignored --nocapture --test-threads=1 live_bench::bench_time_to_protect
	EVENTS=$(EVENTS) tools/ground.sh run -- $(CARGO) test --test integration -- --ignored --nocapture --test-threads=1 live_bench::bench_consumer_throughput
	RUNS=$(FAILOVER_RUNS) SEND_RATE=$(SEND_RATE) tools/ground.sh run -- $(CARGO) test --test integration -- --ignored --nocapture --test-threads=1 live_bench::bench_time_to_protect_after_failover
