package record

import (
	"testing"
	"time"
)

// TestThrottledKeepsTheServersDelay: a refusal whose delay (the writer's place in its
// budget's line) is longer than the recorder's own back-off pauses the recorder for
// exactly that delay, no jitter added (its slot would pass unused); a shorter one
// leaves the recorder's own back-off, jittered by up to half, in force.
func TestThrottledKeepsTheServersDelay(t *testing.T) {
	r := New(nil, Config{Component: "test"}) // RetryBase 100ms
	for i, server := range []time.Duration{7 * time.Second, 3 * time.Second, 20 * time.Second} {
		r.pausedUntil = time.Time{} // the last pause has passed
		if d := r.throttled(server); d != server {
			t.Fatalf("refusal %d asking for %v: paused %v, want the server's delay as given", i, server, d)
		}
	}
	r.pausedUntil, r.refusals = time.Time{}, 0
	if d := r.throttled(time.Millisecond); d < 100*time.Millisecond || d > 150*time.Millisecond {
		t.Fatalf("refusal asking for 1ms: paused %v, want the recorder's own 100ms, up to half again", d)
	}
}
