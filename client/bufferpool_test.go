package client

import "testing"

func TestTieredPool(t *testing.T) {
	p := newTieredPool(8, 12)
	for _, tc := range []struct{ n, cap int }{{0, 256}, {1, 256}, {256, 256}, {257, 512}, {1025, 2048}, {4096, 4096}, {4097, 4097}} {
		bp := p.Get(tc.n)
		if len(*bp) != tc.n || cap(*bp) != tc.cap {
			t.Errorf("Get(%d): len %d cap %d, want cap %d", tc.n, len(*bp), cap(*bp), tc.cap)
		}
		p.Put(bp)
	}
	// A buffer put back serves the next Get of its size, at the length asked for.
	bp := p.Get(600)
	(*bp)[0] = 7
	p.Put(bp)
	if again := p.Get(1000); cap(*again) != 1024 || len(*again) != 1000 {
		t.Errorf("reused buffer: len %d cap %d", len(*again), cap(*again))
	}
	// A buffer not of a tier's size is not kept.
	odd := make([]byte, 300)
	p.Put(&odd)
	if b := p.Get(300); cap(*b) != 512 {
		t.Errorf("an odd-sized buffer was pooled: cap %d", cap(*b))
	}
}
