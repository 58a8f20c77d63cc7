// Package deathsig starts child processes that die with this one (Linux's parent-death
// signal), safely in a Go program.
//
// Linux sends the parent-death signal when the thread that forked the child exits, not
// when the process does. Go ends a thread when a goroutine locked to it returns without
// unlocking — which is how kubelet/cni and the port-forward discard a thread left in a
// pod's network namespace — so a child started from an ordinary goroutine can be killed
// at any moment, long before its parent exits. Start forks from a thread of its own that
// stays alive, locked, until the child has exited.
package deathsig

import (
	"os/exec"
	"runtime"
	"syscall"
)

// Start starts cmd with SIGKILL as its parent-death signal, keeping the SysProcAttr it has
// otherwise. The returned channel receives cmd.Wait's result once the process has exited;
// callers wait on it instead of calling cmd.Wait.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
