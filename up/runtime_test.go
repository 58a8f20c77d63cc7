package up

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
)

// fakeMachine is a machine whose containerd answers (or not) at given sockets, and
// records what skiff up did with it.
type fakeMachine struct {
	answering     map[string]bool // sockets something answers on
	privateErr    error           // why no private containerd can run
	startErr      error
	connectErr    error
	connectedTo   string
	privateStarts int
	rt            kubelet.Runtime
}

const (
	machineSocket = "/run/containerd/containerd.sock"
	privateSocket = "/run/skiff/containerd-abc/containerd.sock"
)

func (f *fakeMachine) machine() machine {
	return machine{
		answers:       func(s string) bool { return f.answering[s] },
		privateUsable: func() error { return f.privateErr },
		startPrivate: func(context.Context) (string, func(), error) {
			f.privateStarts++
			if f.startErr != nil {
				return "", nil, f.startErr
			}
			f.answering[privateSocket] = true
			return privateSocket, func() { f.answering[privateSocket] = false }, nil
		},
		connect: func(_ context.Context, socket string) (kubelet.Runtime, error) {
			f.connectedTo = socket
			if f.connectErr != nil {
				return nil, f.connectErr
			}
			return f.rt, nil
		},
	}
}

func TestPickRuntime(t *testing.T) {
	const (
		noMachine = "no containerd answering at " + machineSocket
		private   = "a private containerd at " + privateSocket + " (" + noMachine + "; images and containers in /data/containerd, its log in /data/containerd.log)"
	)
	for _, tc := range []struct {
		name       string
		mode       string
		answering  bool // the machine's containerd
		privateErr error
		startErr   error
		connectErr error

		wantNote      string // or the error
		wantErr       bool
		wantRuntime   bool
		wantConnected string
		wantHooks     int // what stops after the components
	}{
		{name: "sim asks nothing", mode: RuntimeSim, answering: true, wantNote: "simulated (--runtime sim)"},
		{name: "the machine's containerd", mode: RuntimeAuto, answering: true,
			wantNote: "containerd at " + machineSocket, wantRuntime: true, wantConnected: machineSocket},
		{name: "the machine's containerd, asked for", mode: RuntimeContainerd, answering: true,
			wantNote: "containerd at " + machineSocket, wantRuntime: true, wantConnected: machineSocket},
		{name: "a private containerd when none answers", mode: RuntimeAuto,
			wantNote: private, wantRuntime: true, wantConnected: privateSocket, wantHooks: 2},
		{name: "a private containerd, asked for", mode: RuntimeContainerd,
			wantNote: private, wantRuntime: true, wantConnected: privateSocket, wantHooks: 2},
		{name: "simulated when no private one can run", mode: RuntimeAuto, privateErr: errors.New("running containers needs root"),
			wantNote: "simulated (" + noMachine + ", and no private one: running containers needs root)"},
		{name: "no containerd at all, asked for", mode: RuntimeContainerd, privateErr: errors.New("running containers needs root"),
			wantNote: "--runtime containerd: " + noMachine + ", and no private one: running containers needs root", wantErr: true},
		{name: "the private one does not start", mode: RuntimeAuto, startErr: errors.New("private containerd exited at start"),
			wantNote: "private containerd exited at start", wantErr: true},
		{name: "simulated when the machine's is unusable", mode: RuntimeAuto, answering: true, connectErr: errors.New("version too old"),
			wantNote: "simulated (containerd unusable: version too old)", wantConnected: machineSocket},
		{name: "the machine's unusable, asked for", mode: RuntimeContainerd, answering: true, connectErr: errors.New("version too old"),
			wantNote: "containerd at " + machineSocket + ": version too old", wantErr: true, wantConnected: machineSocket},
		{name: "the private one unusable: an error, and it is stopped", mode: RuntimeAuto, connectErr: errors.New("version too old"),
			wantNote: "containerd at " + privateSocket + ": version too old", wantErr: true, wantConnected: privateSocket, wantHooks: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeMachine{answering: map[string]bool{machineSocket: tc.answering}, privateErr: tc.privateErr,
				startErr: tc.startErr, connectErr: tc.connectErr, rt: sim.New(sim.Config{})}
			var hooks []func()
			rt, note, err := pickRuntime(context.Background(), f.machine(), tc.mode, machineSocket, "/data", func(h func()) { hooks = append(hooks, h) }, hclog.NewNullLogger())
			if tc.wantErr {
				if err == nil || err.Error() != tc.wantNote {
					t.Fatalf("error %v, want %q", err, tc.wantNote)
				}
			} else if err != nil || note != tc.wantNote {
				t.Fatalf("note %q (error %v), want %q", note, err, tc.wantNote)
			}
			if (rt != nil) != tc.wantRuntime {
				t.Errorf("runtime %v, want one: %v", rt, tc.wantRuntime)
			}
			if f.connectedTo != tc.wantConnected {
				t.Errorf("connected to %q, want %q", f.connectedTo, tc.wantConnected)
			}
			if len(hooks) != tc.wantHooks {
				t.Fatalf("%d things to stop after the components, want %d", len(hooks), tc.wantHooks)
			}
			if tc.wantHooks > 0 {
				// Stopped last first: the containers, then the private containerd.
				for i := len(hooks) - 1; i >= 0; i-- {
					hooks[i]()
				}
				if f.answering[privateSocket] {
					t.Error("the private containerd still answers after its stop")
				}
			}
		})
	}
}

// TestStopAll: stopping skiff up with a private containerd stops every running
// container, and only those.
func TestStopAll(t *testing.T) {
	ctx := context.Background()
	rt := sim.New(sim.Config{Present: []string{"busybox"}})
	var ids []string
	for _, name := range []string{"a", "b", "done"} {
		cmd := []string{"sh", "-c", "sleep 3600"}
		if name == "done" {
			cmd = []string{"sh", "-c", "exit 0"}
		}
		id, err := rt.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u", PodName: "p", Namespace: "ns", Name: name, Image: "busybox", Command: cmd})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	stopAll(rt, hclog.NewNullLogger())
	ctrs, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var running []string
	for _, c := range ctrs {
		if c.State == kubelet.StateRunning {
			running = append(running, c.ID)
		}
	}
	if len(ctrs) != 3 || len(running) != 0 {
		t.Fatalf("after stopAll: %d containers, running: %s", len(ctrs), strings.Join(running, ","))
	}
	if !slices.ContainsFunc(ctrs, func(c kubelet.Container) bool { return c.ID == ids[2] }) {
		t.Fatal("the exited container is gone")
	}
}
