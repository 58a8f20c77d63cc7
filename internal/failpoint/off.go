//go:build !failpoints

package failpoint

// Enabled says whether this build has failpoints: not without the failpoints tag.
const Enabled = false

// Inject does nothing: this build has no failpoints.
func Inject(name string) {}
