package table

import (
	"fmt"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of FlowSchemas and PriorityLevelConfigurations, as Kubernetes' printers
// define them, and of APIServices, as kube-aggregator's table convertor does.
func init() {
	fs := typed[*flowcontrolv1.FlowSchema]
	fsSpec := flowcontrolv1.FlowSchemaSpec{}.SwaggerDoc()
	columns[kinds.FlowSchema] = []Column{nameCol,
		col("PriorityLevel", "string", 0, flowcontrolv1.PriorityLevelConfigurationReference{}.SwaggerDoc()["name"],
			fs(func(s *flowcontrolv1.FlowSchema) any { return s.Spec.PriorityLevelConfiguration.Name })),
		col("MatchingPrecedence", "string", 0, fsSpec["matchingPrecedence"],
			fs(func(s *flowcontrolv1.FlowSchema) any { return int64(s.Spec.MatchingPrecedence) })),
		col("DistinguisherMethod", "string", 0, fsSpec["distinguisherMethod"], fs(func(s *flowcontrolv1.FlowSchema) any {
			if s.Spec.DistinguisherMethod == nil {
				return "<none>"
			}
			return string(s.Spec.DistinguisherMethod.Type)
		})),
		ageCol,
		col("MissingPL", "string", 0, "references a broken or non-existent PriorityLevelConfiguration", fs(func(s *flowcontrolv1.FlowSchema) any {
			for _, c := range s.Status.Conditions {
				if c.Type == flowcontrolv1.FlowSchemaConditionDangling {
					return string(c.Status)
				}
			}
			return "?"
		})),
	}
	pl := typed[*flowcontrolv1.PriorityLevelConfiguration]
	// queuing is one of a limited level's queuing numbers, <none> for another level.
	queuing := func(f func(*flowcontrolv1.QueuingConfiguration) int32) func(kinds.Object, time.Time) any {
		return pl(func(p *flowcontrolv1.PriorityLevelConfiguration) any {
			if p.Spec.Limited == nil || p.Spec.Limited.LimitResponse.Queuing == nil {
				return "<none>"
			}
			return int64(f(p.Spec.Limited.LimitResponse.Queuing))
		})
	}
	queuingDoc := flowcontrolv1.QueuingConfiguration{}.SwaggerDoc()
	columns[kinds.PriorityLevelConfiguration] = []Column{nameCol,
		col("Type", "string", 0, flowcontrolv1.PriorityLevelConfigurationSpec{}.SwaggerDoc()["type"],
			pl(func(p *flowcontrolv1.PriorityLevelConfiguration) any { return string(p.Spec.Type) })),
		col("NominalConcurrencyShares", "string", 0, flowcontrolv1.LimitedPriorityLevelConfiguration{}.SwaggerDoc()["nominalConcurrencyShares"],
			pl(func(p *flowcontrolv1.PriorityLevelConfiguration) any {
				if p.Spec.Limited == nil || p.Spec.Limited.NominalConcurrencyShares == nil {
					return "<none>"
				}
				return int64(*p.Spec.Limited.NominalConcurrencyShares)
			})),
		col("Queues", "string", 0, queuingDoc["queues"], queuing(func(q *flowcontrolv1.QueuingConfiguration) int32 { return q.Queues })),
		col("HandSize", "string", 0, queuingDoc["handSize"], queuing(func(q *flowcontrolv1.QueuingConfiguration) int32 { return q.HandSize })),
		col("QueueLengthLimit", "string", 0, queuingDoc["queueLengthLimit"],
			queuing(func(q *flowcontrolv1.QueuingConfiguration) int32 { return q.QueueLengthLimit })),
		ageCol,
	}
	columns[kinds.APIService] = []Column{nameCol,
		col("Service", "string", 0, "The reference to the service that hosts this API endpoint.", func(o kinds.Object, _ time.Time) any {
			if s := o.(*apiregistrationv1.APIService).Spec.Service; s != nil {
				return s.Namespace + "/" + s.Name
			}
			return "Local"
		}),
		col("Available", "string", 0, "Whether this service is available.", func(o kinds.Object, _ time.Time) any {
			return apiServiceAvailable(o.(*apiregistrationv1.APIService))
		}),
		ageCol,
	}
}

// apiServiceAvailable is the AVAILABLE column: the Available condition's status, with
// its reason when it is not True.
func apiServiceAvailable(s *apiregistrationv1.APIService) string {
	for _, c := range s.Status.Conditions {
		if c.Type != apiregistrationv1.Available {
			continue
		}
		if c.Status != apiregistrationv1.ConditionTrue && c.Reason != "" {
			return fmt.Sprintf("%s (%s)", c.Status, c.Reason)
		}
		return string(c.Status)
	}
	return string(metav1.ConditionUnknown)
}
