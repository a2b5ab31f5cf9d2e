//! G.711 against an independent implementation: Python's `audioop`.
//!
//! `data/g711_audioop.bin` was generated once by `data/gen_g711_reference.py` (CPython 3.11's
//! audioop, a C implementation of its own) and is checked in; see that script for its layout.

use cardpbx_dsp::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode, Law};

const REF: &[u8] = include_bytes!("data/g711_audioop.bin");

#[test]
fn every_input_encodes_like_audioop() {
    assert_eq!(REF.len(), 65536 * 2 + 1024);
    let (alaw, rest) = REF.split_at(65536);
    let (ulaw, _) = rest.split_at(65536);
    let mut bad_a = 0;
    let mut bad_u = 0;
    for (i, x) in (i16::MIN..=i16::MAX).enumerate() {
        bad_a += usize::from(alaw_encode(x) != alaw[i]);
        bad_u += usize::from(ulaw_encode(x) != ulaw[i]);
    }
    assert_eq!((bad_a, bad_u), (0, 0), "mismatches (A-law, µ-law) against audioop");
}

#[test]
fn every_code_decodes_like_audioop() {
    let dec = &REF[65536 * 2..];
    for c in 0..=255u8 {
        let i = c as usize * 2;
        let a = i16::from_le_bytes([dec[i], dec[i + 1]]);
        let u = i16::from_le_bytes([dec[512 + i], dec[512 + i + 1]]);
        assert_eq!(alaw_decode(c), a, "A-law code {c:#04x}");
        assert_eq!(ulaw_decode(c), u, "µ-law code {c:#04x}");
    }
}

#[test]
fn block_helpers_agree_with_scalar_codec() {
    let input: Vec<i16> = (0..1000).map(|i| (i * 65) as i16).collect();
    for law in [Law::Alaw, Law::Ulaw] {
        let mut codes = vec![0u8; input.len()];
        law.encode_block(&input, &mut codes);
        let mut back = vec![0i16; input.len()];
        law.decode_block(&codes, &mut back);
        for ((x, c), y) in input.iter().zip(&codes).zip(&back) {
            assert_eq!(*c, law.encode(*x));
            assert_eq!(*y, law.decode(*c));
        }
    }
}
