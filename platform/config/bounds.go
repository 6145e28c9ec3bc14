package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Bounds checks the settings struct v's own fields (not the structs it
// embeds or groups: each of those checks its own in its Validate) against
// their `min` and `max` tags, written next to the default they bound:
//
//	Workers  int           `env:"WORKERS" envDefault:"10" min:"1" max:"1000"` // from 1 to 1000
//	Backoff  time.Duration `env:"BACKOFF" envDefault:"1s" min:"0"`            // not negative
//	Timeout  time.Duration `env:"TIMEOUT" envDefault:"5s" min:">0" max:"5m"`  // positive, at most 5m
//
// The error names the variable, as every configuration error does. A tag
// that does not parse is a programming error: Bounds panics.
func Bounds(v any) error {
	rv := reflect.Indirect(reflect.ValueOf(v))
	t := rv.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		lo, hasMin := f.Tag.Lookup("min")
		hi, hasMax := f.Tag.Lookup("max")
		if !hasMin && !hasMax {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		var err error
		if d, ok := rv.Field(i).Interface().(time.Duration); ok {
			err = durationBounds(name, d, lo, hi, hasMax)
		} else {
			err = intBounds(name, rv.Field(i), lo, hi, hasMin, hasMax)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func durationBounds(name string, d time.Duration, lo, hi string, hasMax bool) error {
	switch lo {
	case ">0":
		if d <= 0 {
			return fmt.Errorf("%s: must be a positive duration, got %s", name, d)
		}
	case "0":
		if d < 0 {
			return fmt.Errorf("%s: must not be negative, got %s", name, d)
		}
	case "":
	default:
		panic(fmt.Sprintf("config: %s: a duration's min tag is \"0\" or \">0\", not %q", name, lo))
	}
	if !hasMax {
		return nil
	}
	most, err := time.ParseDuration(hi)
	if err != nil {
		panic(fmt.Sprintf("config: %s: max tag %q is not a duration", name, hi))
	}
	if d > most {
		return fmt.Errorf("%s: must be at most %s, got %s", name, hi, d)
	}
	return nil
}

func intBounds(name string, v reflect.Value, lo, hi string, hasMin, hasMax bool) error {
	var got int64
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		got = v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		got = int64(v.Uint())
	default:
		panic(fmt.Sprintf("config: %s: min/max tag on a %s", name, v.Kind()))
	}
	parse := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("config: %s: bound %q is not an integer", name, s))
		}
		return n
	}
	switch {
	case hasMin && hasMax:
		if least, most := parse(lo), parse(hi); got < least || got > most {
			return fmt.Errorf("%s: must be from %d to %d, got %d", name, least, most, got)
		}
	case hasMin:
		if least := parse(lo); got < least {
			return fmt.Errorf("%s: must be at least %d, got %d", name, least, got)
		}
	default:
		if most := parse(hi); got > most {
			return fmt.Errorf("%s: must be at most %d, got %d", name, most, got)
		}
	}
	return nil
}
