use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::TlsError;

/// A private CA and a leaf certificate it signed, for a hub served on loopback (the demo and
/// the desktop app's embedded hub). Clients trust [`LoopbackCa::ca_pem`] and nothing else.
pub struct LoopbackCa {
    ca_pem: String,
    leaf_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for LoopbackCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackCa")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

const CA_FILE: &str = "ca.pem";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

impl LoopbackCa {
    /// A new CA and a leaf certificate valid for `names` (DNS names or IP addresses).
    pub fn generate(names: &[&str]) -> Result<Self, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Uplink loopback CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate()?;
        let mut leaf_params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "Uplink hub on loopback");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            leaf_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
        })
    }

    /// The CA certificate clients should trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server's chain: leaf then CA.
    pub fn cert_chain_pem(&self) -> String {
        format!("{}{}", self.leaf_pem, self.ca_pem)
    }

    /// The leaf's private key. Keep it out of logs.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Writes `ca.pem`, `cert.pem` and `key.pem` (owner-only) into `dir`, each atomically.
    pub fn write_to_dir(&self, dir: &Path) -> Result<(), TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        write_atomic(&dir.join(CA_FILE), self.ca_pem.as_bytes(), false)?;
        write_atomic(
            &dir.join(CERT_FILE),
            self.cert_chain_pem().as_bytes(),
            false,
        )?;
        write_atomic(&dir.join(KEY_FILE), self.key_pem.as_bytes(), true)
    }

    /// Loads the files [`LoopbackCa::write_to_dir`] wrote, or generates and writes new ones.
    pub fn load_or_generate(dir: &Path, names: &[&str]) -> Result<Self, TlsError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| TlsError::Io { path, source })
        };
        if dir.join(KEY_FILE).exists() {
            let ca_pem = read(CA_FILE)?;
            let chain = read(CERT_FILE)?;
            let leaf_pem = chain
                .strip_suffix(ca_pem.as_str())
                .unwrap_or(&chain)
                .to_owned();
            return Ok(Self {
                ca_pem,
                leaf_pem,
                key_pem: read(KEY_FILE)?,
            });
        }
        let fresh = Self::generate(names)?;
        fresh.write_to_dir(dir)?;
        Ok(fresh)
    }
}

fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), TlsError> {
    uplink_files::write_atomically(path, bytes, uplink_files::Access::owner_only(private)).map_err(
        |e| TlsError::Io {
            path: e.path,
            source: e.source,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_load_back_and_the_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = LoopbackCa::load_or_generate(dir.path(), &["localhost"]).unwrap();
        let again = LoopbackCa::load_or_generate(dir.path(), &["localhost"]).unwrap();
        assert_eq!(first.ca_pem(), again.ca_pem());
        assert_eq!(first.cert_chain_pem(), again.cert_chain_pem());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{first:?}").contains("PRIVATE KEY"));
    }
}
