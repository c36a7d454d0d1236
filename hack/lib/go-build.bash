# Go builds from pinned modules, shared by hack/control-plane and hack/node (sourced, not run).
#
# The caller sets CACHE (the build cache root) and BIN_DIR (where binaries go), and defines
# log, die and typical_build_time NAME (what a first build takes, for the log line).

# go_build NAME MODULE VERSION PACKAGE LDFLAGS [REPLACES [TAGS [CGO]]]
# Builds PACKAGE from MODULE@VERSION in a throwaway module under the cache, into a temporary
# name first so an interrupted build never leaves a half-written binary behind. Static
# (CGO_ENABLED=0) unless CGO is 1.
go_build() {
  local name=$1 module=$2 version=$3 package=$4 ldflags=$5 replaces=${6:-} tags=${7:-} cgo=${8:-0}
  local work="$CACHE/build/$name-$version"
  local started=$SECONDS
  mkdir -p "$work" "$BIN_DIR"
  {
    echo "module acqp-operator.local/build/$name"
    echo
    echo "go 1.26"
    echo
    echo "require $module $version"
    if [[ -n $replaces ]]; then
      echo
      echo "replace ("
      printf '%s\n' "$replaces"
      echo ")"
    fi
  } > "$work/go.mod"
  # A blank import keeps the package in the build list so `go mod tidy` records every module
  # it needs; the build tag keeps it out of any real compilation.
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" > "$work/tools.go"
  log "building $name $version from $package (about $(typical_build_time "$name") on 2 cores; cached afterwards)"
  (
    cd "$work"
    export CGO_ENABLED=$cgo GOFLAGS="${GOFLAGS:-} -mod=mod"
    nice -n 10 go mod tidy
    nice -n 10 go build -trimpath -tags="$tags" -ldflags="-s -w $ldflags" \
      -o "$BIN_DIR/.$name.tmp" "$package"
  )
  mv -f "$BIN_DIR/.$name.tmp" "$BIN_DIR/$name"
  log "built $name in $((SECONDS - started))s -> $BIN_DIR/$name"
}

# Every staging module k8s.io/kubernetes requires, pinned to the matching v0.x.y: the module
# itself asks for v0.0.0 and replaces them with ./staging paths, which a dependent cannot see.
kubernetes_staging_replaces() {
  local modfile
  modfile="$(cd "$CACHE" && GOFLAGS= go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  python3 - "$modfile" "$KUBERNETES_STAGING_VERSION" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
staging = re.findall(r'^\s*(k8s\.io/\S+)\s+=>\s+\./staging/', text, re.M)
required = set(re.findall(r'^\s*(k8s\.io/\S+)\s+v0\.0\.0\b', text, re.M))
# A staging module nothing requires (e.g. sample-cli-plugin, absent from the proxy) is not in
# the module graph, so pinning it would only make the build depend on something unpublished.
for module in staging:
    if module in required:
        print(f"\t{module} => {module} {sys.argv[2]}")
PY
}

# go_build_kubernetes NAME: cmd/NAME of the pinned k8s.io/kubernetes, with its version stamped
# the way the release builds stamp it (clients and the kubelet check it).
go_build_kubernetes() {
  local name=$1 v=k8s.io/component-base/version replaces minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  log "reading the staging modules from k8s.io/kubernetes@$KUBERNETES_VERSION's go.mod"
  replaces="$(kubernetes_staging_replaces)"
  [[ -n $replaces ]] || die "found no staging modules in k8s.io/kubernetes's go.mod"
  go_build "$name" k8s.io/kubernetes "$KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/$name" \
    "-X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
    "$replaces"
}
