package bench

import (
	"os"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// LogEnv names a file a benchmark's controller-manager writes its debug logs to: each
// controller's sync timeline (the Job controller's "job synced" lines say what each
// sync made, released and waited for). Unset, the logs are discarded.
const LogEnv = "SKIFF_BENCH_LOG"

// Logger is the debug logger writing to the file SKIFF_BENCH_LOG names, closed when b
// ends, or a discarding one when it is unset.
func Logger(b testing.TB) hclog.Logger {
	path := os.Getenv(LogEnv)
	if path == "" {
		return hclog.NewNullLogger()
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: f, TimeFormat: "15:04:05.000"})
}
