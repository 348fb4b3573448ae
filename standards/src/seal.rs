//! Sealed tokens: small payloads a server hands out and must get back
//! unchanged and unread (REST cursors carry the last row's sort key).
//!
//! Deterministic authenticated encryption under the deployment's
//! [`MaskKey`], built from HMAC-SHA256 alone (the primitive the masks
//! already use): the SIV construction (RFC 5297's shape) with HMAC as the
//! PRF. For a domain `d`:
//!
//! * `mac_key = HMAC(key, 0xFF ‖ "civlink-seal-mac\0" ‖ d)` and
//!   `enc_key = HMAC(key, 0xFF ‖ "civlink-seal-enc\0" ‖ d)` (the 0xFF byte
//!   keeps them apart from every pseudonym, an HMAC of UTF-8 text under the
//!   same key);
//! * the synthetic IV is `iv = HMAC(mac_key, plaintext)[..16]`;
//! * block `i` of the key stream is `HMAC(enc_key, iv ‖ i as u64 BE)`;
//! * the sealed token is `iv ‖ (plaintext ⊕ key stream)`.
//!
//! Opening decrypts, then recomputes the IV from the plaintext and compares
//! it in constant time: a token changed in any bit, sealed under another
//! key or for another domain does not open. Equal plaintexts seal to equal
//! tokens, which is what a cursor wants (and all SIV gives away).

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::mask::MaskKey;

/// Bytes of the synthetic IV at the head of a sealed token.
pub const SEAL_IV_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

fn subkey(key: &MaskKey, label: &str, domain: &str) -> HmacSha256 {
    let mut derive = key.keyed_mac();
    // 0xFF begins no UTF-8 text, and pseudonyms are HMACs of text under the
    // same key: no value's pseudonym is ever a seal subkey.
    derive.update(&[0xFF]);
    derive.update(label.as_bytes());
    derive.update(&[0]);
    derive.update(domain.as_bytes());
    let bytes = derive.finalize().into_bytes();
    // HMAC zero-pads a key shorter than its 64-byte block (RFC 2104), so
    // keying with the padded block is HMAC under the 32-byte subkey, through
    // the infallible constructor.
    let mut block = [0u8; 64];
    block[..bytes.len()].copy_from_slice(&bytes);
    <HmacSha256 as KeyInit>::new(&block.into())
}

fn xor_key_stream(enc: &HmacSha256, iv: &[u8], data: &mut [u8]) {
    for (block, chunk) in data.chunks_mut(32).enumerate() {
        let mut mac = enc.clone();
        mac.update(iv);
        // Blocks are counted in 64 bits: the counter never wraps, whatever the length.
        mac.update(&u64::try_from(block).unwrap_or(u64::MAX).to_be_bytes());
        let stream = mac.finalize().into_bytes();
        for (byte, k) in chunk.iter_mut().zip(stream.iter()) {
            *byte ^= k;
        }
    }
}

impl MaskKey {
    /// `plaintext` sealed for `domain` (module docs).
    pub fn seal(&self, domain: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut siv = subkey(self, "civlink-seal-mac", domain);
        siv.update(plaintext);
        let iv = siv.finalize().into_bytes();
        let mut out = Vec::with_capacity(SEAL_IV_LEN + plaintext.len());
        out.extend_from_slice(&iv[..SEAL_IV_LEN]);
        out.extend_from_slice(plaintext);
        let (head, body) = out.split_at_mut(SEAL_IV_LEN);
        xor_key_stream(&subkey(self, "civlink-seal-enc", domain), head, body);
        out
    }

    /// The plaintext of a token [`MaskKey::seal`] made for `domain` under
    /// this key; `None` for anything else.
    pub fn open(&self, domain: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < SEAL_IV_LEN {
            return None;
        }
        let (iv, body) = sealed.split_at(SEAL_IV_LEN);
        let mut plaintext = body.to_vec();
        xor_key_stream(&subkey(self, "civlink-seal-enc", domain), iv, &mut plaintext);
        let mut siv = subkey(self, "civlink-seal-mac", domain);
        siv.update(&plaintext);
        siv.verify_truncated_left(iv).ok()?;
        Some(plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(byte: u8) -> MaskKey {
        MaskKey::from_bytes([byte; crate::mask::MASK_KEY_LEN])
    }

    #[test]
    fn sealed_tokens_hide_their_payload_and_open_only_as_made() {
        let k = key(7);
        let payload = b"{\"last\":\"630102199001011234\"}";
        let sealed = k.seal("cursor", payload);
        assert_eq!(sealed.len(), SEAL_IV_LEN + payload.len());
        assert!(!sealed.windows(8).any(|w| w == b"63010219"), "the payload shows through");
        assert_eq!(k.open("cursor", &sealed).as_deref(), Some(&payload[..]));
        assert_eq!(k.seal("cursor", payload), sealed, "deterministic");
        assert!(k.open("other", &sealed).is_none(), "another domain");
        assert!(key(8).open("cursor", &sealed).is_none(), "another key");
        assert!(k.open("cursor", &sealed[..SEAL_IV_LEN - 1]).is_none());
        assert_eq!(k.open("cursor", &k.seal("cursor", b"")).as_deref(), Some(&b""[..]));
    }

    proptest! {
        #[test]
        fn any_flipped_bit_is_refused(payload in proptest::collection::vec(any::<u8>(), 0..200), at in any::<usize>(), bit in 0u8..8) {
            let k = key(1);
            let mut sealed = k.seal("d", &payload);
            prop_assert_eq!(k.open("d", &sealed), Some(payload.clone()));
            let i = at % sealed.len();
            sealed[i] ^= 1 << bit;
            prop_assert!(k.open("d", &sealed).is_none());
        }
    }
}
