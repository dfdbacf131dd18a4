// Package replay applies recorded history through the signal engine the
// way the pipeline does, with no side effects: no trigger topic, no
// ClickHouse, no changelog, no consumer group. `winback backtest` and
// `winback evaluate` are built on it.
//
// Reading. [ReadTopics] reads the input topics, read_committed, from
// their start up to the last stable offsets they had when it began
// (pipeline/lso), so a replay sees exactly what was committed then, and
// decodes every record into an [Input]. Any other source (a JSON-lines file) fills an Input with
// [Input.Add] and [Input.Reject].
//
// Order of application. The pipeline merges a task's input partitions by
// event time (pipeline/merge). A replay reads everything first and then
// runs the same merge ([merge.Pick]) over each task's streams, one stream
// per (source, input partition), each in input order; no stream ever
// waits, since each is read to its end. Customers are spread over tasks
// as the pipeline's partitions are (murmur2 of the customer id), so with
// as many tasks as the topics have partitions a task's streams are
// exactly the pipeline's. The wall clock is the event time of the event
// being applied (never going backwards), so idle timeouts run in event
// time; after the last event each task is advanced with a clock
// idle_timeout past the newest event, so the sources go idle and every
// timer due by the last event (less the allowed lateness) fires.
//
// Memory. Every decoded event is held until its task has run: about 300
// to 400 bytes per event (an event.Event and its strings), plus the
// engines (about 370 bytes per customer). A year of 2000 customers (about
// 550 000 events) needs roughly 250 MB.
package replay
