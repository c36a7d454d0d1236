//! The notifications verified lately, so that a replay inside the freshness window is known.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use tokio::time::Instant;

use super::authenticity::MAX_CLOCK_SKEW;

/// Signatures of the notifications verified lately, so a replay inside the freshness window is
/// recognised. Only verified notifications are recorded, so only the Developer Center (or a
/// replay of what it sent) can add entries; they expire after twice [`MAX_CLOCK_SKEW`], the
/// longest time one signed notification can pass the freshness check. Keyed by the SHA-256 of
/// the signature: a tenth of the signature's size.
#[derive(Default)]
pub(super) struct SeenNotifications(Mutex<HashMap<[u8; 32], Instant>>);

/// Entries kept at most; past this the oldest are forgotten (a forgotten duplicate costs one
/// more refresh, nothing else).
const SEEN_NOTIFICATIONS_MAX: usize = 4096;

impl SeenNotifications {
    /// Records `signature`; false if it was recorded within the window already.
    pub(super) fn first_time(&self, signature: &str) -> bool {
        let now = Instant::now();
        let window = MAX_CLOCK_SKEW * 2;
        let digest = ring::digest::digest(&ring::digest::SHA256, signature.as_bytes());
        let key: [u8; 32] = digest
            .as_ref()
            .try_into()
            .expect("SHA-256 digests are 32 bytes");
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, first| now.duration_since(*first) < window);
        if seen.contains_key(&key) {
            return false;
        }
        if seen.len() >= SEEN_NOTIFICATIONS_MAX {
            let oldest = seen
                .iter()
                .min_by_key(|(_, first)| **first)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                seen.remove(&oldest);
            }
        }
        seen.insert(key, now);
        true
    }
}

impl std::fmt::Debug for SeenNotifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.lock().unwrap_or_else(PoisonError::into_inner).len();
        write!(f, "SeenNotifications({count})")
    }
}
