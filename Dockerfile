# syntax=docker/dockerfile:1
# The operator's image for people with Docker or BuildKit; `make image` (hack/image) builds the
# same thing without a container engine. Static musl binary, no shell, non-root.
#
#   docker build -t acqp-operator:0.1.0 .

# Debian bookworm, as the project's own machines; the Rust version is the one the project
# builds with (edition 2024 needs at least Cargo.toml's rust-version).
FROM docker.io/library/rust:1.95-bookworm AS build
# ring compiles C, so the musl target needs musl-gcc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin acqp-operator \
 && cp target/x86_64-unknown-linux-musl/release/acqp-operator /acqp-operator

# distroless/static: CA certificates (for HTTPS to the Developer Center), /etc/passwd with
# the nonroot user 65532, and nothing else: no shell, no package manager, no libc.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /acqp-operator /acqp-operator
USER 65532:65532
ENTRYPOINT ["/acqp-operator"]
CMD ["run"]
