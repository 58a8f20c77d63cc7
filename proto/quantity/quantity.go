// Package quantity parses Kubernetes resource quantities: "250m" and "0.5" cpu, "128Mi"
// and "1G" memory, "110" pods. A quantity is a decimal number with an optional suffix:
// binary (Ki Mi Gi Ti Pi Ei), decimal SI (n u m k M G T P E) or an exponent (e3, E-2).
package quantity

import (
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Quantity is an exact parsed quantity.
type Quantity struct {
	r    *big.Rat
	text string
}

var suffixes = map[string]*big.Rat{
	"n": big.NewRat(1, 1_000_000_000), "u": big.NewRat(1, 1_000_000), "m": big.NewRat(1, 1000), "": big.NewRat(1, 1),
	"k": big.NewRat(1_000, 1), "M": big.NewRat(1_000_000, 1), "G": big.NewRat(1_000_000_000, 1),
	"T": new(big.Rat).SetInt(pow(10, 12)), "P": new(big.Rat).SetInt(pow(10, 15)), "E": new(big.Rat).SetInt(pow(10, 18)),
	"Ki": new(big.Rat).SetInt(pow(2, 10)), "Mi": new(big.Rat).SetInt(pow(2, 20)), "Gi": new(big.Rat).SetInt(pow(2, 30)),
	"Ti": new(big.Rat).SetInt(pow(2, 40)), "Pi": new(big.Rat).SetInt(pow(2, 50)), "Ei": new(big.Rat).SetInt(pow(2, 60)),
}

func pow(base, exp int64) *big.Int { return new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil) }

// Parse reads a quantity. Negative quantities parse; callers that need non-negative
// values check Sign.
func Parse(s string) (Quantity, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return Quantity{}, fmt.Errorf("quantity %q: empty", s)
	}
	// Split the number from the suffix: the number is [+-]digits[.digits].
	i := 0
	if text[0] == '+' || text[0] == '-' {
		i++
	}
	digits := 0
	for i < len(text) && (text[i] >= '0' && text[i] <= '9' || text[i] == '.') {
		if text[i] != '.' {
			digits++
		}
		i++
	}
	num, suffix := text[:i], text[i:]
	if digits == 0 || strings.Count(num, ".") > 1 {
		return Quantity{}, fmt.Errorf("quantity %q: must be a number with an optional suffix (e.g. 250m, 0.5, 128Mi, 1G)", s)
	}
	r, ok := new(big.Rat).SetString(strings.TrimPrefix(num, "+"))
	if !ok {
		return Quantity{}, fmt.Errorf("quantity %q: bad number", s)
	}
	if mult, ok := suffixes[suffix]; ok {
		r.Mul(r, mult)
	} else if len(suffix) > 1 && (suffix[0] == 'e' || suffix[0] == 'E') {
		var exp int64
		if _, err := fmt.Sscanf(suffix[1:], "%d", &exp); err != nil || fmt.Sprint(exp) != strings.TrimPrefix(suffix[1:], "+") || exp > 30 || exp < -30 {
			return Quantity{}, fmt.Errorf("quantity %q: bad exponent %q", s, suffix)
		}
		if exp >= 0 {
			r.Mul(r, new(big.Rat).SetInt(pow(10, exp)))
		} else {
			r.Quo(r, new(big.Rat).SetInt(pow(10, -exp)))
		}
	} else {
		return Quantity{}, fmt.Errorf("quantity %q: unknown suffix %q (use one of m, k, M, G, T, Ki, Mi, Gi, Ti)", s, suffix)
	}
	return Quantity{r: r, text: text}, nil
}

// MustParse is Parse for constants.
func MustParse(s string) Quantity {
	q, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return q
}

// Sign is -1, 0 or +1.
func (q Quantity) Sign() int {
	if q.r == nil {
		return 0
	}
	return q.r.Sign()
}

// Value is the quantity rounded up to an integer, clamped to int64.
func (q Quantity) Value() int64 { return ceil(q.r, 1) }

// MilliValue is the quantity in thousandths, rounded up, clamped to int64 (cpu in millicores).
func (q Quantity) MilliValue() int64 { return ceil(q.r, 1000) }

func ceil(r *big.Rat, scale int64) int64 {
	if r == nil {
		return 0
	}
	x := new(big.Rat).Mul(r, big.NewRat(scale, 1))
	n, d := x.Num(), x.Denom()
	q, m := new(big.Int).QuoRem(n, d, new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		if q.Sign() > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return q.Int64()
}

// String is the text the quantity was parsed from.
func (q Quantity) String() string { return q.text }

// Cmp compares q and o.
func (q Quantity) Cmp(o Quantity) int {
	a, b := q.r, o.r
	if a == nil {
		a = new(big.Rat)
	}
	if b == nil {
		b = new(big.Rat)
	}
	return a.Cmp(b)
}

// FormatMilli renders millicores the way Kubernetes prints cpu: "250m", or "2" when whole.
func FormatMilli(m int64) string {
	if m%1000 == 0 {
		return fmt.Sprint(m / 1000)
	}
	return fmt.Sprintf("%dm", m)
}

// FormatBytes renders a byte count with the largest exact binary suffix: "128Mi", "1Gi", "1000".
func FormatBytes(b int64) string {
	for _, s := range []struct {
		suffix string
		shift  uint
	}{{"Ei", 60}, {"Pi", 50}, {"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}} {
		if b != 0 && b%(1<<s.shift) == 0 {
			return fmt.Sprintf("%d%s", b>>s.shift, s.suffix)
		}
	}
	return fmt.Sprint(b)
}
