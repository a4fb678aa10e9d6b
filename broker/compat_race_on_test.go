//go:build race

package broker_test

// compatRace is true in -race builds, where the compat round trips use the
// short record counts to stay within CI's time budget.
const compatRace = true
