//! Alipay+ message signatures, shared by the client, the simulator and the notification endpoint.
//!
//! Both directions use one algorithm: RSA PKCS#1 v1.5 with SHA-256 over
//! `POST <path>\n<Client-Id>.<time>.<body>`, standard Base64, then form-URL-encoded, carried as
//! `Signature: algorithm=RSA256,keyVersion=1,signature=<S>`. The sender signs with its private key
//! ([`SigningKey`]); the receiver checks with the sender's public key ([`VerifyingKey`]). `time` is
//! the `Request-Time` header for requests and notifications, `Response-Time` for responses.

use std::fmt;

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use ring::{
    rand::SystemRandom,
    signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents},
};
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer, pem, pem::PemObject};
use spki::{
    ObjectIdentifier, SubjectPublicKeyInfoRef,
    der::{
        Decode,
        asn1::{AnyRef, UintRef},
    },
};

/// Header carrying the application's Client ID, on requests, responses and notifications.
pub const CLIENT_ID_HEADER: &str = "Client-Id";
/// Header carrying the sender's clock on requests and notifications.
pub const REQUEST_TIME_HEADER: &str = "Request-Time";
/// Header carrying the sender's clock on responses and acknowledgements.
pub const RESPONSE_TIME_HEADER: &str = "Response-Time";
/// Header carrying the signature, e.g. `algorithm=RSA256,keyVersion=1,signature=...`.
pub const SIGNATURE_HEADER: &str = "Signature";

/// The only algorithm the contract defines.
const ALGORITHM: &str = "RSA256";
/// Each side holds a single key pair, so the version is fixed; it is sent for Alipay+ SDK parity.
const KEY_VERSION: &str = "1";
/// `rsaEncryption`, the only SPKI algorithm an RSA256 signature can be checked with.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// The modulus sizes ring verifies with `RSA_PKCS1_2048_8192_SHA256`; checked at load time so an
/// unsuitable key is reported as such, not as every signature failing.
const MODULUS_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// A key that cannot be used, naming which one (never including its material).
#[derive(Debug, thiserror::Error)]
#[error("{name} is not a usable {kind}: {problem}")]
pub struct KeyError {
    name: String,
    kind: &'static str,
    problem: String,
}

impl KeyError {
    fn private(name: &str, problem: impl Into<String>) -> Self {
        let kind = "RSA private key (PKCS#1 or PKCS#8 PEM)";
        Self {
            name: name.to_owned(),
            kind,
            problem: problem.into(),
        }
    }

    fn public(name: &str, problem: impl Into<String>) -> Self {
        let kind = "RSA public key (SPKI PEM, BEGIN PUBLIC KEY)";
        Self {
            name: name.to_owned(),
            kind,
            problem: problem.into(),
        }
    }

    /// The caller's label for the key, e.g. `privateKey in Secret acqp/demo-credentials`.
    pub fn key_name(&self) -> &str {
        &self.name
    }
}

/// Why a signature was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The header is not `algorithm=...,keyVersion=...,signature=...`.
    #[error("malformed Signature header: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm other than RSA256.
    #[error("unsupported signature algorithm {0:?}, expected RSA256")]
    UnsupportedAlgorithm(String),
    /// The signature does not match the content under the sender's public key.
    #[error("signature does not match the message")]
    Mismatch,
}

/// A private key that signs messages (PKCS#1 or PKCS#8 PEM).
pub struct SigningKey {
    name: String,
    pair: RsaKeyPair,
}

impl SigningKey {
    /// Loads a PEM private key; `name` says where it came from so errors can point at it.
    pub fn from_pem(name: &str, pem: &[u8]) -> Result<Self, KeyError> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
            KeyError::private(
                name,
                pem_problem(&e, "BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY"),
            )
        })?;
        let pair = match &der {
            PrivateKeyDer::Pkcs1(key) => RsaKeyPair::from_der(key.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(key) => RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()),
            _ => return Err(KeyError::private(name, "found an EC key, not an RSA key")),
        }
        // ring rejects with fixed strings ("InvalidEncoding", "TooSmall"), never key bytes.
        .map_err(|rejected| KeyError::private(name, rejected.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            pair,
        })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A public key that checks the other side's signatures (SPKI PEM).
