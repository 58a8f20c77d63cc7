package trace

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// The diagram: the components as boxes and each step as a numbered arrow between them,
// annotated with when it happened and how long it took, in the spirit of the "what happens
// when you create a Deployment" map.

type box struct {
	x, y, w, h int
	title, sub string
}

func (b box) cx() int { return b.x + b.w/2 }
func (b box) cy() int { return b.y + b.h/2 }

// edge is where a line leaving the box's centre in direction (dx, dy) crosses its border.
func (b box) edge(dx, dy int) (float64, float64) {
	t := 1e9
	if dx != 0 {
		t = min(t, float64(b.w)/2/math.Abs(float64(dx)))
	}
	if dy != 0 {
		t = min(t, float64(b.h)/2/math.Abs(float64(dy)))
	}
	return float64(b.cx()) + t*float64(dx), float64(b.cy()) + t*float64(dy)
}

var (
	boxCLI = box{20, 40, 150, 60, "skiffctl", "apply -f deploy.yaml"}
	boxAPI = box{330, 30, 240, 80, "API server", "Raft-replicated store"}
	// boxController writes the object of steps 2–3 and boxPods the pods of 4–5: the
	// Deployment and ReplicaSet controllers, or a DaemonSet's or StatefulSet's controller
	// twice (controllerBoxes).
	boxController = box{20, 250, 200, 60, "", "controller-manager"}
	boxPods       = box{20, 390, 200, 60, "", "controller-manager"}
	boxScheduler  = box{680, 160, 200, 60, "Scheduler", "filter, score, bind"}
	boxKubelet    = box{560, 390, 200, 60, "Kubelet", "on the pod's node"}
	boxRuntime    = box{560, 500, 200, 50, "Container runtime", "containerd / sim"}
)

type arrow struct {
	steps    []int
	from, to box
	// label position
	lx, ly int
}

var arrows = []arrow{
	{[]int{1}, boxCLI, boxAPI, 180, 30},
	{[]int{2, 3}, boxAPI, boxController, 40, 180},
	{[]int{4, 5}, boxAPI, boxPods, 240, 330},
	{[]int{6, 7}, boxAPI, boxScheduler, 600, 130},
	{[]int{8}, boxKubelet, boxRuntime, 770, 490},
	{[]int{9}, boxKubelet, boxRuntime, 770, 520},
	{[]int{10}, boxKubelet, boxAPI, 600, 300},
}

// controllerBoxes are the boxes of steps 2–3 and 4–5 for a workload of kind.
func controllerBoxes(kind string) (box, box) {
	c, p := boxController, boxPods
	switch kind {
	case "", "Deployment":
		c.title, p.title = "Deployment controller", "ReplicaSet controller"
	case "Job", "CronJob":
		c.title, p.title = "Job controller", "Job controller"
		c.sub, p.sub = "starts the job", "makes the pods"
	default:
		c.title, p.title = kind+" controller", kind+" controller"
		c.sub, p.sub = "writes a revision", "makes the pods"
	}
	return c, p
}

func sameSteps(a, b []int) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// WriteSVG writes the diagram as a self-contained SVG document.
func WriteSVG(w io.Writer, t *Trace) error {
	var b strings.Builder
	const width, height = 900, 600
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#335"/></marker></defs>` + "\n")
	fmt.Fprintf(&b, `<text x="20" y="20" font-size="14" font-weight="bold">%s</text>`+"\n",
		html.EscapeString(fmt.Sprintf("%s %s/%s — revision %d, %s — pods ready %d/%d",
			strings.ToLower(t.Kind), t.Namespace, t.Name, t.Revision, orDash(t.Child()), t.Pods.Ready, t.Pods.Total)))
	ctrl, pods := controllerBoxes(t.Kind)
	for _, bx := range []box{boxCLI, boxAPI, ctrl, pods, boxScheduler, boxKubelet, boxRuntime} {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="8" fill="#eef3fb" stroke="#335"/>`+"\n", bx.x, bx.y, bx.w, bx.h)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n", bx.cx(), bx.cy()-4, html.EscapeString(bx.title))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#556">%s</text>`+"\n", bx.cx(), bx.cy()+12, html.EscapeString(bx.sub))
	}
	for _, a := range arrows {
		switch a.to {
		case boxController:
			a.to = ctrl
		case boxPods:
			a.to = pods
		}
		var st *Step
		for i := range t.Steps {
			if sameSteps(t.Steps[i].Steps, a.steps) {
				st = &t.Steps[i]
			}
		}
		color, label := "#bbb", "not yet"
		if st != nil && !st.Missing {
			color = "#335"
			label = fmt.Sprintf("+%s (took %s)", human(st.SinceStartMs), human(st.SincePreviousMs))
			if st.Node != "" {
				label += " " + st.Component + "@" + st.Node
			}
		}
		title := ""
		if st != nil {
			title = st.Title
		}
		x1, y1 := a.from.edge(a.to.cx()-a.from.cx(), a.to.cy()-a.from.cy())
		x2, y2 := a.to.edge(a.from.cx()-a.to.cx(), a.from.cy()-a.to.cy())
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2" marker-end="url(#arrow)"/>`+"\n",
			x1, y1, x2, y2, color)
		name := Step{Steps: a.steps}.Label()
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s %s</text>`+"\n", a.lx, a.ly, html.EscapeString(name), html.EscapeString(title))
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#556">%s</text>`+"\n", a.lx, a.ly+14, html.EscapeString(label))
	}
	if p := t.Pods.Slowest; p != nil {
		fmt.Fprintf(&b, `<text x="20" y="%d" fill="#556">%s</text>`+"\n", height-20,
			html.EscapeString(fmt.Sprintf("steps 4–10: the slowest pod, %s on %s; first ready %s, median %s, slowest %s",
				p.Name, orDash(p.Node), readyText(t.Pods.First), readyText(t.Pods.Median), readyText(p))))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteHTML writes a self-contained HTML page with the diagram and the timeline.
func WriteHTML(w io.Writer, t *Trace) error {
	var svg, text strings.Builder
	if err := WriteSVG(&svg, t); err != nil {
		return err
	}
	if err := WriteText(&text, t, 100); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, `<!doctype html>
<html><head><meta charset="utf-8"><title>%s</title>
<style>body{font-family:sans-serif;margin:2em} pre{background:#f6f8fa;padding:1em}</style></head>
<body><h1>%s</h1>
%s
<pre>%s</pre>
</body></html>
`, html.EscapeString("trace of "+strings.ToLower(t.Kind)+" "+t.Name), html.EscapeString(t.Kind+" "+t.Namespace+"/"+t.Name), svg.String(), html.EscapeString(text.String()))
	return err
}
