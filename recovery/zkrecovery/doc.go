// Package zkrecovery is the ZOOKEEPER recovery mode: a recovery.Elector and
// a recovery.Store sharing one ZooKeeper session (a zkutil.Conn).
//
// Layout under dir (spark.deploy.zookeeper.dir, default /spark):
//
//	<dir>/leader_election/  protected ephemeral-sequential candidates, data {id, rpcUrl, webUiUrl, restUrl}
//	<dir>/epoch             persistent; {epoch, leader, node, since}; its version is the fencing token
//	<dir>/master_status/    app_<id>, driver_<id>, worker_<id>: versioned JSON records
//	<dir>/quarantine/       records that could not be decoded, moved aside
//
// Election: each candidate creates a protected ephemeral-sequential node and
// watches only its predecessor. The lowest node takes office with
// Multi(Check(own node), SetData(epoch, {epoch: E', ...}, version v)) after
// checking that the node's ephemeralOwner is its session. Every Store write
// is Multi(Check(epoch, v+1), Check(own node), ops...).
//
// Guaranteed:
//   - One writer per epoch: once a successor has taken office, no write of an
//     earlier term commits; the deposed master gets an error matching
//     recovery.ErrFenced and its term is revoked. A write also cannot commit
//     after the writer's session expired (its candidate node is checked).
//   - Epochs strictly increase, also across the loss of dir: E' is one more
//     than the largest of the stored epoch, the epoch znode's version and the
//     zxid of its last change (Mzxid), so above every epoch opened before in
//     the same ensemble, a re-created epoch znode included (see nextEpoch).
//     Not guaranteed across a rebuilt ensemble, whose zxids restart low:
//     WithEpochFloor is the operator's lever then.
//   - Self-fencing: a leader that has had no reply from ZooKeeper for the
//     self-fence bound (default 2/3 of the negotiated session timeout) ends its
//     term (OnRevoked, term context cancelled) before the server can expire
//     its session, so before a successor can be elected, as long as a reply
//     takes less than the remaining third to travel and clocks run at about
//     the same rate.
//   - Losing leadership (fenced write, self-fence, session expiry or change,
//     candidate node deleted) never ends Run: it campaigns again in the same
//     process, with a fresh candidate node when the old one is gone.
//   - Resign deletes the candidate node, so a successor takes office at once.
//   - Confirm returns nil only after round trips sent after it began (Sync,
//     then the epoch znode and the candidate node) show that the epoch znode
//     is still at this term's version and the candidate node is owned by
//     this term's session, which did not change meanwhile. Any other answer,
//     or none before its ctx's deadline, ends the term. The master calls it
//     after a local pause, when LastContact (receive time) proves nothing.
//   - Reads are pipelined (up to ReadConcurrency Gets in flight on the
//     session). Records over recovery.MaxRecordSize are refused with
//     recovery.ErrTooLarge. Undecodable records are moved to quarantine/ with a
//     fenced Multi (create copy, delete original) and reported; never deleted.
//
// Not guaranteed:
//   - That a write which returned an error did not commit: a timeout or a
//     connection loss after the request was sent is ambiguous.
//   - That two masters never both believe they lead: a deposed master may run
//     leader-only work until its term context is cancelled (at most the
//     self-fence bound after it lost ZooKeeper, plus one check interval).
//     What it cannot do is commit state, and workers refuse its stale epoch.
//   - Protection against clock-rate faults (a process paused longer than the
//     margin, or a clock running much slower than the server's). A paused
//     leader is caught by the fenced write and by Confirm (which its master
//     calls when it notices the pause), not by the self-fence.
//   - That Leader() is current: it is what this master last read, and is
//     "unknown" while the lowest candidate has not yet taken office.
package zkrecovery
