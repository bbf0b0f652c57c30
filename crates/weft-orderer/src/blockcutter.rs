//! Block cutting: which ordered envelopes go into which block.
//!
//! A pure state machine, as Fabric's `blockcutter.Receiver`: the consenter feeds it envelopes
//! in order ([`BlockCutter::ordered`]) and gets back the batches that are complete; the rest
//! waits in a pending batch. The rules, from the channel's `Orderer.BatchSize`:
//!
//! - an envelope larger than `PreferredMaxBytes` goes in a batch of its own (the pending
//!   batch, if any, is cut first so order is kept);
//! - an envelope that would take the pending batch past `PreferredMaxBytes` cuts the pending
//!   batch first, then starts the next one;
//! - a pending batch that reaches `MaxMessageCount` envelopes is cut;
//! - `AbsoluteMaxBytes` is enforced before ordering (Broadcast refuses larger envelopes with
//!   `REQUEST_ENTITY_TOO_LARGE`); the cutter never sees them.
//!
//! The batch timer (`BatchTimeout`) belongs to the caller, since the cutter has no clock: arm it
//! when [`Ordered::pending`] turns true with an empty batch before (see
//! [`Ordered::timer`]), disarm it whenever a batch is cut, and call [`BlockCutter::cut`] when
//! it expires.
//!
//! An envelope's size is Fabric's: `len(payload) + len(signature)` ([`message_size`]).

use std::time::Duration;

use bytes::Bytes;

/// The channel's batch limits (`Orderer.BatchSize` and `Orderer.BatchTimeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_message_count: u32,
    pub absolute_max_bytes: u32,
    pub preferred_max_bytes: u32,
    pub timeout: Duration,
}

impl Default for BatchLimits {
    /// configtxgen's sample values: 10 messages, 99 MB, 512 KB, 2 s.
    fn default() -> Self {
        BatchLimits {
            max_message_count: 10,
            absolute_max_bytes: 99 * 1024 * 1024,
            preferred_max_bytes: 512 * 1024,
            timeout: Duration::from_secs(2),
        }
    }
}

/// One envelope waiting to be ordered: its marshalled bytes and its Fabric size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub envelope: Bytes,
    pub size: u32,
}

/// A cut batch: marshalled envelopes, in order.
pub type Batch = Vec<Bytes>;

/// What one [`BlockCutter::ordered`] call produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ordered {
    /// Complete batches, in order (0, 1 or 2).
    pub batches: Vec<Batch>,
    /// Whether envelopes are pending after the call.
    pub pending: bool,
    /// Whether the caller must (re)arm the batch timer: the pending batch was started by this
    /// call.
    pub timer: bool,
}

/// Fabric's size of an envelope: payload plus signature bytes.
pub fn message_size(payload_len: usize, signature_len: usize) -> u32 {
    u32::try_from(payload_len.saturating_add(signature_len)).unwrap_or(u32::MAX)
}

/// The block cutter (see the module documentation).
#[derive(Debug, Clone)]
pub struct BlockCutter {
    limits: BatchLimits,
    batch: Batch,
    batch_bytes: u64,
}

impl BlockCutter {
    pub fn new(limits: BatchLimits) -> Self {
        BlockCutter {
            limits,
            batch: Vec::new(),
            batch_bytes: 0,
        }
    }

    /// New limits (after a config change); applied from the next envelope on.
    pub fn set_limits(&mut self, limits: BatchLimits) {
        self.limits = limits;
    }

    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// Envelopes in the pending batch.
    pub fn pending_len(&self) -> usize {
        self.batch.len()
    }

