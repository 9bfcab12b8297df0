//! openidconnect's HTTP client on the workspace's reqwest 0.13.
//!
//! oauth2 5 implements its `AsyncHttpClient` only for reqwest 0.12, which
//! would put a second reqwest (and TLS stack) in the binary; this newtype
//! is the thirty lines that avoid it. It never follows redirects (a
//! provider's endpoint that redirects could be steered elsewhere), bounds
//! every request's time, and refuses bodies over 1 MiB.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// The largest body read from a provider.
const MAX_BODY: usize = 1 << 20;

/// Why a request to a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be built or sent, or no answer came in time.
    #[error("request to the provider failed: {0}")]
    Send(#[from] reqwest::Error),
    /// The answer was larger than [`MAX_BODY`].
    #[error("the provider's answer is larger than {MAX_BODY} bytes")]
    TooLarge,
}

/// The client every provider request goes through.
#[derive(Clone, Debug)]
pub struct ProviderHttp {
    inner: reqwest::Client,
}

impl ProviderHttp {
    /// A client that gives up after `timeout`.
    ///
    /// # Errors
    /// When the TLS backend cannot start.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()?;
        Ok(ProviderHttp { inner })
    }
}

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let mut response = self.inner.execute(request).await?;
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            let mut answer = http::Response::new(body);
            *answer.status_mut() = response.status();
            *answer.headers_mut() = std::mem::take(response.headers_mut());
            Ok(answer)
        })
    }
}
