package kafka

import "github.com/winback/winback/pipeline/codec"

// The trigger wire format lives in package codec. These names forward to it
// until cmd/winback builds its trigger encoder there; then this file goes.

// Format is codec.Format.
//
// Deprecated: use codec.Format.
type Format = codec.Format

// TriggerEncoder is codec.TriggerEncoder.
//
// Deprecated: use codec.TriggerEncoder.
type TriggerEncoder = codec.TriggerEncoder

// NewTriggerEncoder is codec.NewTriggerEncoder.
//
// Deprecated: use codec.NewTriggerEncoder.
var NewTriggerEncoder = codec.NewTriggerEncoder