    /// Order one envelope of `size` bytes (see [`message_size`]).
    pub fn ordered(&mut self, envelope: Bytes, size: u32) -> Ordered {
        let mut out = Ordered::default();
        let was_empty = self.batch.is_empty();
        if size > self.limits.preferred_max_bytes {
            if !self.batch.is_empty() {
                out.batches.push(self.cut());
            }
            out.batches.push(vec![envelope]);
            out.pending = false;
            return out;
        }
        if self.batch_bytes + u64::from(size) > u64::from(self.limits.preferred_max_bytes)
            && !self.batch.is_empty()
        {
            out.batches.push(self.cut());
        }
        let starts_batch = self.batch.is_empty();
        self.batch.push(envelope);
        self.batch_bytes += u64::from(size);
        if self.batch.len() >= self.limits.max_message_count.max(1) as usize {
            out.batches.push(self.cut());
        }
        out.pending = !self.batch.is_empty();
        // The timer runs for the batch now pending; a new one started here needs a fresh timer.
        out.timer = out.pending && (starts_batch || was_empty);
        out
    }

    /// Cut the pending batch (on timer expiry); empty if nothing is pending.
    pub fn cut(&mut self) -> Batch {
        self.batch_bytes = 0;
        std::mem::take(&mut self.batch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn limits(count: u32, preferred: u32) -> BatchLimits {
        BatchLimits {
            max_message_count: count,
            absolute_max_bytes: 10_000,
            preferred_max_bytes: preferred,
            timeout: Duration::from_millis(100),
        }
    }

    fn env(tag: u8) -> Bytes {
        Bytes::from(vec![tag])
    }

    #[test]
    fn max_message_count_cuts() {
        let mut c = BlockCutter::new(limits(3, 1000));
        let r = c.ordered(env(1), 10);
        assert!(r.batches.is_empty() && r.pending && r.timer);
        let r = c.ordered(env(2), 10);
        assert!(r.batches.is_empty() && r.pending && !r.timer);
        let r = c.ordered(env(3), 10);
        assert_eq!(r.batches, vec![vec![env(1), env(2), env(3)]]);
        assert!(!r.pending && !r.timer);
        assert_eq!(c.pending_len(), 0);
    }

    #[test]
    fn oversized_for_preferred_goes_alone_after_the_pending_batch() {
        let mut c = BlockCutter::new(limits(10, 100));
        c.ordered(env(1), 30);
        let r = c.ordered(env(2), 150);
        assert_eq!(r.batches, vec![vec![env(1)], vec![env(2)]]);
        assert!(!r.pending);
        // With nothing pending it is a batch of one.
        let r = c.ordered(env(3), 101);
        assert_eq!(r.batches, vec![vec![env(3)]]);
    }

    #[test]
    fn overflowing_preferred_cuts_pending_first() {
        let mut c = BlockCutter::new(limits(10, 100));
        c.ordered(env(1), 60);
        let r = c.ordered(env(2), 50);
        assert_eq!(r.batches, vec![vec![env(1)]]);
        assert!(
            r.pending && r.timer,
            "the new pending batch needs its own timer"
        );
        // Exactly reaching preferred does not cut.
        let r = c.ordered(env(3), 50);
        assert!(r.batches.is_empty());
        assert_eq!(c.pending_len(), 2);
    }

    #[test]
    fn overflow_and_count_in_one_call() {
        let mut c = BlockCutter::new(limits(1, 100));
        let r = c.ordered(env(1), 10);
        assert_eq!(r.batches, vec![vec![env(1)]]);
        assert!(!r.pending && !r.timer);
    }

    #[test]
    fn timer_cut_takes_the_pending_batch() {
        let mut c = BlockCutter::new(limits(10, 1000));
        assert!(c.cut().is_empty());
        c.ordered(env(1), 10);
        c.ordered(env(2), 10);
        assert_eq!(c.cut(), vec![env(1), env(2)]);
        assert!(c.cut().is_empty());
        let r = c.ordered(env(3), 10);
        assert!(
            r.timer,
            "a batch started after a timer cut arms the timer again"
        );
    }

    #[test]
    fn zero_count_behaves_as_one() {
        let mut c = BlockCutter::new(limits(0, 1000));
        assert_eq!(c.ordered(env(1), 1).batches.len(), 1);
    }

    #[test]
    fn message_size_is_payload_plus_signature() {
        assert_eq!(message_size(100, 71), 171);
        assert_eq!(message_size(usize::MAX, 1), u32::MAX);
    }
}
