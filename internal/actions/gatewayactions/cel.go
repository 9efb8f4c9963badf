package gatewayactions

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// Limits that keep one hostile or careless expression from stalling a
// worker. The cost limit is in cel-go's abstract units (roughly one per
// operation, more for string and list work proportional to their size);
// a realistic rule expression costs well under 1,000.
const (
	defaultCELCostLimit    = 1_000_000
	defaultCELCacheSize    = 512
	celExpressionSizeLimit = 8 << 10 // code points; rule expressions are one-liners
	celInterruptFrequency  = 100     // comprehension iterations between ctx checks
)

// CELError is a CEL expression that did not compile or failed to
// evaluate. The action returns it as permanent: the same expression on
// the same event fails the same way on every retry. Expression names the
// config field's text so the operator can find the rule.
type CELError struct {
	Expression string
	Phase      string // "compile" or "evaluate"
	Err        error
}

func (e *CELError) Error() string {
	return fmt.Sprintf("CEL expression %q failed to %s: %v", e.Expression, e.Phase, e.Err)
}
func (e *CELError) Unwrap() error { return e.Err }

// celEngine compiles and evaluates the actions' CEL expressions. One is
// shared by every action of a plugin instance; it is safe for concurrent
// use. Compiled programs are cached by expression text in a bounded LRU,
// so each rule's expression is parsed once, not once per event.
type celEngine struct {
	env       *cel.Env
	costLimit uint64

	mu      sync.Mutex
	max     int
	lru     *list.List // front = most recently used; values are *celEntry
	entries map[string]*list.Element
}

type celEntry struct {
	text string
	prg  cel.Program
	err  error
}

// newCELEngine builds the environment the Python actions evaluate in:
// the event's five top-level keys are the variables (06-05 shape), and
// substring(s, start[, end]) exists as a function and as a method with
// Python slice semantics.
func newCELEngine(costLimit uint64, cacheSize int) (*celEngine, error) {
	if costLimit == 0 {
		costLimit = defaultCELCostLimit
	}
	if cacheSize <= 0 {
		cacheSize = defaultCELCacheSize
	}
	env, err := cel.NewEnv(
		cel.Variable("type", cel.DynType),
		cel.Variable("third_party_service", cel.DynType),
		cel.Variable("attributed_to", cel.DynType),
		cel.Variable("metadata", cel.DynType),
		cel.Variable("payload", cel.DynType),
		cel.ParserExpressionSizeLimit(celExpressionSizeLimit),
		cel.Function("substring",
			cel.Overload("substring_string_int", []*cel.Type{cel.StringType, cel.IntType}, cel.StringType,
				cel.BinaryBinding(celSubstring2)),
			cel.Overload("substring_string_int_int", []*cel.Type{cel.StringType, cel.IntType, cel.IntType}, cel.StringType,
				cel.FunctionBinding(celSubstring3)),
			cel.MemberOverload("string_substring_int", []*cel.Type{cel.StringType, cel.IntType}, cel.StringType,
				cel.BinaryBinding(celSubstring2)),
			cel.MemberOverload("string_substring_int_int", []*cel.Type{cel.StringType, cel.IntType, cel.IntType}, cel.StringType,
				cel.FunctionBinding(celSubstring3)),
		),
	)
	if err != nil {
		return nil, err
	}
	return &celEngine{env: env, costLimit: costLimit, max: cacheSize,
		lru: list.New(), entries: map[string]*list.Element{}}, nil
}

// program returns the compiled program for text, compiling it on first
// use. A compile error is cached too, so a broken rule costs one parse.
func (e *celEngine) program(text string) (cel.Program, error) {
	e.mu.Lock()
	if el, ok := e.entries[text]; ok {
		e.lru.MoveToFront(el)
		ent := el.Value.(*celEntry)
		e.mu.Unlock()
		return ent.prg, ent.err
	}
	e.mu.Unlock()

	// Compile outside the lock: parsing is the slow part and programs
	// are immutable, so two goroutines racing on a new text only waste
	// one parse.
	prg, err := e.compile(text)

	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.entries[text]; ok {
		e.lru.MoveToFront(el)
		ent := el.Value.(*celEntry)
		return ent.prg, ent.err
	}
	e.entries[text] = e.lru.PushFront(&celEntry{text: text, prg: prg, err: err})
	for e.lru.Len() > e.max {
		oldest := e.lru.Back()
		e.lru.Remove(oldest)
		delete(e.entries, oldest.Value.(*celEntry).text)
	}
	return prg, err
}

func (e *celEngine) compile(text string) (cel.Program, error) {
	// Parse without type-checking: celpy (the Python original) is
	// dynamically typed, so "cond ? payload.ref : null" must be legal.
	ast, iss := e.env.Parse(text)
	if iss.Err() != nil {
		return nil, &CELError{Expression: text, Phase: "compile", Err: iss.Err()}
	}
	prg, err := e.env.Program(ast,
		cel.CostLimit(e.costLimit),
		cel.InterruptCheckFrequency(celInterruptFrequency),
		// No cel.OptOptimize: its constant folding evaluates literal-only
		// subexpressions at compile time with no cost limit, so a rule
		// like [..].all(a, [..].all(b, ...)) would stall the compile.
	)
	if err != nil {
		return nil, &CELError{Expression: text, Phase: "compile", Err: err}
	}
	return prg, nil
}

