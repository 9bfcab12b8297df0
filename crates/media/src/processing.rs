//! Decoding an untrusted upload and encoding a clean image of our own.

use std::io::Cursor;
use std::sync::{Arc, LazyLock};

use aho_corasick::AhoCorasick;

use async_trait::async_trait;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use pp_domain::photos::{
    AddPhotoError, EncodedImage, ImageFormat, ImageProcessor, InvalidImage, MAX_PIXELS,
    ProcessedPhoto, THUMBNAIL_SIDE,
};
use pp_domain::ports::StoreError;
use tokio::sync::Semaphore;

use crate::jpeg::reaches_end_of_image;

/// JPEG and lossy WebP quality: indistinguishable from the upload on a
/// screen, a fraction of a camera's bytes.
const QUALITY: u8 = 85;

/// The most memory one decode may take: a 40-megapixel image with alpha at
/// 16 bits per channel, and room for the decoder's own buffers.
const MAX_DECODE_BYTES: u64 = 400 * 1024 * 1024;

/// The processor: decodes on tokio's blocking pool, at most `workers`
/// uploads at once and `waiting` more queued; past that an upload is
/// refused at once (503) rather than queued behind a backlog.
#[derive(Debug, Clone)]
pub struct ImagePipeline {
    running: Arc<Semaphore>,
    queued: Arc<Semaphore>,
}

impl ImagePipeline {
    /// A pipeline running `workers` decodes at once with `waiting` more
    /// queued.
    #[must_use]
    pub fn new(workers: usize, waiting: usize) -> Self {
        ImagePipeline {
            running: Arc::new(Semaphore::new(workers.max(1))),
            queued: Arc::new(Semaphore::new(workers.max(1) + waiting)),
        }
    }

    /// Processes `upload` on the calling thread: what [`ImageProcessor::
    /// process`] runs on the blocking pool.
    ///
    /// # Errors
    /// [`InvalidImage`] naming why the upload is refused.
    pub fn process_now(upload: &[u8]) -> Result<ProcessedPhoto, InvalidImage> {
        let reader = ImageReader::new(Cursor::new(upload))
            .with_guessed_format()
            .map_err(|_| refused("cannot be read"))?;
        let format = match reader.format() {
            Some(image::ImageFormat::Jpeg) => ImageFormat::Jpeg,
            Some(image::ImageFormat::Png) => ImageFormat::Png,
            Some(image::ImageFormat::WebP) => ImageFormat::WebP,
            _ => return Err(refused("is not a JPEG, PNG or WebP image")),
        };
        if format == ImageFormat::Jpeg && !reaches_end_of_image(upload) {
            return Err(refused("is a truncated JPEG image"));
        }
        if holds_markup(upload) {
            return Err(refused("also reads as HTML or script (a polyglot)"));
        }
        let mut decoder = reader
            .into_decoder()
            .map_err(|e| refused(format_args!("is not a valid image ({e})")))?;
        // The header's size, before a single pixel is decoded or allocated.
        let (width, height) = decoder.dimensions();
        if u64::from(width) * u64::from(height) > MAX_PIXELS {
            return Err(refused(format_args!(
                "has {width} × {height} pixels, more than {MAX_PIXELS}"
            )));
        }
        if width == 0 || height == 0 {
            return Err(refused("has no pixels"));
        }
        let mut limits = Limits::default();
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        decoder
            .set_limits(limits)
            .map_err(|e| refused(format_args!("is too large to decode ({e})")))?;
        let orientation = decoder
            .orientation()
            .map_err(|e| refused(format_args!("has unreadable metadata ({e})")))?;
        let mut image = DynamicImage::from_decoder(decoder)
            .map_err(|e| refused(format_args!("is not a valid image ({e})")))?;
        image.apply_orientation(orientation);
        let thumbnail = (image.width().max(image.height()) > THUMBNAIL_SIDE)
            .then(|| image.resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, FilterType::Lanczos3));
        Ok(ProcessedPhoto {
            image: encode(&image, format)?,
            thumbnail: thumbnail
                .map(|thumbnail| encode(&thumbnail, format))
                .transpose()?,
        })
    }
}

/// Markup a browser might run, in any letter case. Each is seven bytes or
/// more, so compressed pixels spell one by chance about once in a hundred
/// million 10 MiB files; shorter tags (`<html`, `<svg`) would now and then
/// refuse an honest photo.
const MARKUP: [&str; 4] = ["<script", "<!doctype", "<iframe", "javascript:"];

