package jsonapi

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// A function is one of this package's, with its argument types: s string,
// f float64, b bool.
type function struct {
	sig  string
	call func(a []any) (any, error)
}

// functions is the call surface: every name Call accepts.
var functions = map[string]function{
	"ResolveDir": {"ss", func(a []any) (any, error) {
		return ResolveDir(a[0].(string), a[1].(string))
	}},
	"IsNative": {"ss", func(a []any) (any, error) {
		return IsNative(a[0].(string), a[1].(string)), nil
	}},
	"VerdictJSON": {"ss", func(a []any) (any, error) {
		return VerdictJSON(a[0].(string), a[1].(string))
	}},
	"ListJSON": {"sss", func(a []any) (any, error) {
		return ListJSON(a[0].(string), a[1].(string), a[2].(string))
	}},
	"ColdStartSweepJSON": {"ss", func(a []any) (any, error) {
		return ColdStartSweepJSON(a[0].(string), a[1].(string))
	}},
	"SweepJSON": {"sssfb", func(a []any) (any, error) {
		return SweepJSON(a[0].(string), a[1].(string), a[2].(string), a[3].(float64), a[4].(bool))
	}},
}

// Names returns the functions Call accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(functions))
	for n := range functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// A reply is a result, or an error when Type (the Python exception to raise) is set.
type reply struct {
	Result any
	Error  string
	Type   string
}

// MarshalJSON writes either {"result": ...} or {"error": ..., "type": ...}.
func (r reply) MarshalJSON() ([]byte, error) {
	if r.Type != "" {
		return json.Marshal(map[string]string{"error": r.Error, "type": r.Type})
	}
	return json.Marshal(map[string]any{"result": r.Result})
}

// Call runs the function fn with the JSON array jsonArgs (a float may also be
// a string that strconv.ParseFloat reads, e.g. "nan": JSON has no NaN) and
// returns one JSON reply: {"result": ...}, {"error": message, "type":
// "GoCoreError"} for an error the function returned, or {"error": message,
// "type": "ValueError"} for an unknown function or arguments that do not fit.
func Call(fn, jsonArgs string) string {
	var r reply
	if f, ok := functions[fn]; !ok {
		r = reply{Error: fmt.Sprintf("not a Go core function: %q (one of %v)", fn, Names()), Type: "ValueError"}
	} else if a, err := decode(f.sig, jsonArgs); err != nil {
		r = reply{Error: err.Error(), Type: "ValueError"}
	} else if res, err := f.call(a); err != nil {
		r = reply{Error: err.Error(), Type: "GoCoreError"}
	} else {
		r = reply{Result: res}
	}
	b, err := json.Marshal(r)
	if err != nil { // cannot happen: results are strings and bools
		b, _ = json.Marshal(reply{Error: err.Error(), Type: "RuntimeError"})
	}
	return string(b)
}

// decode turns the JSON array of arguments into values of the types of sig.
func decode(sig, jsonArgs string) ([]any, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(jsonArgs), &raw); err != nil {
		return nil, fmt.Errorf("JSON-ARGS: %v", err)
	}
	if len(raw) != len(sig) {
		return nil, fmt.Errorf("expected a JSON array of %d arguments", len(sig))
	}
	out := make([]any, len(sig))
	for i, r := range raw {
		var err error
		switch sig[i] {
		case 's':
			var s string
			err = json.Unmarshal(r, &s)
			out[i] = s
		case 'b':
			var b bool
			err = json.Unmarshal(r, &b)
			out[i] = b
		case 'f':
			var f float64
			var s string
			if err = json.Unmarshal(r, &f); err != nil && json.Unmarshal(r, &s) == nil {
				f, err = strconv.ParseFloat(s, 64)
			}
			out[i] = f
		}
		if err != nil {
			return nil, fmt.Errorf("argument %d: want %s, got %s", i+1,
				map[byte]string{'s': "a string", 'b': "a boolean", 'f': "a number"}[sig[i]], r)
		}
	}
	return out, nil
}
