#!/usr/bin/env bash
# Kubernetes' conformance suite against a running Skiff: builds e2e.test from
# k8s.io/kubernetes at the release Skiff's k8s.io modules pin (its [Conformance] tests,
# the ones k3s and k0s are certified with), runs them against the cluster of KUBECONFIG
# and prints how many pass and fail, per area (SIG). Not part of `make test`: a full run
# takes hours. docs/compatibility.md records the results.
#
#   ./bin/skiff up &                                   # or any Skiff cluster
#   test/conformance/conformance.sh                    # KUBECONFIG, FOCUS, SKIP, OUT
#   test/conformance/conformance.sh build              # only build bin/conformance/e2e.test
set -euo pipefail

K8S_VERSION=v1.37.2   # k8s.io/kubernetes; its staging modules are v0.37.2, as go.mod pins
STAGING_VERSION=v0.37.2
KUBECONFIG=${KUBECONFIG:-$HOME/.skiff/kubeconfig}
FOCUS=${FOCUS:-'\[Conformance\]'}
SKIP=${SKIP:-'\[Serial\]|\[Disruptive\]'}
root=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$root/bin/conformance}
mkdir -p "$OUT"

build() {
	local work
	work=$(mktemp -d)
	trap 'rm -rf "$work"' RETURN
	(
		cd "$work"
		go mod init skiff.local/conformance >/dev/null 2>&1
		go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
		local gomod
		gomod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod
		# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
		# its own directories, which a module that requires it does not see: replace them
		# with their releases.
		local args=()
		for m in $(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod"); do
			args+=("-replace=$m=$m@$STAGING_VERSION")
		done
		go mod edit -require="k8s.io/kubernetes@$K8S_VERSION" "${args[@]}"
		go mod tidy -e >/dev/null 2>&1 || true
		go get -t "k8s.io/kubernetes/test/e2e@$K8S_VERSION" # -t: its tests' imports too
		echo "building e2e.test from k8s.io/kubernetes $K8S_VERSION (this takes a while)" >&2
		go test -c -o "$OUT/e2e.test" k8s.io/kubernetes/test/e2e
	)
}

[ -x "$OUT/e2e.test" ] || build
[ "${1:-}" = build ] && exit 0

"$OUT/e2e.test" --kubeconfig="$KUBECONFIG" --provider=local \
	--ginkgo.focus="$FOCUS" --ginkgo.skip="$SKIP" --ginkgo.no-color \
	--ginkgo.json-report="$OUT/report.json" --report-dir="$OUT" \
	--ginkgo.timeout=12h >"$OUT/e2e.log" 2>&1 || true

# Counts per area: the [sig-...] label that opens each test's name.
python3 - "$OUT/report.json" <<'PY'
import json, re, sys, collections
suites = json.load(open(sys.argv[1]))
area = collections.defaultdict(lambda: collections.Counter())
for suite in suites:
    for spec in suite.get("SpecReports") or []:
        if spec.get("LeafNodeType") != "It":
            continue
        name = " ".join(spec.get("ContainerHierarchyTexts") or []) + " " + spec.get("LeafNodeText", "")
        m = re.search(r"\[sig-([a-z-]+)\]", name)
        area[m.group(1) if m else "other"][spec["State"]] += 1
total = collections.Counter()
print("%-20s %7s %7s %7s" % ("area", "passed", "failed", "skipped"))
for a in sorted(area):
    c = area[a]
    total.update(c)
    print("%-20s %7d %7d %7d" % (a, c["passed"], c["failed"] + c["timedout"] + c["panicked"], c["skipped"]))
print("%-20s %7d %7d %7d" % ("total", total["passed"], total["failed"] + total["timedout"] + total["panicked"], total["skipped"]))
PY
echo "failures and their messages: $OUT/e2e.log, $OUT/report.json"
