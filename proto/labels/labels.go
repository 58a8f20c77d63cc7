// Package labels parses and evaluates Kubernetes label selectors ("app=web,tier in (a,b),
// !canary"), converts the LabelSelector message into one, and parses the equality-only field
// selectors ("spec.nodeName=w1"). It validates label keys and values with Kubernetes'
// rules, so the API server, the clients and the store agree on what a selector means.
package labels

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

// Operator is a requirement's relation.
type Operator string

const (
	Equals       Operator = "="
	NotEquals    Operator = "!="
	In           Operator = "in"
	NotIn        Operator = "notin"
	Exists       Operator = "exists"
	DoesNotExist Operator = "!"
)

// Requirement is one clause of a selector.
type Requirement struct {
	Key      string
	Operator Operator
	Values   []string // sorted
}

// Matches reports whether labels satisfy the requirement.
func (r Requirement) Matches(labels map[string]string) bool {
	v, has := labels[r.Key]
	switch r.Operator {
	case Equals, In:
		return has && contains(r.Values, v)
	case NotEquals, NotIn:
		return !has || !contains(r.Values, v)
	case Exists:
		return has
	case DoesNotExist:
		return !has
	}
	return false
}

func contains(sorted []string, v string) bool {
	i := sort.SearchStrings(sorted, v)
	return i < len(sorted) && sorted[i] == v
}

func (r Requirement) String() string {
	switch r.Operator {
	case Exists:
		return r.Key
	case DoesNotExist:
		return "!" + r.Key
	case Equals, NotEquals:
		return r.Key + string(r.Operator) + r.Values[0]
	default:
		return r.Key + " " + string(r.Operator) + " (" + strings.Join(r.Values, ",") + ")"
	}
}

// Selector is a conjunction of requirements. The zero Selector matches everything.
type Selector struct {
	reqs []Requirement
	none bool // matches nothing (a nil LabelSelector message in some contexts)
}

// Everything matches every label set.
func Everything() Selector { return Selector{} }

// Nothing matches no label set.
func Nothing() Selector { return Selector{none: true} }

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	if s.none {
		return false
	}
	for _, r := range s.reqs {
		if !r.Matches(labels) {
			return false
		}
	}
	return true
}

// Empty reports whether the selector matches everything.
func (s Selector) Empty() bool { return !s.none && len(s.reqs) == 0 }

// Requirements returns the clauses, sorted by key.
func (s Selector) Requirements() []Requirement { return s.reqs }

