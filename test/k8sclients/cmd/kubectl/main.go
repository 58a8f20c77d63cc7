// Command kubectl is Kubernetes' kubectl, built from k8s.io/kubectl at the version this
// module pins, for the tests that drive it against Skiff.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		// kubectl has printed the error already.
		os.Exit(1)
	}
}
