// Command skiffctl is Skiff's command-line client, shaped like kubectl. The commands live
// in package skiffctl (skiffctl/); this is only its main.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/skiffhq/skiff/skiffctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := skiffctl.Execute(ctx, skiffctl.StdStreams(), os.Args[1:])
	stop()
	os.Exit(code)
}
