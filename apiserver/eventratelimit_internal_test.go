package apiserver

import (
	"testing"
	"time"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/pki"
)

// TestEventLimiterLine: writers refused in a row by a spent bucket are told to come
// back one token's refill apart, in the order they were refused, up to maxEventWait
// past the next token (those refused beyond it all told its end, taking no place);
// each coming back at its slot finds its token, while a writer without a place is
// refused then; after an idle spell the line starts again at the next token.
func TestEventLimiterLine(t *testing.T) {
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	l := newEventLimiter(EventRateLimit{NamespaceQPS: 100, NamespaceBurst: 5}, func() time.Time { return now }, func(string) {})
	var admin auth.User
	delayOf := func(err error) time.Duration {
		t.Helper()
		if err == nil {
			t.Fatal("a write admitted, want it refused")
		}
		d := client.RetryAfter(err)
		if d <= 0 {
			t.Fatalf("refusal %v carries no delay", err)
		}
		return d
	}
	for i := range 5 {
		if err := l.admit(admin, "default"); err != nil {
			t.Fatalf("write %d of the burst: %v", i, err)
		}
	}
	// Ten refused in a row, alternately before and after decoding (spent, admit): each
	// told to come 10 ms after the one before.
	start := now
	var slots []time.Duration
	for i := range 10 {
		var err error
		if i%2 == 0 {
			err = l.spent(admin, "default")
		} else {
			err = l.admit(admin, "default")
		}
		d := delayOf(err)
		want := time.Duration(i+1) * 10 * time.Millisecond
		if d < want || d > want+2*time.Millisecond {
			t.Fatalf("refusal %d told to wait %v, want its place in line, %v", i, d, want)
		}
		slots = append(slots, d)
	}
	// Each comes back at its slot and is admitted; one without a place, there at the
	// same moment, is refused.
	for i, d := range slots {
		now = start.Add(d)
		if err := l.admit(admin, "default"); err != nil {
			t.Fatalf("writer %d back at its slot (%v): %v", i, d, err)
		}
		if err := l.admit(admin, "default"); err == nil {
			t.Fatalf("a writer without a place admitted beside writer %d", i)
		} else if d := client.RetryAfter(err); d < 100*time.Millisecond-time.Duration(i)*10*time.Millisecond {
			t.Fatalf("a writer without a place, beside writer %d, told %v: want after the line", i, d)
		}
	}

	// After an idle minute the bucket is full, and the line long past: it starts again
	// at the next token.
	now = now.Add(time.Minute)
	for i := range 5 {
		if err := l.admit(admin, "default"); err != nil {
			t.Fatalf("write %d of the refilled burst: %v", i, err)
		}
	}
	if d := delayOf(l.admit(admin, "default")); d < 10*time.Millisecond || d > 12*time.Millisecond {
		t.Fatalf("first refusal after an idle minute told %v, want the next token's 10 ms", d)
	}

	// The line holds maxEventWait past the next token: a token a second, the 31st
	// refused and those after are told the line's end, 31 s, and take no place.
	slow := newEventLimiter(EventRateLimit{NodeQPS: 1, NodeBurst: 1}, func() time.Time { return now }, func(string) {})
	w1 := auth.User{Name: pki.NodeUserPrefix + "w1", Groups: []string{pki.GroupNodes}}
	if err := slow.admit(w1, "default"); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		d := delayOf(slow.admit(w1, "default"))
		want := min(time.Duration(i+1)*time.Second+time.Millisecond, time.Second+maxEventWait)
		if d < want-time.Millisecond || d > want+time.Millisecond {
			t.Fatalf("refusal %d by a bucket of a token a second told %v, want %v", i, d, want)
		}
	}
	// Another node's line is its own.
	w2 := auth.User{Name: pki.NodeUserPrefix + "w2", Groups: []string{pki.GroupNodes}}
	if err := slow.admit(w2, "default"); err != nil {
		t.Fatalf("another node's first event: %v", err)
	}
	if d := delayOf(slow.admit(w2, "default")); d > time.Second+2*time.Millisecond {
		t.Fatalf("another node's first refusal told %v, want its own next token's second", d)
	}
}
