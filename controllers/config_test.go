package controllers

import (
	"strings"
	"testing"

	"github.com/skiffhq/skiff/controllers/deployment"
	"github.com/skiffhq/skiff/controllers/disruption"
	"github.com/skiffhq/skiff/controllers/garbagecollector"
	"github.com/skiffhq/skiff/controllers/namespace"
	"github.com/skiffhq/skiff/controllers/nodelifecycle"
	"github.com/skiffhq/skiff/controllers/podgc"
	"github.com/skiffhq/skiff/controllers/replicaset"
)

// TestConfigs: every controller's DefaultConfig is valid, and a zero Config is refused
// at once, naming each field that needs a value.
func TestConfigs(t *testing.T) {
	for _, tc := range []struct {
		name          string
		def, zero     error
		wantZeroNames []string
	}{
		{"controller-manager", DefaultConfig().Validate(), Config{}.Validate(),
			[]string{"controller-manager config", "nodeGracePeriod", "podEvictionTimeout", "logger"}},
		{"deployment", deployment.DefaultConfig().Validate(), deployment.Config{}.Validate(),
			[]string{"deployment controller config", "workers", "logger", "now"}},
		{"replicaset", replicaset.DefaultConfig().Validate(), replicaset.Config{}.Validate(),
			[]string{"replicaset controller config", "workers", "burstReplicas", "expectationsTimeout", "logger", "now"}},
		{"garbagecollector", garbagecollector.DefaultConfig().Validate(), garbagecollector.Config{}.Validate(),
			[]string{"garbage collector config", "workers", "logger"}},
		{"nodelifecycle", nodelifecycle.DefaultConfig().Validate(), nodelifecycle.Config{}.Validate(),
			[]string{"node lifecycle controller config", "gracePeriod", "defaultTolerationSeconds", "monitorPeriod", "evictionQPS", "logger", "now"}},
		{"namespace", namespace.DefaultConfig().Validate(), namespace.Config{}.Validate(),
			[]string{"namespace controller config", "workers", "finalizerEstimate", "logger", "now"}},
		{"podgc", podgc.DefaultConfig().Validate(), podgc.Config{}.Validate(),
			[]string{"pod garbage collector config", "period", "workers", "logger", "now"}},
		{"disruption", disruption.DefaultConfig().Validate(), disruption.Config{}.Validate(),
			[]string{"disruption controller config", "workers", "deletionTimeout", "logger", "now"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.def != nil {
				t.Errorf("DefaultConfig is invalid: %v", tc.def)
			}
			if tc.zero == nil {
				t.Fatal("a zero Config is accepted")
			}
			for _, name := range tc.wantZeroNames {
				if !strings.Contains(tc.zero.Error(), name+":") && !strings.Contains(tc.zero.Error(), name+" ") {
					t.Errorf("the zero Config's error does not name %s:\n%v", name, tc.zero)
				}
			}
		})
	}
}
