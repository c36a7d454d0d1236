//! A real SMTP server (aiosmtpd, installed by `hack/smtp ensure`) as a child process of a test,
//! storing what it accepts as JSON files the test reads; and a CA and server certificate made
//! with openssl for STARTTLS.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use serde_json::Value;

use super::repo;

/// How to run the server.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// Offer STARTTLS with this certificate and key, and refuse mail before it.
    pub tls: Option<Certificates>,
    /// With `tls`: TLS from the first byte (SMTPS) instead of STARTTLS.
    pub implicit_tls: bool,
    /// Require this login (`user:password`).
    pub auth: Option<String>,
    /// Answer every DATA with this reply, e.g. `451 4.3.0 mailbox busy`.
    pub reject: Option<String>,
}

/// A running `hack/smtp serve`.
pub struct SmtpServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    maildir: PathBuf,
}

impl SmtpServer {
    /// Starts a server on a free loopback port, storing messages under `dir/maildir`.
    pub fn start(dir: &Path, options: &SmtpOptions) -> SmtpServer {
        let maildir = dir.join("maildir");
        let mut command = Command::new(repo("hack/smtp"));
        command
            .arg("serve")
            .arg("--listen=127.0.0.1:0")
            .arg(format!("--maildir={}", maildir.display()));
        if let Some(tls) = &options.tls {
            command
                .arg(format!("--tls-cert={}", tls.server_cert.display()))
                .arg(format!("--tls-key={}", tls.server_key.display()))
                .arg(if options.implicit_tls {
                    "--implicit-tls"
                } else {
                    "--require-starttls"
                });
        }
        if let Some(auth) = &options.auth {
            command.arg(format!("--auth={auth}"));
        }
        if let Some(reject) = &options.reject {
            command.arg(format!("--reject={reject}"));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start hack/smtp serve (run `hack/smtp ensure` first)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                panic!("hack/smtp serve did not start (run `hack/smtp ensure`): {line:?}")
            });
        SmtpServer {
            child,
            addr,
            maildir,
        }
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        let Ok(entries) = std::fs::read_dir(&self.maildir) else {
            return vec![];
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a server certificate it signed for 127.0.0.1.
#[derive(Clone, Debug)]
pub struct Certificates {
    /// The CA certificate (PEM), which the operator is told to trust.
    pub ca_cert: PathBuf,
    /// The server's certificate (PEM).
    pub server_cert: PathBuf,
    /// The server's private key (PEM).
    pub server_key: PathBuf,
}

impl Certificates {
    /// Makes them with openssl in `dir`.
    pub fn make(dir: &Path) -> Certificates {
        let path = |name: &str| dir.join(name);
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl (hack/deps installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::create_dir_all(dir).unwrap();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=acqp-operator test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            path("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        Certificates {
            ca_cert: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
        }
    }
}
