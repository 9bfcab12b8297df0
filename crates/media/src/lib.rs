//! # Poison Pill's photo adapters
//!
//! [`ImagePipeline`] turns an untrusted upload into a clean image of its own
//! (the domain's [`ImageProcessor`](pp_domain::photos::ImageProcessor)):
//! the format is sniffed from the bytes, the size read from the header and
//! checked before any pixel is decoded, the EXIF orientation applied, and
//! the image encoded again (so no metadata, and nothing smuggled after or
//! inside the image, survives), with a thumbnail. It runs on the blocking
//! pool behind a bounded queue, so uploads never stall the async workers.
//!
//! [`ObjectMedia`] keeps the images (the domain's
//! [`MediaStore`](pp_domain::photos::MediaStore)) through the `object_store`
//! crate: a directory (the embedded default) or an S3-compatible bucket
//! (many instances share it).

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
mod jpeg;
mod processing;
mod storage;

pub use processing::ImagePipeline;
pub use storage::{MediaSettings, ObjectMedia, S3Settings};
