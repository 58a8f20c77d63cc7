// Command skiffctl is Skiff's command-line client, shaped like kubectl. The commands live
// in client/ctl.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/skiffhq/skiff/client/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Execute(ctx, ctl.StdStreams(), os.Args[1:])
	stop()
	os.Exit(code)
}
