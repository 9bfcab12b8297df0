//! Test images built in code: each format, an EXIF block with an
//! orientation and a GPS position, a polyglot, a decompression bomb.
//! Public (behind `cfg(test)` or the `fixtures` feature) so the server's
//! HTTP tests upload the same files.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageBuffer, Rgb, Rgba};

/// A `width` × `height` gradient, so every pixel differs and an image
/// turned or mirrored is told from the original.
fn gradient(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([
            u8::try_from(x * 255 / width.max(1)).unwrap_or(255),
            u8::try_from(y * 255 / height.max(1)).unwrap_or(255),
            128,
        ])
    }))
}

/// A JPEG of `width` × `height`.
#[must_use]
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    gradient(width, height)
        .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, 90))
        .unwrap_or_else(|e| unreachable!("encoding a test JPEG: {e}"));
    bytes
}

/// A PNG of `width` × `height` with an alpha channel and a text chunk.
#[must_use]
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = DynamicImage::ImageRgba8(ImageBuffer::from_fn(width, height, |x, _| {
        Rgba([200, 10, 10, u8::try_from(x % 256).unwrap_or(255)])
    }));
    let mut bytes = Vec::new();
    image
        .write_with_encoder(PngEncoder::new(&mut bytes))
        .unwrap_or_else(|e| unreachable!("encoding a test PNG: {e}"));
    // A tEXt chunk before IEND: metadata that must not survive.
    let iend = bytes.len() - 12;
    let text = chunk(*b"tEXt", b"Comment\0shot at 51.5007N 0.1246W");
    bytes.splice(iend..iend, text);
    bytes
}

/// A WebP of `width` × `height` (lossy, as cameras and browsers make them).
#[must_use]
pub fn webp(width: u32, height: u32) -> Vec<u8> {
    let image = gradient(width, height).to_rgb8();
    webp::Encoder::from_rgb(&image, width, height)
        .encode(80.0)
        .to_vec()
}

/// A PNG chunk: length, type, data and CRC.
fn chunk(kind: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[4..]);
    out.extend(crc.to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The GPS latitude reference this file's EXIF block carries, to look for
/// in what is served.
pub const GPS_MARKER: &[u8] = b"GPSN";

/// A JPEG of `width` × `height` whose EXIF says to turn it 90° clockwise
/// (orientation 6) and where it was taken (a GPS block).
#[must_use]
pub fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
    // TIFF, little-endian: IFD0 with Orientation = 6 and a GPS IFD pointer;
    // the GPS IFD with GPSLatitudeRef "N" and a version (GPSN marker).
    let mut tiff: Vec<u8> = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    tiff.extend(2u16.to_le_bytes());
    tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    let gps_at: u32 = 8 + 2 + 2 * 12 + 4;
    tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0]);
    tiff.extend(gps_at.to_le_bytes());
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(2u16.to_le_bytes());
    tiff.extend([0x00, 0x00, 1, 0, 4, 0, 0, 0, b'G', b'P', b'S', b'N']);
    tiff.extend([0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
    tiff.extend(0u32.to_le_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut jpeg = jpeg(width, height);
    let length = u16::try_from(app1.len() + 2).unwrap_or(u16::MAX);
    let mut segment = vec![0xFF, 0xE1];
    segment.extend(length.to_be_bytes());
    segment.extend(app1);
    jpeg.splice(2..2, segment);
    jpeg
}

/// A JPEG with a script in a comment segment and an HTML page after its
/// end: a file a browser might sniff as HTML (refused).
#[must_use]
pub fn polyglot() -> Vec<u8> {
    let script = b"<script>alert(document.cookie)</script>";
    let mut jpeg = jpeg(40, 30);
    let mut comment = vec![0xFF, 0xFE];
    comment.extend(u16::try_from(script.len() + 2).unwrap_or(0).to_be_bytes());
    comment.extend(script);
    jpeg.splice(2..2, comment);
    jpeg.extend(b"<html><body><script>alert(1)</script></body></html>");
    jpeg
}

/// A PNG of a few dozen bytes whose header claims `width` × `height`.
#[must_use]
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut header = width.to_be_bytes().to_vec();
    header.extend(height.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(*b"IHDR", &header));
    png.extend(chunk(
        *b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(*b"IEND", &[]));
    png
}

/// A small JPEG whose frame header claims 65,535 × 65,535 pixels.
#[must_use]
pub fn jpeg_bomb() -> Vec<u8> {
    let mut jpeg = jpeg(16, 16);
    let sof = jpeg
        .windows(2)
        .position(|pair| pair == [0xFF, 0xC0])
        .unwrap_or_else(|| unreachable!("a baseline JPEG has a SOF0"));
    // SOF0: marker, length (2), precision (1), height (2), width (2).
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    jpeg
}

/// Bytes of an image `format` decodes as, cut short by `keep_fraction`.
#[must_use]
pub fn truncated(image: &[u8], keep_percent: usize) -> Vec<u8> {
    image[..image.len() * keep_percent / 100].to_vec()
}

/// The size of an encoded image, read back.
#[must_use]
pub fn dimensions(bytes: &[u8]) -> (u32, u32) {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|reader| reader.into_dimensions().ok())
        .unwrap_or((0, 0))
}
