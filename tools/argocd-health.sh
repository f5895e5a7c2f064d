#!/usr/bin/env bash
# Prints the path of tools/argocd-health (Argo CD's health-script runtime:
# gopher-lua, the object as `obj`), built into the cache.
exec "$(dirname "$0")/go-tool.sh" argocd-health
