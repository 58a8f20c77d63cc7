package failpoint

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// action is what an armed point does.
type action struct {
	kind  string // crash, panic or delay
	delay time.Duration
	prob  float64
}

// parse reads a SKIFF_FAILPOINTS value into its points' actions.
func parse(spec string) (map[string]action, error) {
	points := map[string]action{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, act, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("failpoint %q: want NAME=ACTION[@PROBABILITY]", item)
		}
		a := action{prob: 1}
		if body, p, ok := strings.Cut(act, "@"); ok {
			prob, err := strconv.ParseFloat(p, 64)
			if err != nil || prob < 0 || prob > 1 {
				return nil, fmt.Errorf("failpoint %s: probability %q: want a number from 0 to 1", name, p)
			}
			act, a.prob = body, prob
		}
		switch {
		case act == "crash" || act == "panic":
			a.kind = act
		case strings.HasPrefix(act, "delay(") && strings.HasSuffix(act, ")"):
			d, err := time.ParseDuration(act[len("delay(") : len(act)-1])
			if err != nil || d < 0 {
				return nil, fmt.Errorf("failpoint %s: %s: want delay(DURATION), such as delay(50ms)", name, act)
			}
			a.kind, a.delay = "delay", d
		default:
			return nil, fmt.Errorf("failpoint %s: unknown action %q: want crash, panic or delay(DURATION)", name, act)
		}
		if _, dup := points[name]; dup {
			return nil, fmt.Errorf("failpoint %s given twice", name)
		}
		points[name] = a
	}
	return points, nil
}
