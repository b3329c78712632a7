//! The sandbox's own certificate authority and serving certificate (rcgen), the bearer token, and the
//! kubeconfig that carries them to kubectl and kube-rs.
//!
//! The serving certificate is a leaf (`CA:FALSE`, serverAuth, `IP:127.0.0.1`) signed by a CA made for this
//! sandbox: kube-rs refuses a self-signed CA certificate used as the server's.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio_rustls::rustls;

/// What the API server needs to serve TLS, and clients to trust it.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("making the sandbox's certificates: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("setting up TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("reading random bytes: {0}")]
    Random(#[from] std::io::Error),
    #[error("reading a PEM file: {0}")]
    Pem(String),
}

/// 32 random bytes from the kernel, hex-encoded.
pub fn random_token() -> Result<String, TlsError> {
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Credentials {
    /// A new CA, a serving certificate for 127.0.0.1 signed by it, and a random token.
    pub fn generate(name: &str) -> Result<Credentials, TlsError> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, format!("palisade-sandbox-{name}-ca"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let mut leaf = CertificateParams::new(Vec::<String>::new())?;
        leaf.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        leaf.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = leaf.signed_by(&key, &ca)?;
        Ok(Credentials { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem(), token: random_token()? })
    }

    /// The rustls server configuration (HTTP/1.1 only: watches and exec upgrades stay simple).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs =
            vec![CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).map_err(|e| TlsError::Pem(e.to_string()))?];
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| TlsError::Pem(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A kubeconfig for `https://127.0.0.1:PORT` with this CA and token, context named after the sandbox.
    pub fn kubeconfig(&self, name: &str, port: u16) -> String {
        let ca = base64(self.ca_pem.as_bytes());
        let ctx = format!("palisade-{name}");
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {ctx}\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {ca}\nusers:\n- name: {ctx}\n  user:\n    token: {}\ncontexts:\n- name: {ctx}\n  context:\n    cluster: {ctx}\n    user: {ctx}\n    namespace: default\ncurrent-context: {ctx}\npreferences: {{}}\n",
            self.token
        )
    }
}

/// Standard base64 with padding (kubeconfig's `-data` fields).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn credentials_make_a_server_config_and_a_kubeconfig() {
        let c = Credentials::generate("t").unwrap();
        assert!(c.server_config().is_ok());
        assert_eq!(c.token.len(), 64);
        let kc = c.kubeconfig("t", 6443);
        assert!(kc.contains("server: https://127.0.0.1:6443"));
        assert!(kc.contains(&format!("token: {}", c.token)));
        assert_ne!(c.token, Credentials::generate("t").unwrap().token);
    }
}
