// Package indexes reads and writes the sets of completion indexes of an Indexed Job, in
// Kubernetes' format: ordered, non-overlapping intervals joined by commas, each a number
// or a range ("1,3-5,7"). A Job's status.completedIndexes and status.failedIndexes and
// its successPolicy's succeededIndexes are written so.
package indexes

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Set is a set of indexes.
type Set map[int]bool

// Parse reads s, whose indexes must be below limit (a Job's completions). It refuses
// what Kubernetes refuses: a malformed interval, one out of order or overlapping the
// one before, an index out of range.
func Parse(s string, limit int) (Set, error) {
	out := Set{}
	if s == "" {
		return out, nil
	}
	prev := -1
	for _, part := range strings.Split(s, ",") {
		first, last, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(first)
		if err != nil || a < 0 || first == "" || first[0] == '+' {
			return nil, fmt.Errorf("cannot convert string to integer for index: %q", first)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(last); err != nil || b < 0 || last == "" || last[0] == '+' {
				return nil, fmt.Errorf("cannot convert string to integer for index: %q", last)
			}
			if b <= a {
				return nil, fmt.Errorf("non-increasing order, previous: %d, current: %d", a, b)
			}
		}
		if a <= prev {
			return nil, fmt.Errorf("overlapping intervals or non-increasing order, previous: %d, current: %d", prev, a)
		}
		if b >= limit {
			return nil, fmt.Errorf("too large: %d", b)
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
		prev = b
	}
	return out, nil
}

// String writes the set in Kubernetes' format: a run of two or more consecutive
// indexes as a range.
func (s Set) String() string {
	idx := make([]int, 0, len(s))
	for i, ok := range s {
		if ok {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	var b strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(idx[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(idx[j]))
		}
		i = j + 1
	}
	return b.String()
}

// Len counts the indexes in the set.
func (s Set) Len() int {
	n := 0
	for _, ok := range s {
		if ok {
			n++
		}
	}
	return n
}
