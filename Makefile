# acqp-operator: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo

.PHONY: install test demo demo-node deps test-tools node smtp bench chaos crds fmt lint control-plane flux monitoring conformance-tools conformance image image-test help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

test: deps test-tools lint ## Everything: formatting, clippy, unit, integration and end-to-end tests
	@echo "[test] building the test binaries (a first build takes about 10 minutes on 2 cores; cached in $${CARGO_TARGET_DIR:-target}), then running them"
	$(CARGO) test --all-targets --no-fail-fast

demo: deps smtp ## Control plane + simulator + operator + SMTP server, walked through invite → grant → rotation → revocation
	hack/demo

demo-node: deps smtp node ## The same walk-through with the operator as the chart's Pod on a real node (helm install; needs root)
	NODE=1 hack/demo

MUSL_TARGET := x86_64-unknown-linux-musl

bench: deps ## Micro-benchmarks, then the scale run on a real control plane (glibc build and the image's musl binary); writes BENCHMARKS.md
	$(CARGO) bench --bench decide --bench signing
	@rustup target list --installed | grep -qx $(MUSL_TARGET) || rustup target add $(MUSL_TARGET)
	@echo "[bench] building the image's static musl binary (release; a first build takes about 10 minutes)"
	CARGO_PROFILE_RELEASE_STRIP=symbols $(CARGO) build --release --locked --target $(MUSL_TARGET) --bin acqp-operator
	ACQP_BENCH_MUSL_BINARY="$${CARGO_TARGET_DIR:-target}/$(MUSL_TARGET)/release/acqp-operator" $(CARGO) bench --bench scale

chaos: deps ## Full chaos runs: 200 resources under faults, 10 SIGKILLs, failover, control-plane and simulator restarts
	ACQP_CHAOS_FULL=1 $(CARGO) test --test chaos --test chaos_control_plane -- --nocapture --test-threads=1

install: ## Install the kubectl plugin (`kubectl acqp`) into ~/.cargo/bin
	$(CARGO) install --locked --path . --bin kubectl-acqp

crds: ## Regenerate crds/ from the Rust types
	$(CARGO) run --quiet -- crd --out-dir crds

fmt: ## Format the code
	$(CARGO) fmt

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --check
	@echo "[lint] clippy on every target (a first run compiles the dependencies: several minutes; cached in $${CARGO_TARGET_DIR:-target})"
	$(CARGO) clippy --all-targets -- -D warnings

image: ## Build the container image without Docker (OCI layout + docker archive under target/image/)
	hack/image

image-test: ## Build the image and inspect it: entrypoint, non-root user, no shell, size
	$(CARGO) test --test image -- --ignored

deps: ## Install what a fresh machine lacks (Debian packages, Go builds); quick when all is present
	hack/deps
	hack/control-plane ensure

test-tools: flux monitoring conformance-tools smtp node ## What only the tests need: Flux, promtool and CRDs, Schemathesis, aiosmtpd, the node (once; cached)

node: ## Build the node the chart is installed on: kubelet, controller manager, scheduler, containerd, runc, CNI, pause (once; cached)
	hack/node ensure

flux: ## Build Flux's source-controller and kustomize-controller from pinned Go modules (once; cached)
	hack/flux ensure

monitoring: ## Build promtool and fetch the Prometheus Operator CRDs from pinned Go modules (once; cached)
	hack/promtool ensure
	hack/prometheus-operator-crds ensure

smtp: ## Install aiosmtpd (pinned in hack/versions.env), the tests' and the demo's SMTP server, into a venv in the cache (once)
	hack/smtp ensure

conformance-tools: ## Install Schemathesis (pinned in hack/versions.env) into a venv in the cache (once)
	hack/conformance ensure

conformance: conformance-tools ## The contract's conformance suite against a gateway: make conformance ENDPOINT=https://…
	@test -n "$(ENDPOINT)" || { echo "usage: make conformance ENDPOINT=<base URL of the gateway> (see GATEWAY.md)" >&2; exit 2; }
	hack/conformance run "$(ENDPOINT)"

control-plane: ## Build etcd, kube-apiserver and helm from pinned Go modules (once; cached)
	hack/control-plane ensure
