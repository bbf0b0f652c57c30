//! Small locking helpers shared by the peer's modules.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`, taking the data even if a thread panicked while holding it: the peer's guarded
/// maps and queues stay consistent between statements, so a poisoned lock is still usable,
/// and one panicked task must not take every later request down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