// String renders the selector in the syntax Parse reads.
func (s Selector) String() string {
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// SelectorFromSet selects exactly the labels of set (all must be equal).
func SelectorFromSet(set map[string]string) Selector {
	var s Selector
	for k, v := range set {
		s.reqs = append(s.reqs, Requirement{Key: k, Operator: Equals, Values: []string{v}})
	}
	s.sort()
	return s
}

func (s *Selector) sort() {
	sort.SliceStable(s.reqs, func(i, j int) bool { return s.reqs[i].Key < s.reqs[j].Key })
}

// FromLabelSelector converts the API's LabelSelector. A nil selector matches nothing and an
// empty one everything, as in Kubernetes' metav1.LabelSelectorAsSelector. path names the
// field in errors ("spec.selector").
func FromLabelSelector(ls *corev1.LabelSelector, path string) (Selector, error) {
	if ls == nil {
		return Nothing(), nil
	}
	var s Selector
	for k, v := range ls.GetMatchLabels() {
		if err := ValidateKey(k); err != nil {
			return Selector{}, fmt.Errorf("%s.matchLabels: %w", path, err)
		}
		if err := ValidateValue(v); err != nil {
			return Selector{}, fmt.Errorf("%s.matchLabels[%s]: %w", path, k, err)
		}
		s.reqs = append(s.reqs, Requirement{Key: k, Operator: Equals, Values: []string{v}})
	}
	for i, e := range ls.GetMatchExpressions() {
		p := fmt.Sprintf("%s.matchExpressions[%d]", path, i)
		if err := ValidateKey(e.GetKey()); err != nil {
			return Selector{}, fmt.Errorf("%s.key: %w", p, err)
		}
		r := Requirement{Key: e.GetKey()}
		switch e.GetOperator() {
		case "In":
			r.Operator = In
		case "NotIn":
			r.Operator = NotIn
		case "Exists":
			r.Operator = Exists
		case "DoesNotExist":
			r.Operator = DoesNotExist
		default:
			return Selector{}, fmt.Errorf("%s.operator: %q is not one of In, NotIn, Exists, DoesNotExist", p, e.GetOperator())
		}
		switch r.Operator {
		case In, NotIn:
			if len(e.GetValues()) == 0 {
				return Selector{}, fmt.Errorf("%s.values: must be non-empty for %s", p, e.GetOperator())
			}
		default:
			if len(e.GetValues()) != 0 {
				return Selector{}, fmt.Errorf("%s.values: must be empty for %s", p, e.GetOperator())
			}
		}
		for j, v := range e.GetValues() {
			if err := ValidateValue(v); err != nil {
				return Selector{}, fmt.Errorf("%s.values[%d]: %w", p, j, err)
			}
		}
		r.Values = sortedCopy(e.GetValues())
		s.reqs = append(s.reqs, r)
	}
	s.sort()
	return s, nil
}

func sortedCopy(v []string) []string {
	out := append([]string(nil), v...)
	sort.Strings(out)
	return out
}

// Parse reads a selector in Kubernetes' syntax. The empty string selects everything.
func Parse(text string) (Selector, error) {
	p := parser{src: text}
	var s Selector
	for {
		p.skipSpace()
		if p.eof() {
			if len(s.reqs) > 0 && p.trailingComma {
				return Selector{}, p.errorf("expected a requirement after ','")
			}
			break
		}
		r, err := p.requirement()
		if err != nil {
			return Selector{}, err
		}
		s.reqs = append(s.reqs, r)
		p.skipSpace()
		p.trailingComma = false
		if p.eof() {
			break
		}
		if p.src[p.pos] != ',' {
			return Selector{}, p.errorf("expected ',' between requirements")
		}
		p.pos++
		p.trailingComma = true
	}
	s.sort()
	return s, nil
}

type parser struct {
	src           string
	pos           int
	trailingComma bool
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) skipSpace() {
	for !p.eof() && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("label selector %q at %d: %s", p.src, p.pos, fmt.Sprintf(format, args...))
}

// word reads a key or value: everything up to a space, operator character, comma or paren.
func (p *parser) word() string {
	start := p.pos
	for !p.eof() && !strings.ContainsRune(" \t,=!()", rune(p.src[p.pos])) {
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *parser) requirement() (Requirement, error) {
	if p.src[p.pos] == '!' {
		p.pos++
		p.skipSpace()
		key := p.word()
		if err := ValidateKey(key); err != nil {
			return Requirement{}, p.errorf("%v", err)
		}
		return Requirement{Key: key, Operator: DoesNotExist}, nil
	}
	key := p.word()
	if err := ValidateKey(key); err != nil {
		return Requirement{}, p.errorf("%v", err)
	}
	p.skipSpace()
	if p.eof() || p.src[p.pos] == ',' {
		return Requirement{Key: key, Operator: Exists}, nil
	}
	switch {
	case strings.HasPrefix(p.src[p.pos:], "=="):
		p.pos += 2
		return p.single(key, Equals)
	case strings.HasPrefix(p.src[p.pos:], "!="):
		p.pos += 2
		return p.single(key, NotEquals)
	case p.src[p.pos] == '=':
		p.pos++
		return p.single(key, Equals)
	}
	op := p.word()
	switch op {
	case "in":
		return p.set(key, In)
	case "notin":
		return p.set(key, NotIn)
	}
	return Requirement{}, p.errorf("expected =, ==, !=, in or notin after %q", key)
}

func (p *parser) single(key string, op Operator) (Requirement, error) {
	p.skipSpace()
	v := p.word()
	if err := ValidateValue(v); err != nil {
		return Requirement{}, p.errorf("%v", err)
	}
	return Requirement{Key: key, Operator: op, Values: []string{v}}, nil
}

func (p *parser) set(key string, op Operator) (Requirement, error) {
	p.skipSpace()
	if p.eof() || p.src[p.pos] != '(' {
		return Requirement{}, p.errorf("expected '(' after %s", op)
	}
	p.pos++
	p.skipSpace()
	if !p.eof() && p.src[p.pos] == ')' {
		return Requirement{}, p.errorf("the value set of %s must not be empty", op)
	}
	var values []string
	for {
		p.skipSpace()
		v := p.word()
		if err := ValidateValue(v); err != nil {
			return Requirement{}, p.errorf("%v", err)
		}
		values = append(values, v)
		p.skipSpace()
		if p.eof() {
			return Requirement{}, p.errorf("expected ')'")
		}
		if p.src[p.pos] == ')' {
			p.pos++
			break
		}
		if p.src[p.pos] != ',' {
			return Requirement{}, p.errorf("expected ',' or ')' in value set")
		}
		p.pos++
	}
	return Requirement{Key: key, Operator: op, Values: sortedCopy(values)}, nil
}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	prefixRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// ValidateKey checks a label key: an optional DNS-subdomain prefix and '/', then a name of
// at most 63 characters of alphanumerics, '-', '_', '.', starting and ending alphanumeric.
func ValidateKey(key string) error {
	name := key
	if i := strings.IndexByte(key, '/'); i >= 0 {
		prefix := key[:i]
		name = key[i+1:]
		if len(prefix) == 0 || len(prefix) > 253 || !prefixRE.MatchString(prefix) {
			return fmt.Errorf("label key %q: prefix must be a DNS subdomain", key)
		}
	}
	if len(name) == 0 {
		return fmt.Errorf("label key %q: name part must not be empty", key)
	}
	if len(name) > 63 {
		return fmt.Errorf("label key %q: name part must be at most 63 characters", key)
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("label key %q: name part must consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric", key)
	}
	return nil
}

// ValidateValue checks a label value: empty, or at most 63 characters of alphanumerics,
// '-', '_', '.', starting and ending alphanumeric.
func ValidateValue(v string) error {
	if v == "" {
		return nil
	}
	if len(v) > 63 {
		return fmt.Errorf("label value %q: must be at most 63 characters", v)
	}
	if !nameRE.MatchString(v) {
		return fmt.Errorf("label value %q: must consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric", v)
	}
	return nil
}
