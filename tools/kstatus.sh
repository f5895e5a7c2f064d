#!/usr/bin/env bash
# Prints the path of the kstatus CLI (tools/kstatus: sigs.k8s.io/cli-utils
# pkg/kstatus/status, what Flux and kpt compute), built into the cache.
exec "$(dirname "$0")/go-tool.sh" kstatus
