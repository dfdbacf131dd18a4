package event

// Rows are analytics rows made together, such as a task's since its
// outputs were last collected: they reach the sink in one call.
type Rows struct {
	Aggregates  []Aggregate
	Triggers    []Trigger
	DeadLetters []DeadLetter
}

// Len is the number of rows.
func (r *Rows) Len() int { return len(r.Aggregates) + len(r.Triggers) + len(r.DeadLetters) }

// Reset empties r, keeping its capacity and dropping its references.
func (r *Rows) Reset() {
	clear(r.Aggregates)
	clear(r.Triggers)
	clear(r.DeadLetters)
	r.Aggregates, r.Triggers, r.DeadLetters = r.Aggregates[:0], r.Triggers[:0], r.DeadLetters[:0]
}