pub struct VerifyingKey {
    name: String,
    components: RsaPublicKeyComponents<Vec<u8>>,
}

impl VerifyingKey {
    /// Loads an SPKI PEM public key; `name` says where it came from so errors can point at it.
    pub fn from_pem(name: &str, pem: &[u8]) -> Result<Self, KeyError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem)
            .map_err(|e| KeyError::public(name, pem_problem(&e, "BEGIN PUBLIC KEY")))?;
        let spki = SubjectPublicKeyInfoRef::from_der(der.as_ref())
            .map_err(|_| KeyError::public(name, "the PEM body is not a SubjectPublicKeyInfo"))?;
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(KeyError::public(
                name,
                format!("algorithm {} is not RSA", spki.algorithm.oid),
            ));
        }
        let rsa_public_key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| KeyError::public(name, "the key bit string is not byte-aligned"))?;
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        let (n, e) = AnyRef::from_der(rsa_public_key)
            .and_then(|any| {
                any.sequence(|reader| {
                    let n = UintRef::decode(reader)?;
                    let e = UintRef::decode(reader)?;
                    Ok((n.as_bytes().to_vec(), e.as_bytes().to_vec()))
                })
            })
            .map_err(|_| KeyError::public(name, "the key is not an RSAPublicKey"))?;
        let bits = n.first().map_or(0, |top| {
            (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
        });
        if !MODULUS_BITS.contains(&bits) {
            return Err(KeyError::public(
                name,
                format!("{bits}-bit modulus, need 2048 to 8192"),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            components: RsaPublicKeyComponents { n, e },
        })
    }
}

impl VerifyingKey {
    /// Whether `other` is the same public key (wherever each was loaded from): a message
    /// verifies with one exactly when it verifies with the other.
    pub fn same_key(&self, other: &VerifyingKey) -> bool {
        self.components.n == other.components.n && self.components.e == other.components.e
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Describes a PEM failure without echoing the input: the pem error's own text can quote lines.
fn pem_problem(error: &pem::Error, expected: &str) -> String {
    match error {
        pem::Error::NoItemsFound => format!("no {expected} block found"),
        pem::Error::MissingSectionEnd { .. } => "the PEM block has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "the PEM BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "the PEM body is not valid Base64".to_owned(),
        _ => "the PEM could not be read".to_owned(),
    }
}

/// The exact bytes both sides sign: `POST <path>\n<Client-Id>.<time>.<body>`.
fn content(path: &str, client_id: &str, time: &str, body: &[u8]) -> Vec<u8> {
    let head = format!("POST {path}\n{client_id}.{time}.");
    let mut content = Vec::with_capacity(head.len() + body.len());
    content.extend_from_slice(head.as_bytes());
    content.extend_from_slice(body);
    content
}

/// Signs a message and returns the whole `Signature` header value.
///
/// `time` must be the exact string sent in the `Request-Time`/`Response-Time` header and `body`
/// the exact bytes sent; any re-serialisation in between breaks the signature.
pub fn sign(key: &SigningKey, path: &str, client_id: &str, time: &str, body: &[u8]) -> String {
    let mut signature = vec![0; key.pair.public().modulus_len()];
    // PKCS#1 v1.5 is deterministic; ring only uses the RNG to blind the private-key operation, and
    // the buffer is sized from the key, so failure means the OS cannot supply randomness at all.
    key.pair
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            &content(path, client_id, time, body),
            &mut signature,
        )
        .expect("the operating system's random number generator failed");
    let base64 = BASE64.encode(signature);
    // Form encoding of the Base64 alphabet: only `+`, `/` and `=` are not alphanumeric.
    let encoded = utf8_percent_encode(&base64, NON_ALPHANUMERIC);
    format!("algorithm={ALGORITHM},keyVersion={KEY_VERSION},signature={encoded}")
}

/// Checks a `Signature` header value against the message it claims to sign.
///
/// Whitespace around fields and their order are tolerated, as are fields this version does not
/// know; a signature that was not URL-encoded is accepted too, since decoding leaves Base64 as is.
pub fn verify(
    key: &VerifyingKey,
    path: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
    header_value: &str,
) -> Result<(), SignatureError> {
    let signature = parse_header(header_value)?;
    key.components
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            &content(path, client_id, time, body),
            &signature,
        )
        .map_err(|_| SignatureError::Mismatch)
}

