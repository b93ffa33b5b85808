//! Damaged, truncated, extended and foreign files: always an error, never short or wrong output.

use super::*;

/// A plaintext spanning three chunks (64 KiB each) and a bit, and where its payload starts.
fn three_chunk_file(dir: &Path) -> (Vec<u8>, Vec<u8>, Decryption, usize) {
    let key = new_key();
    let plain = pseudo_random(3 * 65536 + 1000);
    let ciphertext = encrypt(&plain, &to_recipients(&[&key]));
    let header_end = ciphertext.windows(5).position(|w| w == b"\n--- ").unwrap();
    let mac_line_end = header_end + 1 + ciphertext[header_end + 1..].iter().position(|&b| b == b'\n').unwrap() + 1;
    // The payload: a 16-byte nonce, then chunks of 64 KiB + 16-byte tag.
    let payload_start = mac_line_end + 16;
    assert_eq!(ciphertext.len() - payload_start, plain.len() + 4 * 16);
    (plain, ciphertext, identity_decryption(dir, &key), payload_start)
}

#[test]
fn truncated_ciphertext_is_an_error_never_short_output() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ciphertext, decryption, payload_start) = three_chunk_file(dir.path());
    let chunk = 65536 + 16;
    let cuts = [
        0,
        10,
        payload_start - 20, // in the header
        payload_start + 8,  // in the nonce
        payload_start + 16, // right after the nonce: no chunk at all
        payload_start + 16 + 100,
        payload_start + 16 + chunk, // exactly at a chunk boundary
        payload_start + 16 + 2 * chunk,
        payload_start + 16 + 3 * chunk, // every full chunk, no last chunk
        ciphertext.len() - 1,
    ];
    for cut in cuts {
        let result = decrypt(&ciphertext[..cut], &decryption);
        assert!(result.is_err(), "cut at {cut} of {} decrypted to {} bytes", ciphertext.len(), result.unwrap().len());
    }
}

#[test]
fn flipped_byte_anywhere_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ciphertext, decryption, payload_start) = three_chunk_file(dir.path());
    let positions = [
        0,                              // version line
        30,                             // recipient stanza
        payload_start - 17,             // header MAC
        payload_start - 1,              // last byte of the nonce
        payload_start + 16,             // first payload byte
        payload_start + 16 + 65536 + 5, // inside the first tag
        payload_start + 100_000,        // second chunk
        ciphertext.len() - 1,           // the last chunk's tag
    ];
    for position in positions {
        let mut damaged = ciphertext.clone();
        damaged[position] ^= 0x01;
        assert!(decrypt(&damaged, &decryption).is_err(), "flip at {position} went unnoticed");
    }
}

#[test]
fn appended_bytes_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut ciphertext, decryption, _) = three_chunk_file(dir.path());
    ciphertext.extend_from_slice(b"trailing");
    let error = decrypt(&ciphertext, &decryption).unwrap_err();
    assert!(error.starts_with("age payload"), "{error}");
}

#[test]
fn a_writer_dropped_without_finish_leaves_an_undecryptable_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key();
    let mut sink = Vec::new();
    {
        let mut writer = encrypt_writer(&mut sink, &to_recipients(&[&key])).unwrap();
        writer.write_all(&pseudo_random(200_000)).unwrap();
    }
    assert!(sink.len() > 65536, "full chunks were written before the drop");
    let error = decrypt(&sink, &identity_decryption(dir.path(), &key)).unwrap_err();
    assert!(error.contains("truncated"), "{error}");
}

#[test]
fn damaged_header_mac_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut ciphertext, decryption, payload_start) = three_chunk_file(dir.path());
    // The MAC's base64 sits just before the header's final newline; change one character of it.
    let at = payload_start - 16 - 5;
    ciphertext[at] = if ciphertext[at] == b'A' { b'B' } else { b'A' };
    let error = decrypt_reader(&ciphertext[..], &decryption).err().unwrap();
    assert!(matches!(error, CryptError::HeaderMac), "{error:?}");
}

#[test]
fn not_an_age_file_is_refused_at_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let decryption = identity_decryption(dir.path(), &new_key());
    let mak = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/original_three_records.mak")).unwrap();
    let error = decrypt_reader(&mak[..], &decryption).err().unwrap();
    assert!(matches!(error, CryptError::InvalidHeader), "{error:?}");
    let error = decrypt_reader(&b"MAK\0\0"[..], &decryption).err().unwrap();
    assert!(matches!(error, CryptError::ShortHeader), "{error:?}");
    let future = [&b"age-encryption.org/v2\n"[..], &[b'x'; 200], b"\n"].concat();
    let error = decrypt_reader(&future[..], &decryption).err().unwrap();
    assert!(matches!(error, CryptError::UnknownFormat), "{error:?}");
}

#[test]
fn is_encrypted_recognises_binary_and_armored_age_only() {
    let key = new_key();
    assert!(is_encrypted(&encrypt(b"x", &to_recipients(&[&key]))));
    assert!(is_encrypted(b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n"));
    assert!(!is_encrypted(b"MAK\0\0\0\0"));
    assert!(!is_encrypted(b"\x89MAK\r\n\x1a\n"));
    assert!(!is_encrypted(b"\x1f\x8b\x08"));
    assert!(!is_encrypted(b"\x28\xb5\x2f\xfd"));
    assert!(!is_encrypted(b"age-encryption.org/v"), "a prefix of the magic is not enough");
    assert!(!is_encrypted(b""));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Any bytes, written in any pieces, read back in any pieces, are the same bytes.
    #[test]
    fn any_bytes_in_any_pieces_round_trip(
        plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200_000),
        write_piece in 1usize..100_000,
        read_piece in 1usize..100_000,
    ) {
        let key = new_key();
        let dir = tempfile::tempdir().unwrap();
        let mut writer = encrypt_writer(Vec::new(), &to_recipients(&[&key])).unwrap();
        for piece in plain.chunks(write_piece) {
            writer.write_all(piece).unwrap();
        }
        let ciphertext = writer.finish().unwrap();
        let mut reader = decrypt_reader(&ciphertext[..], &identity_decryption(dir.path(), &key)).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; read_piece];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        proptest::prop_assert!(out == plain, "{} bytes differ", plain.len());
    }
}
