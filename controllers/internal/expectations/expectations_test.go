package expectations

import (
	"testing"
	"time"
)

func TestExpectations(t *testing.T) {
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	e := New(time.Minute, func() time.Time { return now })
	if !e.Satisfied("a") {
		t.Fatal("nothing expected: satisfied")
	}
	e.Expect("a", 2, []string{"ns/p1"})
	e.CreationObserved("a")
	e.DeletionObserved("a", "ns/other") // not one it waits for
	e.DeletionObserved("a", "ns/p1")
	if e.Satisfied("a") {
		t.Fatal("one creation outstanding: not satisfied")
	}
	e.CreationObserved("a")
	if !e.Satisfied("a") {
		t.Fatal("all seen: satisfied")
	}
	e.ExpectCreations("b", 1)
	now = now.Add(2 * time.Minute)
	if !e.Satisfied("b") {
		t.Fatal("expired: satisfied")
	}
	e.ExpectDeletions("c", []string{"ns/p"})
	e.Forget("c")
	if !e.Satisfied("c") {
		t.Fatal("forgotten: satisfied")
	}
}
