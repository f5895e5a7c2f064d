#!/usr/bin/env python3
"""Checks the OCI archive tools/image.sh builds (`make image`); stdlib only.

Reads the archive as a registry client would (oci-layout, index.json, the
manifest, config and layer blobs, each against its digest and size), checks
the config (user 65532:65532, entrypoint, labels with this version, revision
and creation time) and that the single layer holds nothing but the binary,
its shared libraries, the CA bundle and /etc/passwd + /etc/group (listing
it), then unpacks the layer and runs the binary from it under chroot as
65532:65532 with only the image's environment: `--version`, and `crds`
must print the CRD YAML. Prints the sizes.

Usage: tools/image_check.py ARCHIVE --image REF --binary /PATH --version V
       --revision SHA --created RFC3339 --license SPDX
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
LABELS = ("title", "description", "source", "version", "revision", "created", "licenses")
CERTS = "etc/ssl/certs/ca-certificates.crt"
# The dynamic loader and shared libraries, at the paths ldd gives on a
# Debian (multiarch, merged /usr or not) system.
LIBRARY = re.compile(r"^(usr/)?lib(64|32)?(/[a-z0-9_]+-linux-gnu[a-z0-9_]*)?/(ld-linux[^/]*\.so[.0-9]*|lib[^/]+\.so[.0-9]*)$")

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


def die(what):
    print(f"image check FAILED: {what}", file=sys.stderr)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive")
    ap.add_argument("--image", required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--revision", required=True)
    ap.add_argument("--created", required=True)
    ap.add_argument("--license", required=True)
    args = ap.parse_args()

    with tarfile.open(args.archive) as outer:
        files = {m.name.removeprefix("./"): outer.extractfile(m).read() for m in outer if m.isfile()}

    def blob(desc, media_type):
        check(desc.get("mediaType") == media_type, f"media type {desc.get('mediaType')}, want {media_type}")
        algo, _, hexdigest = desc["digest"].partition(":")
        data = files.get(f"blobs/{algo}/{hexdigest}")
        if data is None:
            die(f"blob {desc['digest']} missing from the archive")
        check(algo == "sha256" and hashlib.sha256(data).hexdigest() == hexdigest, f"blob {desc['digest']}: digest mismatch")
        check(len(data) == desc["size"], f"blob {desc['digest']}: size {len(data)}, descriptor says {desc['size']}")
        return data

    layout = json.loads(files.get("oci-layout", b"{}"))
    check(layout.get("imageLayoutVersion") == "1.0.0", f"oci-layout: {layout}")
    index = json.loads(files["index.json"])
    manifests = index.get("manifests", [])
    if len(manifests) != 1:
        die(f"index.json lists {len(manifests)} manifests, want 1")
    ref = manifests[0].get("annotations", {}).get("org.opencontainers.image.ref.name")
    check(ref == args.image, f"index.json names the image {ref!r}, want {args.image!r}")
    manifest_digest = manifests[0]["digest"]
    manifest = json.loads(blob(manifests[0], MANIFEST))
    config_blob = blob(manifest["config"], CONFIG)
    config = json.loads(config_blob)
    if len(manifest["layers"]) != 1:
        die(f"{len(manifest['layers'])} layers, want 1")
    layer_desc = manifest["layers"][0]
    layer_gz = blob(layer_desc, LAYER)
    layer = gzip.decompress(layer_gz)
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    check(diff_ids == ["sha256:" + hashlib.sha256(layer).hexdigest()], f"config diff_ids {diff_ids} do not match the layer")

    cfg = config.get("config", {})
    want = {
        "User": "65532:65532",
        "Entrypoint": [args.binary],
        "Cmd": ["run"],
        "WorkingDir": "/",
        "ExposedPorts": {"8080/tcp": {}},
    }
    for key, value in want.items():
        check(cfg.get(key) == value, f"config {key} = {cfg.get(key)!r}, want {value!r}")
    env = cfg.get("Env") or []
    check(f"SSL_CERT_FILE=/{CERTS}" in env, f"config Env {env} lacks SSL_CERT_FILE=/{CERTS}")
    check(config.get("os") == "linux", f"os {config.get('os')!r}")
    check(config.get("created") == args.created, f"created {config.get('created')!r}, want {args.created!r} (the commit time)")
    labels = cfg.get("Labels") or {}
    for label in LABELS:
        check(labels.get(f"org.opencontainers.image.{label}"), f"label org.opencontainers.image.{label} missing")
    for label, value in (("version", args.version), ("revision", args.revision), ("created", args.created), ("licenses", args.license)):
        got = labels.get(f"org.opencontainers.image.{label}")
        check(got == value, f"label org.opencontainers.image.{label} = {got!r}, want {value!r}")
    extra = sorted(k for k in labels if not k.startswith("org.opencontainers.image."))
    check(not extra, f"unexpected labels {extra}")

    # The layer: only what the binary needs, owned by root, nothing setuid.
    entries = {}
    rootfs_bytes = 0
    print(f"{'mode':>10} {'owner':>7} {'bytes':>10}  path")
    with tarfile.open(fileobj=io.BytesIO(layer)) as t:
        for m in t:
            path = m.name.removeprefix("./").rstrip("/")
            if not path:
                continue
            entries[path] = m
            rootfs_bytes += m.size if m.isfile() else 0
            print(f"{stat.filemode(m.mode | (stat.S_IFDIR if m.isdir() else stat.S_IFREG if m.isfile() else 0)):>10} "
                  f"{m.uid}:{m.gid:<5} {m.size:>10}  /{path}" + (f" -> {m.linkname}" if m.issym() or m.islnk() else ""))
            check(m.isfile() or m.isdir(), f"/{path}: neither a file nor a directory")
            check(m.uid == 0 and m.gid == 0, f"/{path}: owned by {m.uid}:{m.gid}, want 0:0")
            check(not m.mode & (stat.S_ISUID | stat.S_ISGID), f"/{path}: setuid or setgid")
            check(not os.path.basename(path).startswith(".wh."), f"/{path}: a whiteout")
    binary = args.binary.lstrip("/")
    exact = {binary, "etc/passwd", "etc/group", CERTS}
    for path in sorted(exact - entries.keys()):
        check(False, f"/{path} missing")
    files_in = [p for p, m in entries.items() if m.isfile()]
    for path in files_in:
        check(path in exact or LIBRARY.match(path), f"/{path}: not expected in the image")
    parents = {os.path.dirname(p) for p in files_in}
    parents = {a for p in parents for a in _ancestors(p)}
    for path, m in entries.items():
        if m.isdir():
            check(path in parents, f"/{path}/: a directory holding nothing expected")
    check(any(os.path.basename(p).startswith("ld-linux") for p in files_in), "no dynamic loader")
    check(entries.get(binary) is not None and entries[binary].mode & 0o111 == 0o111, f"/{binary} not executable by all")

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(args.archive))) as tmp:
        rootfs = os.path.join(tmp, "rootfs")
        os.mkdir(rootfs)
        os.chmod(tmp, 0o755)
        os.chmod(rootfs, 0o755)
        with tarfile.open(fileobj=io.BytesIO(layer)) as t:
            if hasattr(tarfile, "tar_filter"):
                t.extractall(rootfs, filter="tar")
            else:
                t.extractall(rootfs)
        passwd = open(os.path.join(rootfs, "etc/passwd")).read()
        check(re.search(r"^nonroot:x:65532:65532:", passwd, re.M), "/etc/passwd lacks nonroot 65532")
        group = open(os.path.join(rootfs, "etc/group")).read()
        check(re.search(r"^nonroot:x:65532:", group, re.M), "/etc/group lacks nonroot 65532")

        # Self-contained: the binary runs from the unpacked layer alone, as
        # the image's user, with the image's environment only.
        if os.geteuid() == 0:
            run = [shutil.which("chroot") or "chroot", "--userspec=65532:65532", rootfs]
            as_whom = "65532:65532"
        else:
            run = ["unshare", "--map-root-user", "chroot", rootfs]
            as_whom = "a mapped root (not root here: no --userspec)"
        env = dict(e.split("=", 1) for e in cfg.get("Env") or [])

        def chrooted(*argv):
            p = subprocess.run(run + [args.binary, *argv], env=env, cwd="/", capture_output=True, text=True, timeout=60)
            check(p.returncode == 0, f"chroot {args.binary} {' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[:500]}")
            return p.stdout

        out = chrooted("--version")
        check(out.split() == ["ses-reputation-operator", args.version], f"--version printed {out.strip()!r}")
        crds = chrooted("crds")
        check(crds.lstrip().startswith(("---", "apiVersion")), f"crds printed {crds[:80]!r}, want YAML")
        n_crds = len(re.findall(r"^kind: CustomResourceDefinition$", crds, re.M))
        check(n_crds >= 1 and "group: ses.reputation.io" in crds, f"crds printed {n_crds} CustomResourceDefinitions of ses.reputation.io")
        print(f"chroot as {as_whom}: --version {out.strip()!r}; crds printed {n_crds} CRDs ({len(crds)} bytes)")

    if failures:
        for f in failures:
            print(f"image check FAILED: {f}", file=sys.stderr)
        sys.exit(1)
    mib = 1024 * 1024
    print(f"image {args.image}: manifest {manifest_digest}, config {manifest['config']['digest']}")
    print(f"labels: version {args.version}, revision {args.revision}, created {args.created}; user {cfg['User']}; entrypoint {cfg['Entrypoint']}")
    print(f"size: archive {os.path.getsize(args.archive) / mib:.1f} MiB ({os.path.getsize(args.archive)} bytes), "
          f"layer {len(layer_gz) / mib:.1f} MiB compressed, rootfs {rootfs_bytes / mib:.1f} MiB uncompressed "
          f"({len(files_in)} files, binary {entries[binary].size / mib:.1f} MiB)")
    print("image check passed")


def _ancestors(path):
    while path:
        yield path
        path = os.path.dirname(path)


if __name__ == "__main__":
    main()
