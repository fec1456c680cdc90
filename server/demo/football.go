package demo

import (
	"fmt"
	"math/rand/v2"
)

// ScoreEvent is one event of the simulated match, e.g.
// {"match":"Rovers vs United","home_team":"Rovers","away_team":"United",
// "home":1,"away":0,"minute":34,"event":"goal","team":"home","text":"..."}.
type ScoreEvent struct {
	Match    string `json:"match"`
	HomeTeam string `json:"home_team"`
	AwayTeam string `json:"away_team"`
	Home     int    `json:"home"` // home goals
	Away     int    `json:"away"` // away goals
	Minute   int    `json:"minute"`
	Event    string `json:"event"`          // kickoff, shot, save, corner, foul, yellow_card, goal, half_time, second_half, full_time
	Team     string `json:"team,omitempty"` // "home" or "away" for events by one side
	Text     string `json:"text"`
}

var teams = [...]string{
	"Northbridge Rovers", "Eastport United", "Kingsmoor Athletic", "Harbour City",
	"Redvale Wanderers", "Ashford Town", "Millbrook Rangers", "Southgate Albion",
}

type phase uint8

const (
	beforeKickoff phase = iota
	firstHalf
	halfTime
	secondHalf
	fullTime
)

type playEvent struct {
	name, label string
	weight      int // relative chance
}

// playEvents are the in-play events a minute of football can bring.
var playEvents = [...]playEvent{
	{"shot", "Shot", 34}, {"corner", "Corner", 20}, {"foul", "Foul", 20},
	{"save", "Save", 11}, {"yellow_card", "Yellow card", 7}, {"goal", "Goal", 8},
}

// match simulates one football match after another.
type match struct {
	rng        *rand.Rand
	home, away string
	homeGoals  int
	awayGoals  int
	minute     int
	phase      phase
}

func newMatch(rng *rand.Rand) *match {
	m := &match{rng: rng}
	m.reset()
	return m
}

// reset draws two different teams for a new match.
func (m *match) reset() {
	i := m.rng.IntN(len(teams))
	j := (i + 1 + m.rng.IntN(len(teams)-1)) % len(teams)
	*m = match{rng: m.rng, home: teams[i], away: teams[j]}
}

// next advances the match and returns the event that happened.
func (m *match) next() ScoreEvent {
	switch m.phase {
	case beforeKickoff:
		m.phase = firstHalf
		return m.event("kickoff", "", fmt.Sprintf("Kick-off: %s vs %s", m.home, m.away))
	case halfTime:
		m.phase, m.minute = secondHalf, 46
		return m.event("second_half", "", "The second half is under way")
	case fullTime:
		m.reset()
		return m.next()
	}
	m.minute += 1 + m.rng.IntN(4)
	if m.phase == firstHalf && m.minute >= 45 {
		m.phase, m.minute = halfTime, 45
		return m.event("half_time", "", fmt.Sprintf("Half-time: %s", m.scoreline()))
	}
	if m.phase == secondHalf && m.minute >= 90 {
		m.phase, m.minute = fullTime, 90
		return m.event("full_time", "", fmt.Sprintf("Full-time: %s", m.scoreline()))
	}
	side, team := "home", m.home
	if m.rng.IntN(2) == 1 {
		side, team = "away", m.away
	}
	ev := m.pickEvent()
	text := fmt.Sprintf("%d' %s: %s", m.minute, ev.label, team)
	if ev.name == "goal" {
		if side == "home" {
			m.homeGoals++
		} else {
			m.awayGoals++
		}
		text = fmt.Sprintf("%d' GOAL! %s - %s", m.minute, team, m.scoreline())
	}
	return m.event(ev.name, side, text)
}

func (m *match) pickEvent() playEvent {
	total := 0
	for _, e := range playEvents {
		total += e.weight
	}
	n := m.rng.IntN(total)
	for _, e := range playEvents {
		if n < e.weight {
			return e
		}
		n -= e.weight
	}
	return playEvents[0]
}

func (m *match) scoreline() string {
	return fmt.Sprintf("%s %d-%d %s", m.home, m.homeGoals, m.awayGoals, m.away)
}

func (m *match) event(name, side, text string) ScoreEvent {
	return ScoreEvent{
		Match: m.home + " vs " + m.away, HomeTeam: m.home, AwayTeam: m.away,
		Home: m.homeGoals, Away: m.awayGoals, Minute: m.minute,
		Event: name, Team: side, Text: text,
	}
}
