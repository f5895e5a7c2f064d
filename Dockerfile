# syntax=docker/dockerfile:1
# Operator image: a release build on Debian bookworm, run on distroless
# (glibc + libgcc, no shell, no package manager) as UID 65532.
#   docker build -t ghcr.io/ses-reputation-operator/ses-reputation-operator:0.1.0 .

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

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /ses-reputation-operator /ses-reputation-operator
# Numeric, so the kubelet can verify runAsNonRoot without /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/ses-reputation-operator"]
CMD ["run"]
