//! Whether a JPEG file is whole. The `image` crate's decoder fills a
//! truncated scan with grey and reports success, so a cut-off upload would
//! be stored as a half-grey photo; no well-kept crate answers "does this
//! JPEG reach its end-of-image marker", hence this walk over its segments.

const MARKER: u8 = 0xFF;
const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

/// Whether `bytes` run from the start-of-image marker through segments and
/// entropy-coded scans to an end-of-image marker. Bytes after it (some
/// cameras append a video) are not looked at.
pub(crate) fn reaches_end_of_image(bytes: &[u8]) -> bool {
    if bytes.get(..2) != Some(&[MARKER, SOI]) {
        return false;
    }
    let mut at = 2;
    loop {
        // Fill bytes (0xFF) may pad before a marker.
        while bytes.get(at) == Some(&MARKER) && bytes.get(at + 1) == Some(&MARKER) {
            at += 1;
        }
        let (Some(&MARKER), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
            return false;
        };
        at += 2;
        match marker {
            EOI => return true,
            // Markers without a length: restarts, a stray start of image.
            0xD0..=0xD7 | SOI | 0x01 => continue,
            _ => {}
        }
        let Some(&[high, low]) = bytes.get(at..at + 2) else {
            return false;
        };
        let length = usize::from(u16::from_be_bytes([high, low]));
        if length < 2 {
            return false;
        }
        at += length;
        if at > bytes.len() {
            return false;
        }
        if marker == SOS {
            // Entropy-coded data: a 0xFF in it is followed by 0x00 (a
            // stuffed byte) or a restart marker; anything else ends it.
            loop {
                match (bytes.get(at), bytes.get(at + 1)) {
                    (Some(&MARKER), Some(&(0x00 | 0xD0..=0xD7))) => at += 2,
                    (Some(&MARKER), Some(_)) => break,
                    (Some(_), _) => at += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP1 segment holding an EOI-looking pair, SOS with scan data
    /// (a stuffed 0xFF and a restart), EOI, then trailing bytes.
    fn whole() -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend([0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00]);
        jpeg.extend([0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02]);
        jpeg.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56]);
        jpeg.extend([0xFF, 0xFF, 0xD9]);
        jpeg.extend(b"trailing video");
        jpeg
    }

    #[test]
    fn a_whole_file_reaches_its_end_even_with_bytes_after_it() {
        assert!(reaches_end_of_image(&whole()));
    }

    #[test]
    fn every_cut_before_the_end_marker_is_caught() {
        let jpeg = whole();
        let end = jpeg.len() - b"trailing video".len();
        for cut in 0..end {
            assert!(!reaches_end_of_image(&jpeg[..cut]), "cut at {cut}");
        }
    }

    #[test]
    fn anything_else_is_not_a_jpeg() {
        assert!(!reaches_end_of_image(b"<html></html>"));
        assert!(!reaches_end_of_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]));
        assert!(!reaches_end_of_image(&[0xFF, 0xD8, 0x00]));
    }
}
