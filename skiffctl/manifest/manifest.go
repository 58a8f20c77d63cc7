// Package manifest reads and writes Kubernetes manifests: YAML or JSON documents, several
// to a file separated by "---", each with apiVersion and kind. Each document decodes
// strictly into its Kubernetes type (kinds.DecodeManifest), so an unknown or mistyped
// field is an error that names its path (spec.template.spec.containers[0].foo), as
// kubectl's strict decoding reports it; this package adds the file, the document number
// and the object to the message. Encoding writes Kubernetes' JSON, as kubectl -o json and
// -o yaml print it.
package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/kinds"
)

// Document is one decoded manifest document.
type Document struct {
	Object kinds.Object
	// JSON is the document as the user wrote it, converted to JSON: what apply applies.
	JSON []byte
	// Source names the file it came from ("-" for standard input).
	Source string
	// Index is the document's position in its source, from 1.
	Index int
}

// Fail is an error about the document's object (creating it, applying it), naming the
// file, the document and the object.
func (d Document) Fail(err error) *Error {
	return &Error{Source: d.Source, Index: d.Index, What: fmt.Sprintf("%s %q", kinds.Of(d.Object).Kind, d.Object.GetName()), Err: err}
}

// Error is a decoding error in one document.
type Error struct {
	Source string // file name, or "-" for stdin
	Index  int    // document number, from 1
	What   string // `Deployment "web"` when known
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Index > 0 {
		fmt.Fprintf(&b, ": document %d", e.Index)
	}
	if e.What != "" {
		fmt.Fprintf(&b, " (%s)", e.What)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// MaxBytes is the most a file (or the input) of manifests may hold. It is read whole,
// and decoding takes several times its size in memory; one object is at most the API
// server's request limit (2 MiB by default) anyway.
const MaxBytes = 32 << 20

// Decode reads every document of r. source names r in errors. Input beyond MaxBytes is
// refused without being read.
func Decode(r io.Reader, source string) ([]Document, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", source, err)
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("%s: more than %d MiB of manifests: split it into several files (-f DIR reads a directory of them)", source, MaxBytes>>20)
	}
	return DecodeBytes(data, source)
}

// DecodeBytes reads every document of data. Empty documents (only comments or blank
// lines) are skipped. A document that does not decode does not stop the others: the
// error (errors.Join of an *Error per such document) comes with every document that
// decoded.
func DecodeBytes(data []byte, source string) ([]Document, error) {
	var out []Document
	var errs []error
	for i, doc := range splitDocuments(data) {
		if isBlank(doc) {
			continue
		}
		js, obj, err := decodeDocument(doc)
		if err != nil {
			e := &Error{Source: source, Index: i + 1, Err: err}
			var me *kinds.ManifestError
			if errors.As(err, &me) {
				e.What = me.What
			}
			errs = append(errs, e)
			continue
		}
		out = append(out, Document{Object: obj, JSON: js, Source: source, Index: i + 1})
	}
	return out, errors.Join(errs...)
}

func decodeDocument(doc []byte) ([]byte, kinds.Object, error) {
	obj, err := kinds.DecodeManifest(doc)
	if err != nil {
		return nil, nil, err
	}
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, nil, err
	}
	return bytes.TrimSpace(js), obj, nil
}

// splitDocuments splits YAML at lines that start with "---". A "---" on the first
// line that is not blank or a comment starts the first document (YAML's explicit
// document start), not a second one.
func splitDocuments(data []byte) [][]byte {
	docs := splitAtMarkers(data)
	if len(docs) > 1 && isBlank(docs[0]) {
		docs = docs[1:]
	}
	return docs
}

func splitAtMarkers(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), len(data)+1)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("---")) {
			rest := strings.TrimSpace(string(line[3:]))
			if rest == "" || strings.HasPrefix(rest, "#") {
				docs = append(docs, append([]byte(nil), cur.Bytes()...))
				cur.Reset()
				continue
			}
		}
		cur.Write(line)
		cur.WriteByte('\n')
	}
	return append(docs, cur.Bytes())
}

func isBlank(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

// SetNamespace places the document's object in namespace ns ("" for none), in its object
// and in its JSON, as kubectl sets the namespace of what it applies.
func (d *Document) SetNamespace(ns string) error {
	d.Object.SetNamespace(ns)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(d.JSON))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return d.Fail(err)
	}
	meta, _ := m["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["metadata"] = meta
	}
	if cur, _ := meta["namespace"].(string); cur == ns {
		return nil
	}
	if ns == "" {
		delete(meta, "namespace")
	} else {
		meta["namespace"] = ns
	}
	js, err := json.Marshal(m)
	if err != nil {
		return d.Fail(err)
	}
	d.JSON = js
	return nil
}
