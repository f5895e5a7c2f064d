#!/usr/bin/env bash
# Builds the operator's container image offline and reproducibly, then checks
# it (`make image`). A release build, and a root filesystem assembled here
# with only what the binary needs: itself at /ses-reputation-operator, the
# glibc shared libraries and loader `ldd` names (at the same paths), Debian's
# CA bundle, and /etc/passwd + /etc/group naming UID/GID 65532 (nonroot).
# buildah commits it FROM scratch, with every timestamp set to the commit time
# (SOURCE_DATE_EPOCH overrides), so one commit gives the same bytes; the
# result is target/image/ses-reputation-operator.oci.tar, an OCI archive
# naming the image $IMAGE (default: the chart's image.repository, tagged with
# the Cargo.toml version). tools/image_check.py then checks the archive and
# runs the binary from it under chroot as 65532.
# buildah comes from apt on first use; its storage (vfs) lives under the cache.
#
# Keep in step with the Dockerfile: the same files at the same paths, user,
# labels, env, workdir, port and entrypoint.
set -euo pipefail
umask 022
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS

name=ses-reputation-operator
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
out_dir=$root/target/image
[[ ${SRO_IMAGE_PROFILE:-release} == release ]] || out_dir+=-$SRO_IMAGE_PROFILE
archive=$out_dir/$name.oci.tar

version=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' Cargo.toml)
license=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^license *=/ { print $2; exit }' Cargo.toml)
revision=$(git rev-parse HEAD)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
image=${IMAGE:-ghcr.io/ses-reputation-operator/ses-reputation-operator:$version}
if [[ -n $(git status --porcelain -- Cargo.toml Cargo.lock src) ]]; then
  echo "warning: Cargo.toml, Cargo.lock or src/ differ from $revision; the image is labelled $revision anyway" >&2
fi

sudo=()
[[ $EUID -eq 0 ]] || sudo=(sudo)
apt_install() {
  echo ">> installing $* with apt (first run only)" >&2
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}
command -v buildah >/dev/null || apt_install buildah
certs=/etc/ssl/certs/ca-certificates.crt
[[ -s $certs ]] || apt_install ca-certificates

# SRO_IMAGE_PROFILE=debug: the same image around a debug build, for the node
# tests in `make test` (a release build costs CI ten minutes more); `make
# image` is always release.
profile=${SRO_IMAGE_PROFILE:-release}
case $profile in
  release) cargo_args=(--release) ;;
  debug) cargo_args=() ;;
  *) echo "error: SRO_IMAGE_PROFILE is release or debug, not $profile" >&2; exit 2 ;;
esac
echo ">> cargo build ${cargo_args[*]} --locked" >&2
"${CARGO:-cargo}" build "${cargo_args[@]}" --locked
bin=$root/target/$profile/$name

# The root filesystem: nothing but what the binary needs to run.
mkdir -p "$out_dir"
rootfs=$out_dir/rootfs
rm -rf "$rootfs"
mkdir -p "$rootfs/etc/ssl/certs"
install -m 0755 "$bin" "$rootfs/$name"
# Every library ldd resolves, and the loader (the line that is a bare path),
# copied (not linked) to the path the binary asks for. The vDSO has no path.
ldd_out=$(ldd "$bin")
if grep -q 'not found' <<<"$ldd_out"; then
  echo "error: $bin needs a library this machine lacks:" >&2
  echo "$ldd_out" >&2
  exit 1
fi
while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L --preserve=mode "$lib" "$rootfs$lib"
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out")
cp -L "$certs" "$rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$rootfs/etc/group"

# buildah with its own storage (vfs: no overlay or fuse needed), its own
# signature policy (nothing is pulled) and a lock: this storage is ours alone.
store=$cache_root/buildah
mkdir -p "$store"
exec 9>"$store/.lock"
flock 9
cat >"$store/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$store/root"
runroot = "$store/run"
EOF
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$store/policy.json"
export CONTAINERS_STORAGE_CONF=$store/storage.conf
bah() { buildah --storage-driver vfs --root "$store/root" --runroot "$store/run" "$@"; }
# A run killed before its cleanup leaves its container and image behind.
bah rm --all >/dev/null
bah rmi --all --force >/dev/null 2>&1 || true

ctr=
layout=
cleanup() {
  if [[ -n $ctr ]]; then bah rm "$ctr" >/dev/null 2>&1 || true; fi
  bah rmi --force "$image" >/dev/null 2>&1 || true
  if [[ -n $layout ]]; then rm -rf "$layout"; fi
  rm -rf "$rootfs" "$archive.tmp"
}
trap cleanup EXIT

echo ">> buildah: $image" >&2
ctr=$(bah from --quiet --name "$name-image-$$" scratch)
bah copy --quiet --chown 0:0 "$ctr" "$rootfs/" /
bah config \
  --created-by "tools/image.sh: COPY rootfs/ /" \
  --user 65532:65532 \
  --workingdir / \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --port 8080/tcp \
  --entrypoint "[\"/$name\"]" \
  --cmd '["run"]' \
  --label org.opencontainers.image.title="$name" \
  --label org.opencontainers.image.description="Kubernetes operator for Amazon SES v2 configuration sets, event destinations and reputation" \
  --label org.opencontainers.image.source=https://github.com/ses-reputation-operator/ses-reputation-operator \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.revision="$revision" \
  --label org.opencontainers.image.created="$created" \
  --label org.opencontainers.image.licenses="$license" \
  "$ctr"
bah commit --quiet --format oci --identity-label=false --timestamp "$epoch" \
  --signature-policy "$store/policy.json" "$ctr" "$image" >/dev/null
# buildah's oci-archive: stamps the archive's own tar entries with the time
# of the push, so push an OCI layout and tar it with fixed metadata: the
# archive's bytes, not only the image digest, are then the same every build.
layout=$(mktemp -d "$out_dir/.layout.XXXXXX")
bah push --quiet --signature-policy "$store/policy.json" "$image" "oci:$layout:$image"
tar --create --file "$archive.tmp" --directory "$layout" --format ustar \
  --sort name --mtime "@$epoch" --owner 0 --group 0 --numeric-owner \
  --mode u=rwX,go=rX oci-layout index.json blobs
mv "$archive.tmp" "$archive"
build_seconds=$((SECONDS - start))

echo ">> checking $archive" >&2
python3 tools/image_check.py "$archive" --image "$image" --binary "/$name" \
  --version "$version" --revision "$revision" --created "$created" --license "$license"
echo "sha256 $(sha256sum "$archive" | cut -d' ' -f1)  ${archive#"$root"/}"
echo "built in ${build_seconds}s (cargo included), checked in $((SECONDS - start - build_seconds))s"
