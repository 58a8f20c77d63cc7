package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/test/waitfor"
	"github.com/skiffhq/skiff/up/daemon"
)

// statefulSetDataManifest is a StatefulSet whose pod writes a token into its claim's
// volume once, and prints the token it finds there at every start.
const statefulSetDataManifest = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: docker.io/library/busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "test -s /data/token || cat /proc/sys/kernel/random/uuid > /data/token; echo token=$(cat /data/token); sleep 3600"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`

// TestStatefulSetDataOnContainerd: a StatefulSet's pod on real containerd, deleted, comes
// back with the same name and finds the data its predecessor wrote in its claim's volume
// (the local-path provisioner's directory on the node, mounted by the kubelet).
func TestStatefulSetDataOnContainerd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: containerd")
	}
	if err := daemon.Usable(); err != nil {
		t.Skipf("skiff up's private containerd: %v", err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("the image comes from /bin/busybox (busybox-static), which is missing")
	}
	dir, addr := upPlace(t, 1)
	up := start(t, "skiff up", "up", "--data-dir", filepath.Join(dir, "up"), "--listen", addr, "--node-name", "sts-data", "--pod-network=false",
		"--containerd-address", staleSocket(t, dir))
	privateContainerd(t, up)
	waitfor.Condition(t, 60*time.Second, "the node ready", func() (bool, string) {
		out, errs, err := ctl(addr, "get", "nodes")
		return err == nil && strings.Contains(out, " Ready"), out + errs
	})
	mustCtlStdin(t, addr, statefulSetDataManifest, "apply", "-f", "-")

	// running waits for db-0 running as a pod other than not, and returns its UID and
	// the token its container printed.
	running := func(not string) (uid, token string) {
		t.Helper()
		waitfor.Condition(t, 2*time.Minute, "db-0 running and saying its token", func() (bool, string) {
			out, errs, err := ctl(addr, "get", "pod", "db-0", "-o", "json")
			if err != nil {
				return false, out + errs
			}
			var p corev1.Pod
			if err := json.Unmarshal([]byte(out), &p); err != nil {
				return false, err.Error()
			}
			if string(p.UID) == not || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				return false, string(p.UID) + " " + string(p.Status.Phase)
			}
			logs, errs, err := ctl(addr, "logs", "db-0")
			if err != nil || !strings.HasPrefix(logs, "token=") {
				return false, logs + errs
			}
			uid, token = string(p.UID), strings.TrimSpace(strings.TrimPrefix(logs, "token="))
			return token != "", logs
		})
		return uid, token
	}
	uid, token := running("")
	mustCtl(t, addr, "delete", "pod", "db-0")
	uid2, token2 := running(uid)
	if uid2 == uid || token2 != token {
		t.Fatalf("db-0 came back as %s with token %q; before: %s with %q", uid2, token2, uid, token)
	}
	t.Logf("db-0 was %s and is %s; both read token %s from the volume", uid, uid2, token)
	// One claim, bound, named for the template and the ordinal.
	out := mustCtl(t, addr, "get", "pvc", "--no-headers")
	if f := strings.Fields(out); len(f) < 2 || f[0] != "data-db-0" || f[1] != "Bound" || strings.Count(out, "\n") != 1 {
		t.Fatalf("claims:\n%s", out)
	}

	// The set deleted, then its claim: the volume is Released, and the node's kubelet
	// removes its directory, then the volume (the local-path class's reclaimPolicy is
	// Delete), with the node's own credentials.
	var claim corev1.PersistentVolumeClaim
	if err := json.Unmarshal([]byte(mustCtl(t, addr, "get", "pvc", "data-db-0", "-o", "json")), &claim); err != nil {
		t.Fatal(err)
	}
	pv := claim.Spec.VolumeName
	data := filepath.Join(dir, "up", "local-path", pv+"_default_data-db-0")
	if _, err := os.Stat(filepath.Join(data, "token")); err != nil {
		t.Fatalf("the volume's directory: %v", err)
	}
	mustCtl(t, addr, "delete", "statefulset", "db")
	waitfor.Condition(t, time.Minute, "db-0 gone", func() (bool, string) {
		out, errs, err := ctl(addr, "get", "pod", "db-0")
		return err != nil && strings.Contains(errs, "not found"), out + errs
	})
	mustCtl(t, addr, "delete", "pvc", "data-db-0")
	waitfor.Condition(t, 2*time.Minute, "the Released volume and its directory removed", func() (bool, string) {
		out, errs, err := ctl(addr, "get", "pv", pv)
		_, statErr := os.Stat(data)
		return err != nil && strings.Contains(errs, "not found") && os.IsNotExist(statErr), fmt.Sprintf("%s%s directory: %v", out, errs, statErr)
	})
}
