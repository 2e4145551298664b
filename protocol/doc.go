// Package protocol owns sparkd's wire format: the JSON messages exchanged by
// masters, workers and application clients over HTTP/1.1, the state
// vocabularies (with Spark's names, verbatim), the epoch stamp that fences
// every master command, and the small HTTP helpers all three sides share.
//
// Every message a master sends to a worker or a driver embeds a Stamp. A
// receiver remembers the highest epoch it has seen (EpochGuard) and refuses
// lower ones with HTTP 409, so a deposed master cannot command the fleet.
//
// Compatibility: unknown JSON fields are ignored; a missing required field is
// a 400 whose message names the field (see Validate methods). Version is the
// wire version carried in the X-Sparkd-Protocol header.
//
// protocol is a leaf: it imports nothing from the project.
package protocol

// Version is the wire-protocol version sent in HeaderVersion.
const Version = 1

// HTTP headers used on every sparkd request.
const (
	HeaderVersion = "X-Sparkd-Protocol"
	HeaderAuth    = "X-Sparkd-Auth"
	HeaderTime    = "X-Sparkd-Time"
)
