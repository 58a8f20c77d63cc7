//go:build !failpoints

package failpoint

import "testing"

// TestInactiveWithoutTag: the default build (the product's) has no active failpoint, even
// with the variable set: this test would exit at Inject if it had.
func TestInactiveWithoutTag(t *testing.T) {
	t.Setenv(EnvVar, "test/point=crash,test/other=panic")
	if Enabled {
		t.Fatal("failpoints are enabled without the failpoints build tag")
	}
	Inject("test/point")
	Inject("test/other")
}
