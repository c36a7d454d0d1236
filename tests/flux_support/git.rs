//! A Git server on loopback that Flux's source-controller can clone: smart HTTP, served by
//! `git http-backend` (CGI) behind a small axum server in the test process. Flux refuses
//! `git://` URLs and its Git library speaks no dumb HTTP, so neither a plain file server nor
//! `git daemon` would do. Anonymous and read-only: the test commits in a work tree and pushes
//! into the bare repository on disk.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri},
    response::Response,
};
use tokio::io::AsyncWriteExt as _;

/// Where `git http-backend` lives on Debian; `git --exec-path` finds it elsewhere.
fn http_backend() -> PathBuf {
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git is installed (Debian: apt-get install git)");
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let backend = Path::new(&dir).join("git-http-backend");
    assert!(
        backend.exists(),
        "{} is missing: install git with its http-backend (Debian: apt-get install git)",
        backend.display()
    );
    backend
}

/// A running smart-HTTP server for the bare repositories under `root`.
pub struct GitServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The directory holding the bare repositories (`GIT_PROJECT_ROOT`).
    pub root: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Backend {
    program: PathBuf,
    root: PathBuf,
}

impl GitServer {
    /// Serves the repositories under `root` on a free loopback port.
    pub async fn start(root: &Path) -> GitServer {
        std::fs::create_dir_all(root).unwrap();
        let backend = Backend {
            program: http_backend(),
            root: root.to_path_buf(),
        };
        let app = axum::Router::new().fallback(cgi).with_state(backend);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        GitServer {
            base_url: format!("http://{addr}"),
            root: root.to_path_buf(),
            server,
        }
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One request through `git http-backend`: the request becomes CGI variables and stdin, the
/// CGI answer's header block becomes the HTTP status and headers.
async fn cgi(
    State(backend): State<Backend>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut command = tokio::process::Command::new(&backend.program);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &backend.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return plain(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    let mut stdin = child.stdin.take().unwrap();
    // http-backend may answer before reading everything; a broken pipe then is no error.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let output = match child.wait_with_output().await {
        Ok(output) => output,
        Err(error) => return plain(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    let _ = writer.await;
    if !output.status.success() && output.stdout.is_empty() {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        );
    }
    parse_cgi(&output.stdout)
}

fn plain(status: StatusCode, message: String) -> Response {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response
}

/// Splits a CGI answer into `Status:`, the other headers, and the body.
fn parse_cgi(stdout: &[u8]) -> Response {
    let (head, body) = match find(stdout, b"\r\n\r\n") {
        Some(i) => (&stdout[..i], &stdout[i + 4..]),
        None => match find(stdout, b"\n\n") {
            Some(i) => (&stdout[..i], &stdout[i + 2..]),
            None => {
                return plain(
                    StatusCode::BAD_GATEWAY,
                    "git http-backend answered without a header block".into(),
                );
            }
        },
    };
    let mut response = Response::new(Body::from(body.to_vec()));
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            *response.status_mut() = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.trim()),
            HeaderValue::try_from(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A repository the test commits to: a work tree that pushes into a bare repository the
/// [`GitServer`] serves.
pub struct Repo {
    /// The work tree.
    pub work: PathBuf,
    bare: PathBuf,
    /// The clone URL (`http://127.0.0.1:PORT/NAME.git`).
    pub url: String,
}

impl Repo {
    /// A new empty repository `name` on `server`, branch `main`.
    pub fn create(server: &GitServer, name: &str) -> Repo {
        let bare = server.root.join(format!("{name}.git"));
        let work = server.root.join(format!("{name}-work"));
        git(
            &server.root,
            &["init", "--quiet", "--bare", "-b", "main", &path(&bare)],
        );
        git(
            &server.root,
            &["init", "--quiet", "-b", "main", &path(&work)],
        );
        git(&work, &["remote", "add", "origin", &path(&bare)]);
        Repo {
            work,
            bare,
            url: format!("{}/{name}.git", server.base_url),
        }
    }

    /// Writes `files` (path relative to the root, content), removes `removed`, commits
    /// everything with `message` and pushes; returns the commit's SHA-1.
    pub fn commit(&self, message: &str, files: &[(&str, String)], removed: &[&str]) -> String {
        for (file, content) in files {
            let target = self.work.join(file);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(&target, content).unwrap();
        }
        for file in removed {
            git(&self.work, &["rm", "--quiet", file]);
        }
        git(&self.work, &["add", "--all"]);
        git(
            &self.work,
            &[
                "-c",
                "user.name=acqp-operator tests",
                "-c",
                "user.email=tests@acqp-operator.invalid",
                "commit",
                "--quiet",
                "-m",
                message,
            ],
        );
        git(&self.work, &["push", "--quiet", "origin", "main"]);
        let sha = git(&self.bare, &["rev-parse", "main"]);
        sha.trim().to_owned()
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// Runs git in `dir`, failing the test with its output unless it succeeds; returns stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        // The user's and the system's Git configuration play no part.
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git is installed (Debian: apt-get install git)");
    assert!(
        out.status.success(),
        "git {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
