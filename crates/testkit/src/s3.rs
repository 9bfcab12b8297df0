//! A real S3-compatible server for the tests of the S3 media store: moto's
//! server mode (PyPI), started per test on a free port of 127.0.0.1 and
//! killed when dropped. MinIO's server is not installable on these
//! machines; moto speaks the same S3 REST protocol, signatures included.
//!
//! The python is `S3_SERVER_PYTHON`, else the virtualenv
//! `scripts/s3-venv.sh` makes (`~/.cache/poison-pill/s3-venv/bin/python`;
//! `make test-rust` runs that script first).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the server may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The python that runs the server: `S3_SERVER_PYTHON`, else the
/// virtualenv of `scripts/s3-venv.sh` when it exists, else `python3`.
#[must_use]
pub fn python() -> PathBuf {
    crate::venv_python("S3_SERVER_PYTHON", ".cache/poison-pill/s3-venv")
}

/// A running S3-compatible server with one empty bucket.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    endpoint: String,
    bucket: String,
}

impl S3Server {
    /// Starts a server and creates the bucket `bucket` in it.
    ///
    /// # Panics
    /// When the server does not start within 30 s, or the bucket cannot be
    /// created (the panic says how to install the server).
    pub async fn start(bucket: &str) -> Self {
        let python = python();
        let mut child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run the S3 server ({} -m moto.server): {e}; run scripts/s3-venv.sh \
                     (make test-rust does) or set S3_SERVER_PYTHON",
                    python.display()
                )
            });
        // Werkzeug says ` * Running on http://127.0.0.1:PORT` on stderr.
        let stderr = child.stderr.take().expect("the server's stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("Running on http://127.0.0.1:") {
                    let port = &line[at + "Running on http://127.0.0.1:".len()..];
                    let port: String = port.chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(port) = port.parse::<u16>() {
                        return Some(port);
                    }
                }
            }
            None
        })
        .await;
        let Ok(Some(port)) = found else {
            child.kill().await.ok();
            panic!(
                "the S3 server ({} -m moto.server) did not start; run scripts/s3-venv.sh \
                 (make test-rust does) or set S3_SERVER_PYTHON",
                python.display()
            );
        };
        // Keep reading so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let endpoint = format!("http://127.0.0.1:{port}");
        // moto takes an unsigned request to create a bucket.
        let created = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .expect("the S3 server answers");
        assert!(
            created.status().is_success(),
            "creating the bucket: {}",
            created.status()
        );
        S3Server {
            child,
            endpoint,
            bucket: bucket.to_owned(),
        }
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bucket's name.
    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The credentials the server takes (any), as the AWS variables name them.
    #[must_use]
    pub fn credentials() -> [(&'static str, &'static str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
    }

    /// Stops the server (SIGKILL).
    pub async fn stop(mut self) {
        self.child.kill().await.ok();
    }
}
