//! A published value's wire form, made once and shared by every stream that sends it.
//!
//! A quote read by fifty streams is encoded by the first of them; the other forty-nine
//! send the same bytes. The fan-out does not know the wire format: the API layer fills
//! the cell ([`EncodedOnce::get_or_init`]).

use std::sync::OnceLock;

use bytes::Bytes;

/// The encoding of one published value, filled on first use.
#[derive(Debug, Default)]
pub struct EncodedOnce(OnceLock<Bytes>);

/// A copy of a view is the start of a new value: its encoding is made anew.
impl Clone for EncodedOnce {
    fn clone(&self) -> Self {
        EncodedOnce::default()
    }
}

impl EncodedOnce {
    /// The bytes, made by `encode` if no reader has made them yet.
    pub fn get_or_init(&self, encode: impl FnOnce() -> Bytes) -> Bytes {
        self.0.get_or_init(encode).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_once_and_not_carried_into_a_copy() {
        let cell = EncodedOnce::default();
        let mut calls = 0;
        for _ in 0..3 {
            let bytes = cell.get_or_init(|| {
                calls += 1;
                Bytes::from_static(b"v1")
            });
            assert_eq!(bytes, Bytes::from_static(b"v1"));
        }
        assert_eq!(calls, 1);
        let copy = cell.clone();
        assert_eq!(copy.get_or_init(|| Bytes::from_static(b"v2")), "v2");
    }
}
