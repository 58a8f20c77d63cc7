// Command skiff runs Skiff's servers: apiserver, controller-manager, scheduler, kubelet,
// and `up` (all in one process). It parses flags and wires packages; the logic lives in
// the packages.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/heapsignal"
)

func main() {
	stopHeap := heapsignal.Start(os.Getenv(heapsignal.Env), func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	})
	err := rootCmd().Execute()
	stopHeap()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "Skiff's servers: a Kubernetes-style control plane on a Raft-replicated store",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var logLevel string
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	logger := func(name string) hclog.Logger {
		return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.LevelFromString(logLevel), Output: os.Stderr})
	}
	root.AddCommand(apiserverCmd(logger), controllerManagerCmd(logger), schedulerCmd(logger), kubeletCmd(logger), upCmd(logger), certsCmd(), restoreCmd(logger))
	return root
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
