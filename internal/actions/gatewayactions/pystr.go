package gatewayactions

import (
	"encoding/json"
	"math"
	"strconv"
)

// pyStr renders a decoded JSON value the way the Python actions' str()
// does, so titles, environments, notes and statuses read from the event
// are the same strings imbi-gateway sent. Integral numbers print without a
// fraction (JSON integers decode to float64 in Go but to int in Python).
// Arrays and objects render as JSON, not as Python repr: no rule selects a
// container into a string field on purpose, and JSON is at least
// readable by the API.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		return pyFloat(x, true)
	case json.Number:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "<unrenderable>"
		}
		return string(b)
	}
}

// pyFloat renders a float as Python's repr does for the common cases
// ("1.5", "1e+20", "0.30000000000000004"). integral says an integral
// value is a JSON integer and prints without ".0".
func pyFloat(f float64, integral bool) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	if integral && f == math.Trunc(f) && math.Abs(f) < 1e16 {
		return strconv.FormatInt(int64(f), 10)
	}
	exp := 0
	if f != 0 {
		exp = int(math.Floor(math.Log10(math.Abs(f))))
	}
	// Python's repr switches to exponent notation below 1e-4 and from
	// 1e16 on; in between it is plain decimal with at least one fraction
	// digit.
	if f != 0 && (exp < -4 || exp >= 16) {
		// Go pads the exponent to two digits, as Python does.
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if f == math.Trunc(f) {
		s += ".0"
	}
	return s
}