/// Whether an upload hides markup anywhere (in a comment or text segment,
/// after the image's end...): such a polyglot is refused, although the
/// re-encoded image would not carry it, since nobody uploads one by chance.
fn holds_markup(upload: &[u8]) -> bool {
    static MATCHER: LazyLock<AhoCorasick> = LazyLock::new(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(MARKUP)
            .unwrap_or_else(|e| unreachable!("four short literal patterns build: {e}"))
    });
    MATCHER.is_match(upload)
}

fn refused(why: impl std::fmt::Display) -> InvalidImage {
    InvalidImage(format!("the file {why}"))
}

/// `image` encoded as `format`: JPEG and WebP lossy at [`QUALITY`], PNG
/// lossless. None of the encoders writes metadata.
fn encode(image: &DynamicImage, format: ImageFormat) -> Result<EncodedImage, InvalidImage> {
    let failed = |e: &dyn std::fmt::Display| refused(format_args!("could not be encoded ({e})"));
    let mut bytes = Vec::new();
    match format {
        ImageFormat::Jpeg => {
            // JPEG has no alpha and 8 bits per channel.
            let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
            rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, QUALITY))
                .map_err(|e| failed(&e))?;
        }
        ImageFormat::Png => {
            image
                .write_with_encoder(PngEncoder::new_with_quality(
                    &mut bytes,
                    CompressionType::Default,
                    PngFilter::Adaptive,
                ))
                .map_err(|e| failed(&e))?;
        }
        ImageFormat::WebP => {
            let (width, height) = (image.width(), image.height());
            let encoded = if image.color().has_alpha() {
                let rgba = image.to_rgba8();
                webp::Encoder::from_rgba(&rgba, width, height).encode(f32::from(QUALITY))
            } else {
                let rgb = image.to_rgb8();
                webp::Encoder::from_rgb(&rgb, width, height).encode(f32::from(QUALITY))
            };
            bytes.extend_from_slice(&encoded);
        }
    }
    Ok(EncodedImage::new(
        format,
        bytes,
        image.width(),
        image.height(),
    ))
}