// cacheLen reports how many programs are cached (tests).
func (e *celEngine) cacheLen() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lru.Len()
}

// Eval evaluates text against vars (from celVars) and renders the result
// as Python's str() does. ok is false when the result is null: the
// caller skips with a warning, as the Python actions do since d61cc673.
// A cancelled or expired ctx is returned as ctx.Err() (the worker's
// timeout class), every other failure as *CELError.
func (e *celEngine) Eval(ctx context.Context, text string, vars map[string]any) (string, bool, error) {
	prg, err := e.program(text)
	if err != nil {
		return "", false, err
	}
	out, _, err := prg.ContextEval(ctx, vars)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", false, fmt.Errorf("CEL expression %q interrupted: %w", text, ctxErr)
		}
		return "", false, &CELError{Expression: text, Phase: "evaluate", Err: err}
	}
	if out == nil || out.Type() == types.NullType {
		return "", false, nil
	}
	return celStr(out), true, nil
}

// celStr renders a CEL value as celpy's str() does for scalars
// ("True", "1.0", "1s"); lists and maps render as JSON.
func celStr(v ref.Val) string {
	switch x := v.(type) {
	case types.String:
		return string(x)
	case types.Bool:
		return pyStr(bool(x))
	case types.Int:
		return strconv.FormatInt(int64(x), 10)
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10)
	case types.Double:
		return pyFloat(float64(x), false)
	case types.Bytes:
		return fmt.Sprintf("b%q", []byte(x))
	case types.Duration, types.Timestamp:
		// CEL's own string conversion: "1s", RFC 3339, as celpy prints.
		if s, ok := x.ConvertToType(types.StringType).(types.String); ok {
			return string(s)
		}
	}
	if b, err := json.Marshal(celNative(v)); err == nil {
		return string(b)
	}
	return fmt.Sprint(v.Value())
}

// celNative converts a CEL value to plain Go values for JSON rendering.
func celNative(v ref.Val) any {
	switch x := v.(type) {
	case traits.Lister:
		var out []any
		for it := x.Iterator(); it.HasNext() == types.True; {
			out = append(out, celNative(it.Next()))
		}
		return out
	case traits.Mapper:
		out := map[string]any{}
		for it := x.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			out[celStr(k)] = celNative(x.Get(k))
		}
		return out
	case types.Null:
		return nil
	}
	return v.Value()
}

// celVars turns the event document into CEL variables. Integral JSON
// numbers become ints (Python's json gives int for them, and
// substring(s, 0, payload.n) needs an int); json.Number is split the same
// way by its text.
func celVars(doc map[string]any) map[string]any {
	return celValue(doc).(map[string]any)
}

func celValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = celValue(val)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = val
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = celValue(val)
		}
		return out
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return string(x)
	default:
		return v
	}
}

// celSubstring2 is substring(s, start): Python's s[start:].
func celSubstring2(s, start ref.Val) ref.Val {
	str, ok := s.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(s)
	}
	i, ok := start.(types.Int)
	if !ok {
		return types.MaybeNoSuchOverloadErr(start)
	}
	runes := []rune(string(str))
	lo, hi := pySlice(len(runes), int64(i), int64(len(runes)))
	return types.String(string(runes[lo:hi]))
}

// celSubstring3 is substring(s, start, end): Python's s[start:end].
func celSubstring3(args ...ref.Val) ref.Val {
	if len(args) != 3 {
		return types.NewErr("substring takes 2 or 3 arguments")
	}
	str, ok := args[0].(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(args[0])
	}
	i, ok := args[1].(types.Int)
	if !ok {
		return types.MaybeNoSuchOverloadErr(args[1])
	}
	j, ok := args[2].(types.Int)
	if !ok {
		return types.MaybeNoSuchOverloadErr(args[2])
	}
	runes := []rune(string(str))
	lo, hi := pySlice(len(runes), int64(i), int64(j))
	return types.String(string(runes[lo:hi]))
}

// pySlice clamps [start:end] on a sequence of length n as Python does:
// negative indexes count from the end, out-of-range indexes clamp, and an
// empty range never fails.
func pySlice(n int, start, end int64) (int, int) {
	clamp := func(i int64) int {
		if i < 0 {
			i += int64(n)
			if i < 0 {
				return 0
			}
		}
		if i > int64(n) {
			return n
		}
		return int(i)
	}
	lo, hi := clamp(start), clamp(end)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// isCELError reports whether err came from compiling or evaluating CEL.
func isCELError(err error) bool {
	var ce *CELError
	return errors.As(err, &ce)
}
