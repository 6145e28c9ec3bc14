// Package jsonbody is the one strict decoder of JSON request bodies every
// service uses. encoding/json alone accepts a body that names a key twice
// (the last one wins, and it matches keys case-insensitively), so
// {"role":"reader","ROLE":"admin"} means something different to a proxy,
// a log reader or a WAF than to the handler. Here a body must be exactly
// one JSON object, with no key twice in any object (compared as
// encoding/json matches them, ignoring case), no field the target does not
// know, and the right JSON type for every field.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/provcred/platform/apierr"
)

// Decode reads body into v. Its errors are *apierr.Error: 400 invalid_json
// for a body that is not one well-formed object (empty, malformed, cut
// short, trailing data, another JSON type, a duplicated key), 422
// validation_failed naming the field for an unknown field or a value of the
// wrong type.
func Decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return mapError(err)
	}
	if dec.More() {
		return apierr.BadRequest("invalid_json", "the body must hold one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		// dec.More is false at a stray closing bracket too.
		return apierr.BadRequest("invalid_json", "the body must hold one JSON object")
	}
	return CheckDuplicateKeys(body)
}

// NotAnObject is the detail of a body of another JSON type than an object.
const NotAnObject = "the body must be one JSON object"

func mapError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.BadRequest("invalid_json", "the JSON body ends too early")
	case errors.Is(err, io.EOF):
		return apierr.BadRequest("invalid_json", "the body is empty; send a JSON object")
	case errors.As(err, &syn):
		return apierr.BadRequest("invalid_json", fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.As(err, &typ) && typ.Field == "":
		// The body itself has the wrong type (an array, a string...).
		return apierr.BadRequest("invalid_json", NotAnObject)
	case errors.As(err, &typ):
		return apierr.Invalid(typ.Field, "must be a JSON "+jsonType(typ.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apierr.Invalid(clip(field), "is not a known field")
	default:
		// Field-level errors from custom types (dates) carry no field name
		// from encoding/json; the message says what was wrong.
		return apierr.New(http.StatusUnprocessableEntity, "validation_failed", err.Error())
	}
}

// CheckDuplicateKeys walks body (already known to be valid JSON) and refuses
// the first object that names a key twice, ignoring case as encoding/json
// does when it fills a struct. The detail names the key and where it is.
func CheckDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object  bool
		keys    map[string]struct{}
		wantKey bool
		path    string
		key     string // the member whose value is being read (objects)
		index   int    // the element being read (arrays)
	}
	var stack []*frame
	// child names the value about to be read inside the innermost frame.
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.object {
			if f.path == "" {
				return f.key
			}
			return f.path + "." + f.key
		}
		return f.path + "[" + strconv.Itoa(f.index) + "]"
	}
	// valueDone moves the innermost frame past the value just read.
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.wantKey = true
		} else {
			f.index++
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return mapError(err)
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			f := stack[n-1]
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone()
				if len(stack) == 0 {
					return nil
				}
				continue
			}
			key, _ := tok.(string)
			folded := strings.ToLower(key)
			if _, dup := f.keys[folded]; dup {
				where := "the body"
				if f.path != "" {
					where = clip(f.path)
				}
				return apierr.BadRequest("invalid_json",
					fmt.Sprintf("duplicate key %q in %s (keys are compared ignoring case)", clip(key), where))
			}
			f.keys[folded] = struct{}{}
			f.key, f.wantKey = key, false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{object: true, keys: map[string]struct{}{}, wantKey: true, path: child()})
		case '[':
			stack = append(stack, &frame{path: child()})
		case ']':
			stack = stack[:len(stack)-1]
			valueDone()
			if len(stack) == 0 {
				return nil
			}
		default:
			valueDone()
			if len(stack) == 0 {
				return nil
			}
		}
	}
}

// clip bounds a client-chosen name echoed in a detail (and so in logs).
func clip(s string) string {
	const maxName = 64
	if len(s) <= maxName {
		return s
	}
	cut := maxName
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// jsonType names a Go type as the JSON a client should send.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Bool:
		return "boolean"
	case reflect.Pointer:
		return jsonType(t.Elem())
	default:
		return "number"
	}
}
