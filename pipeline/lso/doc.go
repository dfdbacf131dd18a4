// Package lso reads Kafka partitions up to their last stable offset: what
// a read_committed consumer reaches, the high watermark when no
// transaction is open. [List] fixes the end of each partition when it is
// called, and [Read] reads up to it, with no consumer group, and leaves
// out aborted records and transaction markers, so a read sees exactly
// what was committed when it began, and ends even when the last offset
// before the end is a transaction marker.
//
// It is the one last-stable-offset reader of winback: pipeline/replay
// reads the input topics with it for `winback backtest` and `winback
// evaluate`, and it fits a changelog restore (a long-lived client whose
// partitions are added for the read and removed after it).
package lso