#[async_trait]
impl ImageProcessor for ImagePipeline {
    async fn process(&self, upload: Vec<u8>) -> Result<ProcessedPhoto, AddPhotoError> {
        // Refused at once past the queue; then wait for a worker. The
        // permits go with the work: a client that hangs up does not free
        // its place while its decode still runs.
        let queued = Arc::clone(&self.queued)
            .try_acquire_owned()
            .map_err(|_| StoreError::Busy)?;
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Busy)?;
        let processed = tokio::task::spawn_blocking(move || {
            let _places = (queued, running);
            ImagePipeline::process_now(&upload)
        })
        .await
        .map_err(|e| StoreError::Unknown(anyhow::anyhow!("image processing failed: {e}")))?;
        Ok(processed?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn processed(upload: &[u8]) -> ProcessedPhoto {
        ImagePipeline::process_now(upload).unwrap()
    }

    fn refusal(upload: &[u8]) -> String {
        ImagePipeline::process_now(upload).unwrap_err().0
    }

    #[test]
    fn each_format_comes_back_in_its_own_format_with_a_thumbnail() {
        for (upload, format) in [
            (fixtures::jpeg(1200, 900), ImageFormat::Jpeg),
            (fixtures::png(1200, 900), ImageFormat::Png),
            (fixtures::webp(1200, 900), ImageFormat::WebP),
        ] {
            let photo = processed(&upload);
            assert_eq!(photo.image.format, format);
            assert_eq!((photo.image.width, photo.image.height), (1200, 900));
            assert_eq!(fixtures::dimensions(&photo.image.bytes), (1200, 900));
            assert_ne!(
                photo.image.bytes, upload,
                "{format:?}: never served as sent"
            );
            let thumbnail = photo.thumbnail.unwrap();
            assert_eq!(thumbnail.format, format);
            assert_eq!((thumbnail.width, thumbnail.height), (480, 360));
            assert_eq!(fixtures::dimensions(&thumbnail.bytes), (480, 360));
        }
    }

    #[test]
    fn png_keeps_its_alpha_and_loses_its_text() {
        let photo = processed(&fixtures::png(64, 32));
        let image = image::load_from_memory(&photo.image.bytes).unwrap();
        assert!(image.color().has_alpha());
        assert_eq!(image.to_rgba8().get_pixel(3, 0).0, [200, 10, 10, 3]);
        assert!(!contains(&photo.image.bytes, b"tEXt"));
        assert!(!contains(&photo.image.bytes, b"51.5007N"));
    }

    #[test]
    fn a_small_image_is_its_own_thumbnail_and_is_not_enlarged() {
        let photo = processed(&fixtures::jpeg(480, 200));
        assert!(photo.thumbnail.is_none());
        assert_eq!((photo.image.width, photo.image.height), (480, 200));
        let tall = processed(&fixtures::webp(300, 1000)).thumbnail.unwrap();
        assert_eq!((tall.width, tall.height), (144, 480));
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    #[test]
    fn exif_is_applied_then_dropped_with_the_gps_position() {
        let upload = fixtures::jpeg_with_exif(64, 32);
        assert!(contains(&upload, fixtures::GPS_MARKER));
        let photo = processed(&upload);
        // Orientation 6: turned a quarter clockwise, so width and height swap.
        assert_eq!((photo.image.width, photo.image.height), (32, 64));
        assert_eq!(fixtures::dimensions(&photo.image.bytes), (32, 64));
        for metadata in [&b"Exif"[..], fixtures::GPS_MARKER] {
            assert!(!contains(&photo.image.bytes, metadata));
        }
    }

    #[test]
    fn a_polyglot_is_refused_in_any_letter_case() {
        let refused = refusal(&fixtures::polyglot());
        assert!(refused.contains("polyglot"), "{refused}");
        let mut hidden = fixtures::png(20, 20);
        hidden.extend(b"<p><ScRiPt>alert(1)</script>");
        assert!(refusal(&hidden).contains("polyglot"));
        // The same image without the markup is taken.
        assert_eq!(processed(&fixtures::png(20, 20)).image.width, 20);
    }

    #[test]
    fn what_is_not_an_image_of_the_three_formats_is_refused() {
        for (upload, why) in [
            (
                &b"<!doctype html><html><script>alert(1)</script></html>"[..],
                "is not a JPEG, PNG or WebP",
            ),
            (
                b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
                "is not a JPEG, PNG or WebP",
            ),
            (b"", "is not a JPEG, PNG or WebP"),
            (b"\x89PNG\r\n\x1a\n garbage", "is not a valid image"),
        ] {
            let refused = refusal(upload);
            assert!(refused.contains(why), "{refused}");
        }
    }

    #[test]
    fn a_truncated_image_of_any_format_is_refused() {
        for (whole, name) in [
            (fixtures::jpeg(300, 200), "jpeg"),
            (fixtures::png(300, 200), "png"),
            (fixtures::webp(300, 200), "webp"),
        ] {
            for keep in [30, 60, 95] {
                let cut = fixtures::truncated(&whole, keep);
                assert!(
                    ImagePipeline::process_now(&cut).is_err(),
                    "{name} cut to {keep}%"
                );
            }
        }
        assert!(refusal(&fixtures::truncated(&fixtures::jpeg(300, 200), 99)).contains("truncated"));
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        for bomb in [fixtures::png_bomb(100_000, 100_000), fixtures::jpeg_bomb()] {
            assert!(bomb.len() < 2_000);
            let refused = refusal(&bomb);
            assert!(refused.contains("more than 40000000"), "{refused}");
        }
        // Just over the limit in pixels, though each side is ordinary.
        let refused = refusal(&fixtures::png_bomb(8_000, 5_001));
        assert!(refused.contains("8000 × 5001"), "{refused}");
    }

    #[tokio::test]
    async fn the_pipeline_refuses_at_once_past_its_queue() {
        let pipeline = ImagePipeline::new(1, 0);
        let held = Arc::clone(&pipeline.queued).try_acquire_owned().unwrap();
        let busy = pipeline.process(fixtures::jpeg(8, 8)).await.unwrap_err();
        assert!(matches!(busy, AddPhotoError::Store(StoreError::Busy)));
        drop(held);
        let photo = pipeline.process(fixtures::jpeg(8, 8)).await.unwrap();
        assert_eq!(photo.image.width, 8);
        let invalid = pipeline.process(b"nope".to_vec()).await.unwrap_err();
        assert!(matches!(invalid, AddPhotoError::Invalid(_)));
    }
}
