package up

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"
)

// group supervises skiff up's components. A component that fails while the group runs
// stops the others, and its error, named, is the group's; one that returns nil stops
// nothing; errors once the group stops are the stop's doing and ignored. What must
// outlive the components (a private containerd and its containers) is stopped after
// them, the last registered first.
type group struct {
	parent    context.Context
	ctx       context.Context // the components'; ends with parent, a failure or stop
	cancel    context.CancelFunc
	eg        *errgroup.Group
	afterStop []func()
}

func newGroup(parent context.Context) *group {
	ctx, cancel := context.WithCancel(parent)
	eg, ctx := errgroup.WithContext(ctx)
	return &group{parent: parent, ctx: ctx, cancel: cancel, eg: eg}
}

// run starts a component in its own goroutine.
func (g *group) run(name string, fn func(ctx context.Context) error) {
	g.eg.Go(func() error {
		if err := fn(g.ctx); err != nil && g.ctx.Err() == nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// onStopped registers f to run once every component has stopped.
func (g *group) onStopped(f func()) { g.afterStop = append(g.afterStop, f) }

// wait blocks until the parent context ends (it then says "Stopping..." on out and
// returns nil) or a component fails (it returns that component's error once the others
// have stopped).
func (g *group) wait(out io.Writer) error {
	<-g.ctx.Done()
	if g.parent.Err() != nil {
		fmt.Fprintln(out, "Stopping...")
		return nil
	}
	return g.eg.Wait()
}

// stop stops every component, waits for them, then runs what was registered with
// onStopped, the last registered first. It may be called more than once.
func (g *group) stop() {
	g.cancel()
	g.eg.Wait()
	for i := len(g.afterStop) - 1; i >= 0; i-- {
		g.afterStop[i]()
	}
	g.afterStop = nil
}
