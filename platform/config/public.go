package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Public is the view of a settings struct shown in /health/concurrency,
// derived from the struct itself so it cannot drift from it: every field
// with an env tag, keyed by its variable in lower case (embedded structs
// flattened), durations as text, lists as their comma-separated form. A
// field tagged secret:"true" (keys, passwords, URLs that may carry them)
// is left out; a service may add derived facts (e.g. how many keys).
func Public(cfg any) map[string]any {
	out := map[string]any{}
	public(reflect.Indirect(reflect.ValueOf(cfg)), out)
	return out
}

func public(v reflect.Value, out map[string]any) {
	if v.Kind() != reflect.Struct {
		return
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" && f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			public(v.Field(i), out) // an embedded or grouped settings struct
			continue
		}
		if name == "" || name == "-" || f.Tag.Get("secret") == "true" {
			continue
		}
		out[strings.ToLower(name)] = publicValue(v.Field(i))
	}
}

func publicValue(v reflect.Value) any {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(publicValue(v.Index(i)))
		}
		return strings.Join(parts, ",")
	}
	if v.Kind() == reflect.Map {
		return v.Len() // a parsed table: how many entries, not their content
	}
	return v.Interface()
}
