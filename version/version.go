// Package version is Skiff's release, as its programs report it: skiffctl version, and
// the API server to clients that ask. A release build sets it with
// -ldflags "-X github.com/skiffhq/skiff/version.Version=v1.2.3".
package version

import (
	"fmt"
	"runtime"

	apimachineryversion "k8s.io/apimachinery/pkg/version"
)

// Version is Skiff's version, a git tag in Kubernetes' form.
var Version = "v0.1.0"

// Get describes this program's build as Kubernetes' version.Info does (what kubectl
// version prints).
func Get() apimachineryversion.Info {
	return apimachineryversion.Info{
		GitVersion: Version,
		GoVersion:  runtime.Version(),
		Compiler:   runtime.Compiler,
		Platform:   fmt.Sprintf("%s/%s", runtime.GOOS, runtime.GOARCH),
	}
}
