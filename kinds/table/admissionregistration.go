package table

import (
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of webhook configurations, as Kubernetes' printers define them: the
// number of webhooks.
func init() {
	const doc = "Webhooks indicates the number of webhooks in the configuration"
	columns[kinds.MutatingWebhookConfiguration] = []Column{nameCol,
		col("Webhooks", "integer", 0, doc, func(o kinds.Object, _ time.Time) any {
			return int64(len(o.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks))
		}),
		ageCol,
	}
	columns[kinds.ValidatingWebhookConfiguration] = []Column{nameCol,
		col("Webhooks", "integer", 0, doc, func(o kinds.Object, _ time.Time) any {
			return int64(len(o.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks))
		}),
		ageCol,
	}
}
