package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

type jobStatus struct {
	Metadata struct{ Uid string }
	Status   struct {
		Active, Succeeded, Failed int
		CompletedIndexes          string
		Conditions                []struct{ Type, Status, Reason string }
	}
}

func (j jobStatus) has(cond string) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == cond && c.Status == "True" {
			return true
		}
	}
	return false
}

func getJob(servers, name string) (jobStatus, string) {
	out, _, err := ctl(servers, "get", "job", name, "-o", "json")
	var j jobStatus
	if err != nil || json.Unmarshal([]byte(out), &j) != nil {
		return jobStatus{}, out
	}
	return j, fmt.Sprintf("%+v", j.Status)
}

// TestIndexedJobFailover: an Indexed Job of 10 completions, parallelism 3, on simulated
// nodes, finishes with each index run once and counted once, although the active
// controller-manager is killed (-9) in the middle and the other one takes over.
func TestIndexedJobFailover(t *testing.T) {
	t.Parallel() // a cluster of its own, mostly waiting: see harness_test.go
	c := startAPIServers(t)
	s := c.servers()
	cms := map[string]*proc{}
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("cm%d", i)
		cms[id] = start(t, id, "controller-manager", "--server", s, "--identity", id, "--log-level", "warn")
	}
	start(t, "scheduler", "scheduler", "--server", s, "--log-level", "warn")
	start(t, "kubelets", "kubelet", "--server", s, "--runtime", "sim", "--sim-nodes", "3", "--node-name", "sim", "--log-level", "warn",
		"--node-ip", "127.0.0.1", "--kubelet-listen", "127.0.0.1:0")
	if _, errs, err := ctlIn(s, `apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completions: 10
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: busybox, command: [sh, -c, "echo working; sleep 1"]}]
`, "apply", "-f", "-"); err != nil {
		t.Fatal(errs)
	}
	waitfor.Condition(t, 60*time.Second, "3 indexes done", func() (bool, string) {
		j, out := getJob(s, "idx")
		return j.Status.Succeeded >= 3 && j.Status.Succeeded < 10, out
	})
	cm := leaseHolder(s, "skiff-controller-manager")
	if cms[cm] == nil {
		t.Fatalf("lease holder %q is not ours", cm)
	}
	cms[cm].kill()
	t.Logf("killed controller-manager %s mid-job", cm)
	waitfor.Condition(t, 120*time.Second, "job complete after the failover", func() (bool, string) {
		j, out := getJob(s, "idx")
		return j.has("Complete"), out
	})
	j, _ := getJob(s, "idx")
	if j.Status.Succeeded != 10 || j.Status.CompletedIndexes != "0-9" || j.Status.Failed != 0 || !j.has("SuccessCriteriaMet") {
		t.Fatalf("status %+v", j.Status)
	}
	out, _, err := ctl(s, "get", "pods", "-o", "json", "-l", "batch.kubernetes.io/job-name=idx")
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Items []struct {
			Metadata struct {
				Annotations map[string]string
				Finalizers  []string
			}
			Status struct{ Phase string }
		}
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, p := range l.Items {
		if p.Status.Phase == "Succeeded" {
			runs[p.Metadata.Annotations["batch.kubernetes.io/job-completion-index"]]++
		}
		if len(p.Metadata.Finalizers) > 0 {
			t.Errorf("a pod keeps finalizers %v", p.Metadata.Finalizers)
		}
	}
	for ix := range 10 {
		if n := runs[fmt.Sprint(ix)]; n != 1 {
			t.Errorf("index %d succeeded %d times", ix, n)
		}
	}
	table := mustCtl(t, s, "get", "jobs")
	if !strings.Contains(table, "Complete") || !strings.Contains(table, "10/10") {
		t.Errorf("get jobs:\n%s", table)
	}
	if logs := mustCtl(t, s, "logs", "job/idx"); !strings.Contains(logs, "working") {
		t.Errorf("logs job/idx: %q", logs)
	}
	tr := mustCtl(t, s, "trace", "job", "idx")
	for _, want := range []string{"job default/idx", "Job stored", "Job started", "Pod created", "Pod completed"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace job idx lacks %q:\n%s", want, tr)
		}
	}
	desc := mustCtl(t, s, "describe", "job", "idx")
	for _, want := range []string{"Completion Mode:", "Indexed", "Completed Indexes:", "0-9", "/ 10 Succeeded / 0 Failed"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe job idx lacks %q:\n%s", want, desc)
		}
	}

	// ttlSecondsAfterFinished set now: the TTL controller deletes the finished Job, and
	// with it (in the foreground) its pods.
	mustCtl(t, s, "patch", "job", "idx", "--type", "merge", "-p", `{"spec":{"ttlSecondsAfterFinished":0}}`)
	waitfor.Condition(t, 60*time.Second, "the expired job and its pods gone", func() (bool, string) {
		jobs, _, _ := ctl(s, "get", "jobs", "--no-headers")
		pods, _, _ := ctl(s, "get", "pods", "--no-headers", "-l", "batch.kubernetes.io/job-name=idx")
		return strings.TrimSpace(jobs) == "" && strings.TrimSpace(pods) == "", "jobs: " + jobs + "\npods: " + pods
	})
}

// TestCronJobForbid: a CronJob every minute with Forbid makes no Job while one runs. A
// Job made by hand from it (create job --from) runs first, so the test waits for one
// scheduled time, at most a minute: the CronJob controller then reports
// JobAlreadyActive and makes nothing. (The controller's unit tests run an hour of
// minutes on a fake clock.)
func TestCronJobForbid(t *testing.T) {
	t.Parallel() // a cluster of its own, mostly waiting: see harness_test.go
	c := startAPIServers(t)
	s := c.servers()
	start(t, "controller-manager", "controller-manager", "--server", s, "--log-level", "warn")
	start(t, "scheduler", "scheduler", "--server", s, "--log-level", "warn")
	start(t, "kubelets", "kubelet", "--server", s, "--runtime", "sim", "--sim-nodes", "1", "--node-name", "sim", "--log-level", "warn",
		"--kubelet-listen", "127.0.0.1:0")
	if _, errs, err := ctlIn(s, `apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: work, image: busybox, command: [sleep, "3600"]}]
`, "apply", "-f", "-"); err != nil {
		t.Fatal(errs)
	}
	mustCtl(t, s, "create", "job", "tick-now", "--from=cronjob/tick")
	waitfor.Condition(t, 30*time.Second, "the cron job counts the job made by hand as active", func() (bool, string) {
		out, _, _ := ctl(s, "get", "cronjob", "tick", "-o", "jsonpath={.status.active[*].name}")
		return out == "tick-now", out
	})
	waitfor.Condition(t, 90*time.Second, "a scheduled time skipped (JobAlreadyActive)", func() (bool, string) {
		out, _, _ := ctl(s, "get", "events", "--field-selector", "reason=JobAlreadyActive", "--no-headers")
		return strings.Contains(out, "cronjob/tick"), out
	})
	jobs := mustCtl(t, s, "get", "jobs", "--no-headers")
	if n := len(strings.Split(strings.TrimSpace(jobs), "\n")); n != 1 || !strings.HasPrefix(jobs, "tick-now ") {
		t.Fatalf("jobs:\n%s\nwant only tick-now: Forbid", jobs)
	}
	tr := mustCtl(t, s, "trace", "cronjob/tick")
	for _, want := range []string{"cronjob default/tick", "Schedule due", "Job created", "Pod created"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace cronjob/tick lacks %q:\n%s", want, tr)
		}
	}
}
