// Package merge orders the records of a task's input queues by event
// time, so that what a task computes does not depend on how fetches
// happened to interleave its partitions, and a replay after a crash (or a
// backtest of the same history) applies events in the same order.
//
// It holds two pieces and nothing else, the way Kafka Streams'
// PartitionGroup holds the record queues of a task and the rule for which
// head goes next:
//
//   - [Queue], one input's records in arrival (offset) order: a FIFO in
//     fixed-size chunks that, once at its peak size, allocates nothing;
//   - [Pick], which input's head goes next: the lowest event time (ties:
//     the lower [Key.Rank], then the lower input), with bad input (no
//     event time) at once, and nothing while an empty input may still
//     deliver an earlier record ([Position.Waits], KIP-695's rule with
//     max.task.idle.ms for an input whose end is unknown).
//
// It knows no Kafka client, metrics or outputs. pipeline/consume drives it
// for `winback run` (fetching, pausing, committing the queue heads) and
// pipeline/replay for `winback backtest` and `winback evaluate` (inputs
// read to their end beforehand, so no input ever waits).
package merge
