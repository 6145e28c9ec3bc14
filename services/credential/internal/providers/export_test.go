package providers

// testNow lets external tests validate fixtures at the fixed test time.
var TestNow = now
