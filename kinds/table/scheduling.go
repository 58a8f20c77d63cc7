package table

import (
	"strconv"

	schedulingv1 "k8s.io/api/scheduling/v1"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of PriorityClasses: Kubernetes' printer's, age before the preemption
// policy, which a class without one shows as <unset>.
func init() {
	doc := schedulingv1.PriorityClass{}.SwaggerDoc()
	pc := typed[*schedulingv1.PriorityClass]
	columns[kinds.PriorityClass] = []Column{nameCol,
		col("Value", "integer", 0, doc["value"], pc(func(c *schedulingv1.PriorityClass) any { return int64(c.Value) })),
		col("Global-Default", "boolean", 0, doc["globalDefault"], pc(func(c *schedulingv1.PriorityClass) any { return strconv.FormatBool(c.GlobalDefault) })),
		ageCol,
		col("PreemptionPolicy", "string", 0, doc["preemptionPolicy"], pc(func(c *schedulingv1.PriorityClass) any {
			if c.PreemptionPolicy == nil {
				return "<unset>"
			}
			return string(*c.PreemptionPolicy)
		})),
	}
}