/// Extracts the raw signature bytes from a header value, checking the algorithm.
///
/// Public so the fuzz targets in `fuzz/` can reach the parser on its own.
pub fn parse_header(value: &str) -> Result<Vec<u8>, SignatureError> {
    let (mut algorithm, mut signature) = (None, None);
    for field in value.split(',') {
        let (name, field_value) = field
            .split_once('=')
            .ok_or(SignatureError::Malformed("every field must be name=value"))?;
        let slot = match name.trim() {
            "algorithm" => &mut algorithm,
            "signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(field_value.trim()).is_some() {
            return Err(SignatureError::Malformed("a field appears twice"));
        }
    }
    let algorithm = algorithm.ok_or(SignatureError::Malformed("no algorithm field"))?;
    if algorithm != ALGORITHM {
        return Err(SignatureError::UnsupportedAlgorithm(algorithm.to_owned()));
    }
    let encoded = signature.ok_or(SignatureError::Malformed("no signature field"))?;
    let base64 = percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| SignatureError::Malformed("signature is not percent-encoded UTF-8"))?;
    BASE64
        .decode(base64.as_bytes())
        .map_err(|_| SignatureError::Malformed("signature is not Base64"))
}

/// Formats a header time as the contract wants: ISO 8601 with a numeric offset, whole seconds.
pub fn format_time(time: &jiff::Zoned) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The current time in the system time zone, formatted for `Request-Time`/`Response-Time`.
pub fn now() -> String {
    format_time(&jiff::Zoned::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSP_PRIVATE: &[u8] = include_bytes!("../../examples/keys/tsp-private.pem");
    const TSP_PUBLIC: &[u8] = include_bytes!("../../examples/keys/tsp-public.pem");
    const DEVCENTER_PUBLIC: &[u8] = include_bytes!("../../examples/keys/devcenter-public.pem");
    const TSP_PRIVATE_PKCS1: &[u8] =
        include_bytes!("../../tests/fixtures/signing/tsp-private-pkcs1.pem");

    /// One OpenSSL vector: the inputs recovered from the signed content, and the expected value.
    struct Vector {
        path: String,
        client_id: String,
        time: String,
        body: Vec<u8>,
        signature: String,
    }

    fn vector(name: &str) -> Vector {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/signing");
        let content = std::fs::read_to_string(format!("{dir}/{name}.content")).unwrap();
        let signature = std::fs::read_to_string(format!("{dir}/{name}.signature")).unwrap();
        let (request_line, rest) = content.split_once('\n').unwrap();
        let mut parts = rest.splitn(3, '.');
        let (client_id, time, body) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        Vector {
            path: request_line.strip_prefix("POST ").unwrap().to_owned(),
            client_id: client_id.to_owned(),
            time: time.to_owned(),
            body: body.as_bytes().to_vec(),
            signature,
        }
    }

    const VECTORS: [&str; 3] = ["generate-url", "empty-body", "utf8-body"];

    fn tsp_key() -> SigningKey {
        SigningKey::from_pem("tsp-private.pem", TSP_PRIVATE).unwrap()
    }

    fn tsp_public() -> VerifyingKey {
        VerifyingKey::from_pem("tsp-public.pem", TSP_PUBLIC).unwrap()
    }

    fn header(signature: &str) -> String {
        format!("algorithm=RSA256,keyVersion=1,signature={signature}")
    }

    #[test]
    fn signatures_match_openssl_byte_for_byte() {
        for key in [
            tsp_key(),
            SigningKey::from_pem("pkcs1", TSP_PRIVATE_PKCS1).unwrap(),
        ] {
            for name in VECTORS {
                let v = vector(name);
                let signed = sign(&key, &v.path, &v.client_id, &v.time, &v.body);
                assert_eq!(signed, header(&v.signature), "vector {name} with {key:?}");
            }
        }
    }

    #[test]
    fn openssl_signatures_verify() {
        for name in VECTORS {
            let v = vector(name);
            let result = verify(
                &tsp_public(),
                &v.path,
                &v.client_id,
                &v.time,
                &v.body,
                &header(&v.signature),
            );
            assert_eq!(result, Ok(()), "vector {name}");
        }
    }

    #[test]
    fn any_change_to_the_message_is_a_mismatch() {
        let v = vector("generate-url");
        let h = header(&v.signature);
        let key = tsp_public();
        let mut body = v.body.clone();
        body[2] ^= 1;
        let cases = [
            (
                "body",
                verify(&key, &v.path, &v.client_id, &v.time, &body, &h),
            ),
            (
                "path",
                verify(
                    &key,
                    "/devcenter/api/v1/x",
                    &v.client_id,
                    &v.time,
                    &v.body,
                    &h,
                ),
            ),
            (
                "time",
                verify(
                    &key,
                    &v.path,
                    &v.client_id,
                    "2026-11-27T12:08:57+08:00",
                    &v.body,
                    &h,
                ),
            ),
            (
                "client",
                verify(&key, &v.path, "SANDBOX_OTHER", &v.time, &v.body, &h),
            ),
        ];
        for (what, result) in cases {
            assert_eq!(result, Err(SignatureError::Mismatch), "changed {what}");
        }
        let other_key = VerifyingKey::from_pem("devcenter-public.pem", DEVCENTER_PUBLIC).unwrap();
        let result = verify(&other_key, &v.path, &v.client_id, &v.time, &v.body, &h);
        assert_eq!(result, Err(SignatureError::Mismatch), "wrong public key");
    }

    #[test]
    fn header_fields_tolerate_order_whitespace_and_unknown_fields() {
        let v = vector("empty-body");
        let s = &v.signature;
        let unencoded = percent_decode_str(s).decode_utf8().unwrap().into_owned();
        for value in [
            format!("signature={s},keyVersion=1,algorithm=RSA256"),
            format!(" algorithm = RSA256 , keyVersion=1 ,\tsignature= {s} "),
            format!("algorithm=RSA256,signature={s}"),
            format!("algorithm=RSA256,keyVersion=2,extra=x,signature={s}"),
            format!("algorithm=RSA256,keyVersion=1,signature={unencoded}"),
        ] {
            let result = verify(
                &tsp_public(),
                &v.path,
                &v.client_id,
                &v.time,
                &v.body,
                &value,
            );
            assert_eq!(result, Ok(()), "header {value:?}");
        }
    }

    #[test]
    fn malformed_headers_are_rejected_with_the_reason() {
        let v = vector("empty-body");
        let s = &v.signature;
        let unsupported = |name: &str| SignatureError::UnsupportedAlgorithm(name.to_owned());
        let malformed = SignatureError::Malformed;
        let cases = [
            (format!("algorithm=RSA,signature={s}"), unsupported("RSA")),
            (
                format!("algorithm=rsa256,signature={s}"),
                unsupported("rsa256"),
            ),
            (
                format!("keyVersion=1,signature={s}"),
                malformed("no algorithm field"),
            ),
            (
                format!("algorithm=RSA256,signature={s},signature={s}"),
                malformed("a field appears twice"),
            ),
            (
                "algorithm=RSA256,keyVersion=1".into(),
                malformed("no signature field"),
            ),
            (
                "algorithm=RSA256,signature".into(),
                malformed("every field must be name=value"),
            ),
            ("".into(), malformed("every field must be name=value")),
            (
                "algorithm=RSA256,signature=not*base64".into(),
                malformed("signature is not Base64"),
            ),
            (
                "algorithm=RSA256,signature=%FF".into(),
                malformed("signature is not percent-encoded UTF-8"),
            ),
        ];
        for (value, expected) in cases {
            let result = verify(
                &tsp_public(),
                &v.path,
                &v.client_id,
                &v.time,
                &v.body,
                &value,
            );
            assert_eq!(result, Err(expected), "header {value:?}");
        }
    }

    #[test]
    fn malformed_keys_name_the_key_and_never_echo_it() {
        let name = "privateKey in Secret acqp/demo-credentials";
        let truncated = &TSP_PRIVATE[..TSP_PRIVATE.len() - 40];
        let mut bad_base64 = TSP_PRIVATE.to_vec();
        bad_base64[40] = b'*';
        let private_cases: [(&[u8], &str); 4] = [
            (
                b"",
                "no BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY block found",
            ),
            (
                TSP_PUBLIC,
                "no BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY block found",
            ),
            (truncated, "the PEM block has no END line"),
            (&bad_base64, "the PEM body is not valid Base64"),
        ];
        for (pem, problem) in private_cases {
            let message = SigningKey::from_pem(name, pem).unwrap_err().to_string();
            assert_eq!(
                message,
                format!("{name} is not a usable RSA private key (PKCS#1 or PKCS#8 PEM): {problem}")
            );
        }
        let error = VerifyingKey::from_pem("publicKey", TSP_PRIVATE).unwrap_err();
        assert_eq!(error.key_name(), "publicKey");
        assert!(
            error
                .to_string()
                .ends_with("no BEGIN PUBLIC KEY block found"),
            "{error}"
        );
    }

    #[test]
    fn undersized_and_non_rsa_public_keys_are_refused_at_load() {
        let rsa_1024 = include_bytes!("../../tests/fixtures/signing/rsa-1024-public.pem");
        let small = VerifyingKey::from_pem("small", rsa_1024)
            .unwrap_err()
            .to_string();
        assert!(
            small.ends_with("1024-bit modulus, need 2048 to 8192"),
            "{small}"
        );
        let p256 = include_bytes!("../../tests/fixtures/signing/p256-public.pem");
        let ec = VerifyingKey::from_pem("ec", p256).unwrap_err().to_string();
        assert!(
            ec.ends_with("algorithm 1.2.840.10045.2.1 is not RSA"),
            "{ec}"
        );
    }

    #[test]
    fn debug_output_names_keys_without_material() {
        let signing = format!("{:?}", tsp_key());
        assert_eq!(signing, r#"SigningKey { name: "tsp-private.pem", .. }"#);
        let verifying = format!("{:?}", tsp_public());
        assert_eq!(verifying, r#"VerifyingKey { name: "tsp-public.pem", .. }"#);
    }

    #[test]
    fn times_carry_a_numeric_offset_and_whole_seconds() {
        let zoned: jiff::Zoned = "2026-11-27T12:08:56.789+08:00[Asia/Shanghai]"
            .parse()
            .unwrap();
        assert_eq!(format_time(&zoned), "2026-11-27T12:08:56+08:00");
        let utc: jiff::Zoned = "2026-01-02T03:04:05+00:00[UTC]".parse().unwrap();
        assert_eq!(format_time(&utc), "2026-01-02T03:04:05+00:00");
        assert!(
            now().parse::<jiff::Timestamp>().is_ok(),
            "now() must be RFC 3339"
        );
    }
}
