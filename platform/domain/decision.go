package domain

import "slices"

// Decision is a credentialing run's verdict on a provider, and the
// provider's current decision (the latest run's).
type Decision string

// Decisions.
const (
	Approved    Decision = "approved"
	Denied      Decision = "denied"
	NeedsReview Decision = "needs_review"
	Incomplete  Decision = "incomplete"
)

// Decisions lists every decision in report order.
var Decisions = []Decision{Approved, Denied, NeedsReview, Incomplete}

// Valid reports whether d is one of Decisions.
func (d Decision) Valid() bool { return slices.Contains(Decisions, d) }

// Outcome is one check's result in a run.
type Outcome string

// Check outcomes.
const (
	Pass        Outcome = "pass"
	Fail        Outcome = "fail"
	Review      Outcome = "needs_review"
	Unavailable Outcome = "unavailable"
)

// Outcomes lists every outcome in report order.
var Outcomes = []Outcome{Pass, Fail, Review, Unavailable}

// Valid reports whether o is one of Outcomes.
func (o Outcome) Valid() bool { return slices.Contains(Outcomes, o) }
