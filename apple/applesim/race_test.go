//go:build race

package applesim

const raceEnabled = true
