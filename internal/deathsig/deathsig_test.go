package deathsig

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestChildOutlivesTheCallersThread: the goroutine that calls Start is locked to its
// thread and returns without unlocking, so Go ends that thread; the child must live on
// (forked from that thread, it would be sent SIGKILL as the thread ends).
func TestChildOutlivesTheCallersThread(t *testing.T) {
	type result struct {
		done <-chan error
		err  error
		tid  int
	}
	var cmd *exec.Cmd
	var r result
	// The process's main thread is never ended, only parked: try until the caller ran on
	// another one.
	for attempt := 0; ; attempt++ {
		if attempt == 50 {
			t.Fatal("the caller always ran on the main thread")
		}
		cmd = exec.Command("sleep", "30")
		got := make(chan result, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
			done, err := Start(cmd)
			got <- result{done, err, syscall.Gettid()}
		}()
		// Busy, not blocked, while the caller runs, so that it gets a thread of its own.
		for waiting := true; waiting; {
			select {
			case r = <-got:
				waiting = false
			default:
			}
		}
		if r.err != nil || r.tid != os.Getpid() {
			break
		}
		cmd.Process.Kill()
		<-r.done
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	exited := false
	defer func() {
		cmd.Process.Kill()
		if !exited {
			<-r.done
		}
	}()
	waitfor.Condition(t, 10*time.Second, "the caller's thread to end", func() (bool, string) {
		_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", r.tid))
		return os.IsNotExist(err), fmt.Sprintf("thread %d still there", r.tid)
	})
	// A parent-death signal is sent as the thread ends: had the child been forked from
	// it, it would be dead or dying now. Give its exit a moment to be seen (the absence
	// of an event: nothing to poll for).
	select {
	case err := <-r.done:
		exited = true
		t.Fatalf("the child exited when the caller's thread ended: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the child is gone: %v", err)
	}
}

// TestStartError: a command that cannot start is an error, not a channel.
func TestStartError(t *testing.T) {
	if _, err := Start(exec.Command("/nonexistent/skiff-deathsig-test")); err == nil {
		t.Fatal("started a command that does not exist")
	}
}

// TestKeepsSysProcAttr: the caller's other attributes stay.
func TestKeepsSysProcAttr(t *testing.T) {
	cmd := exec.Command("true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	done, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !cmd.SysProcAttr.Setpgid || cmd.SysProcAttr.Pdeathsig != syscall.SIGKILL {
		t.Fatalf("SysProcAttr = %+v", cmd.SysProcAttr)
	}
}
