package tools

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"
)

// isPII reports whether a JSON key holds personal data that the model does
// not need to answer credentialing questions: dates of birth, SSNs, DEA
// numbers, home addresses (exclusion list rows carry them), phone numbers
// and e-mail. Keys are compared lower-cased without punctuation, so
// "date_of_birth", "DOB" and "Address 1" all match.
func isPII(key string) bool {
	var b strings.Builder
	for _, r := range key {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	k := b.String()
	switch k {
	case "dob", "ssn", "dea", "deanumber", "zip", "zipcode", "postalcode", "email", "fax", "street":
		return true
	}
	return strings.Contains(k, "birth") || strings.Contains(k, "socialsecurity") || strings.HasPrefix(k, "address") ||
		strings.Contains(k, "phone") || strings.HasPrefix(k, "ssn")
}

// redact removes PII keys from a decoded JSON value, in place.
func redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if isPII(k) {
				delete(t, k)
				continue
			}
			t[k] = redact(x)
		}
	case []any:
		for i, x := range t {
			t[i] = redact(x)
		}
	}
	return v
}

// fit marshals v within max bytes: while it is too large, the longest list
// in it is halved, then long strings are cut. truncated says whether
// anything was dropped; ok is false when even that was not enough.
func fit(v any, max int) (out []byte, truncated, ok bool) {
	for range 64 {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, truncated, false
		}
		if len(b) <= max {
			return b, truncated, true
		}
		if halveLongestList(v) || cutLongStrings(v, 200) {
			truncated = true
			continue
		}
		return nil, truncated, false
	}
	return nil, truncated, false
}

// halveLongestList cuts the longest list inside v (not v itself: tools
// answer objects) to its first half; false when no list has two items.
func halveLongestList(v any) bool {
	var best []any
	var set func([]any)
	var walk func(x any)
	consider := func(l []any, replace func([]any)) {
		if len(l) > 1 && len(l) > len(best) {
			best, set = l, replace
		}
		for _, y := range l {
			walk(y)
		}
	}
	walk = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			for k, y := range t {
				if l, isList := y.([]any); isList {
					consider(l, func(n []any) { t[k] = n })
				} else {
					walk(y)
				}
			}
		case []any:
			for i, y := range t {
				if l, isList := y.([]any); isList {
					consider(l, func(n []any) { t[i] = n })
				} else {
					walk(y)
				}
			}
		}
	}
	walk(v)
	if set == nil {
		return false
	}
	set(best[:len(best)/2])
	return true
}

func cutLongStrings(v any, n int) bool {
	cut := false
	var walk func(x any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case string:
			if utf8.RuneCountInString(t) > n {
				cut = true
				return string([]rune(t)[:n]) + "…"
			}
		case map[string]any:
			for k, y := range t {
				t[k] = walk(y)
			}
		case []any:
			for i, y := range t {
				t[i] = walk(y)
			}
		}
		return x
	}
	walk(v)
	return cut
}
