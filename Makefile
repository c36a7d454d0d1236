# acqp-operator: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo

.PHONY: test demo bench chaos crds fmt lint control-plane flux image image-test help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

test: control-plane flux lint ## Everything: formatting, clippy, unit, integration and end-to-end tests
	$(CARGO) test --all-targets --no-fail-fast

demo: control-plane ## Control plane + simulator + operator, walked through invite → grant → rotation → revocation
	hack/demo

bench: control-plane ## Micro-benchmarks, then the scale run on a real control plane; writes BENCHMARKS.md
	$(CARGO) bench --bench decide --bench signing
	$(CARGO) bench --bench scale

chaos: control-plane ## Full chaos runs: 200 resources under faults, 10 SIGKILLs, failover, control-plane and simulator restarts
	ACQP_CHAOS_FULL=1 $(CARGO) test --test chaos --test chaos_control_plane -- --nocapture --test-threads=1

crds: ## Regenerate crds/ from the Rust types
	$(CARGO) run --quiet -- crd --out-dir crds

fmt: ## Format the code
	$(CARGO) fmt

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

image: ## Build the container image without Docker (OCI layout + docker archive under target/image/)
	hack/image

image-test: ## Build the image and inspect it: entrypoint, non-root user, no shell, size
	$(CARGO) test --test image -- --ignored

control-plane: ## Build etcd, kube-apiserver and helm from pinned Go modules (once; cached)
	hack/control-plane ensure

flux: ## Build Flux's source-controller and kustomize-controller from pinned Go modules (once; cached)
	hack/flux ensure
