# syntax=docker/dockerfile:1
# Operator image: a release build on Debian bookworm, copied FROM scratch with
# only what it needs to run (its glibc shared libraries and loader, Debian's
# CA bundle, /etc/passwd + /etc/group naming nonroot), run as UID 65532.
#   docker build \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u -d @"$(git log -1 --format=%ct)" +%Y-%m-%dT%H:%M:%SZ)" \
#     -t registry.example.com/ses-reputation-operator:0.1.0 .
#
# Keep in step with tools/image.sh (`make image`: the same image built offline
# with buildah, reproducibly, and checked): the same files at the same paths,
# user, labels, env, workdir, port and entrypoint. VERSION follows Cargo.toml.

FROM rust:1-bookworm AS build
WORKDIR /src
# The cache mounts below keep the crate downloads and build artefacts
# between builds, so a source edit rebuilds only this crate.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cargo.toml declares the integration test target; cargo checks its path
# exists even when building only the binary.
COPY tests/integration/main.rs ./tests/integration/main.rs
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ses-reputation-operator \
 && cp target/release/ses-reputation-operator /ses-reputation-operator
# The root filesystem, as tools/image.sh assembles it: the binary, every
# library ldd resolves and the loader, copied to the paths the binary asks
# for, the CA bundle, and the two users.
RUN set -eu; \
    mkdir -p /rootfs/etc/ssl/certs; \
    install -m 0755 /ses-reputation-operator /rootfs/ses-reputation-operator; \
    ldd /ses-reputation-operator > /tmp/ldd; \
    if grep 'not found' /tmp/ldd; then exit 1; fi; \
    for lib in $(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' /tmp/ldd); do \
      mkdir -p "/rootfs$(dirname "$lib")"; \
      cp -L --preserve=mode "$lib" "/rootfs$lib"; \
    done; \
    cp -L /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt; \
    chmod 0644 /rootfs/etc/ssl/certs/ca-certificates.crt; \
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
      'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > /rootfs/etc/passwd; \
    printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > /rootfs/etc/group

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
COPY --from=build /rootfs/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.title="ses-reputation-operator" \
      org.opencontainers.image.description="Kubernetes operator for Amazon SES v2 configuration sets, event destinations and reputation" \
      org.opencontainers.image.source="https://github.com/ses-reputation-operator/ses-reputation-operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Numeric, so the kubelet can verify runAsNonRoot without /etc/passwd.
USER 65532:65532
WORKDIR /
EXPOSE 8080
ENTRYPOINT ["/ses-reputation-operator"]
CMD ["run"]
