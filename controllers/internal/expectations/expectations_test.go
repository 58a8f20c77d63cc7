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

// TestAddCreations: more creations add to those outstanding (ExpectCreations would
// forget them), and Pending says what is outstanding until satisfied or expired.
func TestAddCreations(t *testing.T) {
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	e := New(time.Minute, func() time.Time { return now })
	e.AddCreations("a", 3)
	e.CreationObserved("a")
	e.AddCreations("a", 2)
	if c, d := e.Pending("a"); c != 4 || d != 0 || e.Satisfied("a") {
		t.Fatalf("pending %d creations, %d deletions; want 4, 0", c, d)
	}
	for range 4 {
		e.CreationObserved("a")
	}
	if c, d := e.Pending("a"); c != 0 || d != 0 || !e.Satisfied("a") {
		t.Fatalf("all seen: pending %d, %d", c, d)
	}
	e.Expect("b", 1, []string{"ns/p"})
	if c, d := e.Pending("b"); c != 1 || d != 1 {
		t.Fatalf("pending %d, %d; want 1, 1", c, d)
	}
	now = now.Add(2 * time.Minute)
	if c, d := e.Pending("b"); c != 0 || d != 0 {
		t.Fatalf("expired: pending %d, %d", c, d)
	}
	e.AddCreations("b", 1) // after expiry: a fresh record
	if c, _ := e.Pending("b"); c != 1 {
		t.Fatalf("pending %d after expiry and 1 more; want 1", c)
	}
}
